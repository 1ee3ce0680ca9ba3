"""What a week says, as tests read it: a notebook's prose and a deck, with line breaks folded to single spaces
(so a phrase a test looks for may wrap anywhere in the source)."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def flat(text: str) -> str:
    return " ".join(text.split())


def prose(week: str) -> str:
    """The markdown cells of ``solutions/<week>/<week>.ipynb``, flattened."""
    cells = json.loads((REPO / "solutions" / week / f"{week}.ipynb").read_text())["cells"]
    return flat("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"))


def deck(week: str) -> str:
    """``slides/<week>/slides.md``, flattened."""
    return flat((REPO / "slides" / week / "slides.md").read_text())


def deck_figures(week: str) -> list[str]:
    """The ``figure:NAME`` images of a week's deck, after checking that the deck is final (no placeholder or
    draft marker left) and that ``mi_course.course.figures.weekNN`` draws each of them."""
    import importlib
    import re

    text = (REPO / "slides" / week / "slides.md").read_text()
    for mark in ("{…}", "‹", "›", "DRAFT"):
        assert mark not in text, f"slides of {week} still hold {mark!r}"
    names = re.findall(r"\(figure:([A-Za-z_]\w*)\)", text)
    module = importlib.import_module(f"mi_course.course.figures.week{week[:2]}")
    missing = [n for n in names if not callable(getattr(module, n, None))]
    assert not missing, f"{module.__name__} has no {missing}"
    return names
