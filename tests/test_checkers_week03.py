import pytest

from checker_harness import assert_checker_is_honest
from mi_course.checking import week03


@pytest.mark.parametrize("ex_id", sorted(week03.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week03.EXERCISES[ex_id])
