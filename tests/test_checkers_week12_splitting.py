import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week12
from mi_course.checking import week12_splitting as w12s
from mi_course.methods import feature_splitting as fs


@pytest.mark.parametrize("ex_id", sorted(w12s.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(w12s.EXERCISES[ex_id])


def test_gathered_into_week12():
    assert set(w12s.EXERCISES) <= set(week12.EXERCISES)
    assert week12.check_nearest_parent(w12s.nearest_parent) == True
    assert all(len(ex.mistakes) >= 2 for ex in w12s.EXERCISES.values())


def test_cases_hold_what_the_mistakes_need():
    """nearest_parent's cases: unequal decoder norms and rows opposite to a parent; count_splits': a parent
    with children on both sides of the threshold; within_parent's: children that fire outside their parent."""
    for case in w12s._parent_cases(0):
        norms = case.kwargs["small_decoder"].norm(dim=-1)
        assert float(norms.max() / norms.min()) > 2
        cos = fs.decoder_cosines(case.kwargs["small_decoder"], case.kwargs["large_decoder"])
        assert float(cos.min()) < -0.9
    for case in w12s._split_cases(0):
        kw = case.kwargs
        n_all = torch.bincount(kw["parent"], minlength=kw["n_small"])
        n_close = torch.bincount(kw["parent"][kw["cos"] >= kw["threshold"]], minlength=kw["n_small"])
        assert ((n_all >= 2) & (n_close == 1)).any() and ((n_close >= 2) & (n_all > n_close)).any()
    for case in w12s._within_cases(0):
        within = w12s.within_parent(**case.kwargs)
        assert 0.3 < float(within.min()) and float(within.max()) < 1.0


def test_an_answer_that_ignores_the_threshold_argument_fails():
    def fixed(parent, cos, n_small, threshold):
        return int((torch.bincount(parent[cos >= 0.6], minlength=n_small) >= 2).sum())

    with pytest.raises(AssertionError):
        w12s.check_count_splits(fixed, seed=0)


def test_nearest_parent_returning_only_indices_fails():
    def indices_only(small_decoder, large_decoder):
        return w12s.nearest_parent(small_decoder, large_decoder)[0]

    with pytest.raises(AssertionError):
        w12s.check_nearest_parent(indices_only, seed=0)
