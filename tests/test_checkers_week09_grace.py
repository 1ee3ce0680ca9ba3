import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week09_grace as w9
from mi_course.methods import grace


@pytest.mark.parametrize("ex_id", sorted(w9.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(w9.EXERCISES[ex_id])


def test_four_exercises_with_two_mistakes_each():
    assert len(w9.EXERCISES) >= 4
    assert all(len(ex.mistakes) >= 2 for ex in w9.EXERCISES.values())


def test_every_action_is_exercised():
    """The update cases cover add, expand and split."""
    actions = {w9.codebook_update(**c.kwargs)[1] for c in w9._update_cases(0)}
    assert actions == {"add", "expand", "split"}


def test_lookup_cases_mix_hits_and_misses():
    for case in w9._lookup_cases(0):
        out = w9.grace_layer_output(**case.kwargs)
        replaced = (out != case.kwargs["layer_out"]).any(1)
        assert 0 < int(replaced.sum()) < len(replaced)


def test_reference_lookup_equals_the_adaptor_rule():
    """The exercise's per-row lookup is what the adaptor's hook does (nearest key, <= radius)."""
    case = w9._lookup_cases(1)[0].kwargs
    dist, idx = torch.cdist(case["queries"], case["keys"]).min(1)
    hit = dist <= case["radii"][idx]
    expected = torch.where(hit[:, None], case["values"][idx], case["layer_out"])
    assert torch.allclose(w9.grace_layer_output(**case), expected)
    assert grace.codebook_lookup(case["keys"], case["values"], case["radii"], case["keys"][0]) is not None


def test_visible_check_never_raises():
    def stub(*a, **k):
        raise NotImplementedError()
    assert w9.check_retention_rates(stub) == False
    assert w9.check_retention_rates(w9.retention_rates) == True
    assert w9.yours_or_reference(stub, w9.RR) is w9.RR.reference
