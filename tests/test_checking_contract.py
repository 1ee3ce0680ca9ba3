"""The "Run All reaches the end" contract of the visible check, and hidden tests unchanged."""

from __future__ import annotations

import nbformat
import pytest
import torch

from checker_harness import stub, visible_check
from mi_course import checking
from mi_course.checking import core, week02


def _wrong(q, k):
    return torch.zeros(q.shape[0], q.shape[2], q.shape[1], k.shape[1])


def test_visible_check_returns_and_never_raises():
    ex = week02.ATTENTION_PATTERN
    assert visible_check(ex, ex.reference)[0] is True
    passed, shown = visible_check(ex, stub)
    assert passed is False
    assert shown.startswith("\u2717 ") and "not implemented yet" in shown
    passed, shown = visible_check(ex, _wrong)
    assert passed is False and "Hint:" in shown and "Traceback" not in shown
    assert len(shown.strip().splitlines()) <= 3  # one short block


def test_week_checkers_return_the_verdict(capsys):
    assert week02.check_attention_pattern(week02.ATTENTION_PATTERN.reference) is True
    assert week02.check_attention_pattern(stub) is False
    assert week02.check_attention_pattern(week02.ATTENTION_PATTERN.reference, seed=3) is True


def test_hidden_test_raises_without_checker_frames():
    with pytest.raises(AssertionError, match="not implemented yet") as info:
        week02.check_attention_pattern(stub, seed=0)
    rendered = "\n".join(info.value._render_traceback_())
    assert "not implemented yet" in rendered
    assert "core.py" not in rendered and "File " not in rendered


def test_student_exception_names_the_students_line():
    def broken(q, k):
        scores = q @ k  # wrong shapes for matmul
        return scores

    passed, shown = visible_check(week02.ATTENTION_PATTERN, broken)
    assert not passed and "raised RuntimeError" in shown and "scores = q @ k" in shown
    assert "core.py" not in shown


def test_html_status_block(monkeypatch):
    shown = []
    monkeypatch.setattr(core, "_in_notebook", lambda: True)
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    assert core.check(week02.ATTENTION_PATTERN, _wrong) is False
    (bundle,) = shown
    assert "\u2717" in bundle["text/html"] and "Hint:" in bundle["text/html"]
    assert bundle["text/plain"].startswith("\u2717 ")
    assert "<script" not in bundle["text/html"]


def test_yours_or_reference(capsys):
    ex = week02.INDUCTION
    mine = lambda pattern, seq_len: ex.reference(pattern, seq_len)  # noqa: E731
    assert checking.yours_or_reference(mine, ex) is ex.reference  # never checked
    assert "using the course's reference" in capsys.readouterr().out
    assert week02.check_induction_scores(stub) is False
    assert week02.yours_or_reference(stub, ex) is ex.reference
    assert week02.check_induction_scores(mine) is True
    assert week02.yours_or_reference(mine, ex) is mine
    capsys.readouterr()
    other = lambda pattern, seq_len: ex.reference(pattern, seq_len)  # noqa: E731
    assert week02.yours_or_reference(other, ex) is ex.reference  # another function object
    with pytest.raises(TypeError, match="Exercise"):
        checking.yours_or_reference(mine, "INDUCTION")


def test_run_all_reaches_the_end_in_a_kernel(tmp_path):
    """An unsolved exercise in a real kernel: a status block, no error, and the next cells run."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from mi_course.checking import week02 as checks\n"
                                  "def prev_token_scores(pattern):\n    raise NotImplementedError()"),
        nbformat.v4.new_code_cell("checks.check_prev_token_scores(prev_token_scores)"),
        nbformat.v4.new_code_cell("fn = checks.yours_or_reference(prev_token_scores, checks.PREV_TOKEN)\n"
                                  "print('reached the end', fn is checks.PREV_TOKEN.reference)"),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    status = nb.cells[1].outputs
    assert any("text/html" in o.get("data", {}) and "not implemented yet" in o["data"]["text/html"] for o in status)
    assert nb.cells[1].outputs[-1]["data"]["text/plain"] == "False"
    assert "reached the end True" in nb.cells[2].outputs[-1]["text"]
