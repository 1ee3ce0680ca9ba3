"""A tiny nbgrader course with one week and two exercises, for fast grading tests."""

from __future__ import annotations

from pathlib import Path

import nbformat

WEEK = "01_tiny"
CONFIG = '''c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "tiny"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
'''


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=0) -> dict:
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution, "task": False}
    if grade:
        m["points"] = points
    return {"nbgrader": m}


def _code(src: str, **meta) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(src, metadata=_meta(**meta) if meta else {})


ANSWER_1 = '''def attention_pattern(q, k):
    ### BEGIN SOLUTION
    import math
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    n = q.shape[1]
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1)
    ### END SOLUTION'''

ANSWER_2 = '''def prev_token_scores(pattern):
    ### BEGIN SOLUTION
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, 2))
    ### END SOLUTION'''

TEST_1 = '''checks.check_attention_pattern(attention_pattern)
### BEGIN HIDDEN TESTS
checks.check_attention_pattern(attention_pattern, seed=11)
### END HIDDEN TESTS'''

TEST_2 = '''checks.check_prev_token_scores(prev_token_scores)
### BEGIN HIDDEN TESTS
checks.check_prev_token_scores(prev_token_scores, seed=12)
### END HIDDEN TESTS'''


def solution_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny week\nTwo exercises."),
        _code("import torch\nfrom mi_course.checking import week02 as checks", grade_id="setup", locked=True),
        _code(ANSWER_1, grade_id="attention_pattern", solution=True),
        _code(TEST_1, grade_id="test_attention_pattern", grade=True, locked=True, points=2),
        nbformat.v4.new_markdown_cell("Now the previous-token score."),
        _code(ANSWER_2, grade_id="prev_token_scores", solution=True),
        _code(TEST_2, grade_id="test_prev_token_scores", grade=True, locked=True, points=1),
    ]
    return nb


def make_course(root: Path) -> Path:
    """Write the tiny course (config + solution notebook) into ``root``; returns ``root``."""
    (root / "solutions" / WEEK).mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(CONFIG)
    nbformat.write(solution_notebook(), root / "solutions" / WEEK / f"{WEEK}.ipynb")
    return root
