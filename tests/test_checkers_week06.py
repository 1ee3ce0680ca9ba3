import pytest

from checker_harness import assert_checker_is_honest
from mi_course.checking import week06
from mi_course.checking.core import evaluate


def test_at_least_eight_exercises_with_two_mistakes_each():
    assert len(week06.EXERCISES) >= 8
    assert all(len(ex.mistakes) >= 2 for ex in week06.EXERCISES.values())


@pytest.mark.parametrize("ex_id", sorted(week06.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week06.EXERCISES[ex_id])


def test_wrong_shape_is_explained():
    import torch

    with pytest.raises(AssertionError, match=r"shape is"):
        week06.check_fourier_basis(lambda p: torch.zeros(p, p + 1), seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2, 1603])
def test_key_frequencies_that_ignore_fraction_fail(seed):
    # the issue: every case used fraction 0.9 with keys far above the floor, so this passed
    from mi_course.methods import fourier

    v = evaluate(week06.KEY_FREQS, lambda norms, fraction: fourier.key_frequencies_from_norms(norms, 0.9, max_keys=100), seed=seed)
    assert not v.passed and "fraction" in v.message
    cases = week06.KEY_FREQS.cases(seed)
    assert len({c.kwargs["fraction"] for c in cases}) >= 2 or any(c.kwargs["fraction"] != 0.9 for c in cases)
