import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week05
from mi_course.checking.core import evaluate


@pytest.mark.parametrize("ex_id", sorted(week05.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week05.EXERCISES[ex_id])


def test_at_least_eight_exercises_with_two_mistakes_each():
    assert len(week05.EXERCISES) >= 8
    assert all(len(ex.mistakes) >= 2 for ex in week05.EXERCISES.values())


def test_logit_difference_feedback_names_the_padding():
    def last_pos(logits, io, s, end):
        rows = torch.arange(len(io))
        return (logits[rows, -1, io] - logits[rows, -1, s]).mean()

    with pytest.raises(AssertionError, match="padded"):
        week05.check_logit_difference(last_pos, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2, 1506])
def test_circuit_metric_last_position_only_fails_on_every_seed(seed):
    # the issue: mean-ablating only at the last position passed the seed-0 case
    v = evaluate(week05.FAITHFULNESS, week05._f_last_position, seed=seed)
    assert not v.passed and "not only where the answer is read" in v.message


@pytest.mark.parametrize("seed", [0, 3, 1509])
def test_acdc_prune_mistakes_fail_on_every_seed(seed):
    for m in week05.ACDC_LOOP.mistakes:
        assert not evaluate(week05.ACDC_LOOP, m.fn, seed=seed).passed, m.name
