"""Week 06 deck: every figure the slides use exists and draws from the shipped model."""

import re

import matplotlib

matplotlib.use("Agg")

from mi_course.course.figures import week06  # noqa: E402


def test_every_slide_figure_exists(repo):
    text = (repo / "slides" / "06_grokking" / "slides.md").read_text()
    names = re.findall(r"\(figure:([A-Za-z_]\w*)\)", text)
    assert len(names) >= 4
    for name in names:
        assert callable(getattr(week06, name, None)), name


def test_a_figure_draws():
    import matplotlib.pyplot as plt

    fig = week06.embedding_spectrum()
    assert fig.axes and len(fig.axes[0].patches) == 56
    plt.close(fig)
