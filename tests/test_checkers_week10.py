import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week10
from mi_course.methods import localization_vs_editing as lve


SLOW = {"w10b_mediation"}  # proven (and marked slow) in test_checkers_week10_bias.py too


@pytest.mark.parametrize("ex_id", [pytest.param(e, marks=pytest.mark.slow) if e in SLOW else e
                                   for e in sorted(week10.EXERCISES)])
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week10.EXERCISES[ex_id])


def test_the_weeks_floor():
    """>= 8 checked exercises, >= 3 two-star and >= 2 three-star, >= 2 mistakes each; the notebook's
    exercises are exactly these, with these stars."""
    import nbformat
    from pathlib import Path

    assert len(week10.EXERCISES) >= 8
    assert all(len(ex.mistakes) >= 2 for ex in week10.EXERCISES.values())
    stars = [week10.STARS[k] for k in week10.EXERCISES]
    assert stars.count(2) >= 3 and stars.count(3) >= 2
    week = "10_localization_vs_editing"
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "solutions" / week / f"{week}.ipynb", as_version=4)
    titles = {ex.title: week10.STARS[k] for k, ex in week10.EXERCISES.items()}
    shown = {}
    for c in nb.cells:
        if c.cell_type == "markdown" and c.source.startswith("### Exercise"):
            name = c.source.split(":", 1)[1].split("\n", 1)[0].strip()
            shown[name] = c.source.count("★")
    assert shown == titles


def test_tracing_effect_matches_the_package():
    """The exercise (plain tensors) equals the package's reading of a real trace."""
    from mi_course import zoo
    from mi_course.methods import causal_tracing as ct

    model = zoo.load("kb-lm")
    res = ct.trace(model, "The hobby of Vidro Kosis is", "Vidro Kosis", "photography", n_samples=3)
    mine = week10.tracing_effect(res.scores, res.low, res.high, res.subject)
    assert torch.allclose(mine, lve.tracing_effects(res))


def test_visible_check_never_raises():
    def stub(*a, **k):
        raise NotImplementedError()
    assert week10.check_regression_table(stub) == False
    assert week10.yours_or_reference(stub, week10.TABLE) is week10.TABLE.reference
    assert week10.check_regression_table(week10.regression_table) == True
