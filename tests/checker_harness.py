"""Helpers to prove that a checker passes the reference, fails the stub and the known mistakes."""

from __future__ import annotations

import contextlib
import io

import pytest

from mi_course.checking.core import Exercise, check


def stub(*args, **kwargs):
    raise NotImplementedError()


def visible_check(ex: Exercise, fn) -> tuple[bool, str]:
    """Run the visible check (``seed=None``) as a student does: (returned value, status shown)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        passed = check(ex, fn)
    return passed, out.getvalue()


def assert_checker_is_honest(ex: Exercise) -> None:
    """Reference passes; blank stub and every listed mistake fail, each with its own hint.

    The hidden test (a seed) raises on failure; the visible check never raises, it returns
    ``True``/``False`` and shows a status block.
    """
    assert check(ex, ex.reference, seed=0) is True
    passed, shown = visible_check(ex, ex.reference)  # fixed + random cases
    assert passed is True and shown.startswith("\u2714"), shown
    passed, shown = visible_check(ex, stub)
    assert passed is False and "not implemented yet" in shown and "Traceback" not in shown, shown
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(ex, stub, seed=0)
    assert len(ex.mistakes) >= 2, f"{ex.id}: list at least two plausible mistakes"
    for m in ex.mistakes:
        with pytest.raises(AssertionError) as info:
            check(ex, m.fn, seed=0)
        assert m.hint in str(info.value), f"{ex.id}: mistake '{m.name}' got the wrong feedback:\n{info.value}"
        passed, shown = visible_check(ex, m.fn)
        assert passed is False and shown.startswith("\u2717"), f"{ex.id}: mistake '{m.name}' passed the visible check"
