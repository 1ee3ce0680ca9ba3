"""What every week's notebook has, read statically from ``solutions/`` (fast; no kernel)."""

import re

import nbformat
import pytest

from mi_course.course import nbgrader_tools

WEEKS = nbgrader_tools.weeks()


def _markdown(week: str, repo) -> list[str]:
    path = next((repo / "solutions" / week).glob("*.ipynb"))
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("week", WEEKS)
def test_sections_are_numbered_one_to_n(week, repo):
    """Numbered sections (``## 3. ...``) run 1, 2, ..., N: no number twice, none missing (prose refers to them)."""
    nums = [int(m.group(1)) for text in _markdown(week, repo) for m in re.finditer(r"^## (\d+)\.", text, re.M)]
    assert nums == list(range(1, len(nums) + 1)), f"{week}: section numbers {nums}"


@pytest.mark.parametrize("week", WEEKS)
def test_predictions_an_open_investigation_and_the_papers_side_by_side(week, repo):
    text = "\n".join(_markdown(week, repo)).lower()
    assert "predict" in text, f"{week}: no prediction asked before a reveal"
    assert "open investigation" in text, f"{week}: no open investigation"
    if week.startswith("00_"):
        return  # the toolkit tour reproduces no paper
    assert re.search(r"ours (vs|beside) the paper", text), f"{week}: no 'ours vs the paper(s)' summary"
