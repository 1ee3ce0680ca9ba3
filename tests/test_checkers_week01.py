import pytest

from checker_harness import assert_checker_is_honest
from mi_course.checking import week01


@pytest.mark.parametrize("ex_id", sorted(week01.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week01.EXERCISES[ex_id])
