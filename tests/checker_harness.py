"""Helpers to prove that a checker passes the reference, fails the stub and the known mistakes."""

from __future__ import annotations

import pytest

from mi_course.checking.core import Exercise, check


def stub(*args, **kwargs):
    raise NotImplementedError()


def assert_checker_is_honest(ex: Exercise) -> None:
    """Reference passes; blank stub and every listed mistake fail, each with its own hint."""
    check(ex, ex.reference, seed=0)
    check(ex, ex.reference)  # fixed + random cases
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(ex, stub)
    assert len(ex.mistakes) >= 2, f"{ex.id}: list at least two plausible mistakes"
    for m in ex.mistakes:
        with pytest.raises(AssertionError) as info:
            check(ex, m.fn, seed=0)
        assert m.hint in str(info.value), f"{ex.id}: mistake '{m.name}' got the wrong feedback:\n{info.value}"
