import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week05


@pytest.mark.parametrize("ex_id", sorted(week05.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week05.EXERCISES[ex_id])


def test_at_least_six_exercises_with_two_mistakes_each():
    assert len(week05.EXERCISES) >= 6
    assert all(len(ex.mistakes) >= 2 for ex in week05.EXERCISES.values())


def test_logit_difference_feedback_names_the_padding():
    def last_pos(logits, io, s, end):
        rows = torch.arange(len(io))
        return (logits[rows, -1, io] - logits[rows, -1, s]).mean()

    with pytest.raises(AssertionError, match="padded"):
        week05.check_logit_difference(last_pos, seed=0)
