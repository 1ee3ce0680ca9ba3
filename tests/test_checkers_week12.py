import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week12


def test_at_least_six_exercises():
    assert len(week12.EXERCISES) >= 6


@pytest.mark.parametrize("ex_id", sorted(week12.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week12.EXERCISES[ex_id])


def test_answer_right_only_on_the_default_k_fails():
    def fixed_k(pre, k):
        vals, idx = torch.relu(pre).topk(2, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, vals)

    with pytest.raises(AssertionError):
        week12.check_topk(fixed_k, seed=0)
