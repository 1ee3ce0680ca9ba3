import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week02
from mi_course.checking.core import check


@pytest.mark.parametrize("ex_id", sorted(week02.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week02.EXERCISES[ex_id])


def test_feedback_says_shape_and_where():
    def wrong_shape(q, k):
        return torch.zeros(q.shape[0], q.shape[1], q.shape[2], q.shape[1])

    with pytest.raises(AssertionError, match=r"shape is \[1, 5, 1, 5\], expected \[1, 1, 5, 5\].*different order"):
        week02.check_attention_pattern(wrong_shape, seed=0)

    def slightly_off(q, k):
        from mi_course.methods.attention import attention_pattern

        p = attention_pattern(q, k)
        p[0, 0, 3, 1] += 0.25
        return p

    with pytest.raises(AssertionError, match=r"1 of \d+ entries differ; max \|got - expected\| = 0\.25; first mismatch at index \(0, 0, 3, 1\)"):
        week02.check_attention_pattern(slightly_off, seed=0)


def test_student_exception_is_reported_not_raised():
    def broken(q, k):
        return q @ k  # wrong shapes for matmul

    with pytest.raises(AssertionError, match="your function raised RuntimeError"):
        week02.check_attention_pattern(broken, seed=0)


def test_none_return_is_explained():
    with pytest.raises(AssertionError, match="forget to `return`"):
        week02.check_prev_token_scores(lambda pattern: None, seed=0)


def test_not_fooled_by_rebinding_comparisons(monkeypatch):
    always_true = lambda *a, **k: True  # noqa: E731
    monkeypatch.setattr(torch, "allclose", always_true)
    monkeypatch.setattr(torch, "isclose", lambda a, b, **k: torch.ones_like(a, dtype=torch.bool))
    monkeypatch.setattr(torch.testing, "assert_close", lambda *a, **k: None)
    with pytest.raises(AssertionError, match="was replaced in this kernel"):
        week02.check_attention_pattern(lambda q, k: torch.zeros(1), seed=0)
    # even the reference is refused while the comparisons are patched
    with pytest.raises(AssertionError, match="was replaced"):
        check(week02.ATTENTION_PATTERN, week02.ATTENTION_PATTERN.reference, seed=0)


def test_not_a_function():
    with pytest.raises(AssertionError, match="expected a function"):
        week02.check_attention_pattern(torch.zeros(3), seed=0)
