import pytest

from checker_harness import assert_checker_is_honest
from mi_course.checking import week06


def test_at_least_five_exercises():
    assert len(week06.EXERCISES) >= 5


@pytest.mark.parametrize("ex_id", sorted(week06.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week06.EXERCISES[ex_id])


def test_wrong_shape_is_explained():
    import torch

    with pytest.raises(AssertionError, match=r"shape is"):
        week06.check_fourier_basis(lambda p: torch.zeros(p, p + 1), seed=0)
