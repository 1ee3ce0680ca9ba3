import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week09
from mi_course.methods import memit, rome


@pytest.mark.parametrize("ex_id", sorted(week09.MEMIT_EXERCISES))  # GRACE/ripple: test_checkers_week09_grace.py
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week09.EXERCISES[ex_id])


def test_the_weeks_exercises_with_two_mistakes_each():
    assert len(week09.MEMIT_EXERCISES) >= 8 and len(week09.EXERCISES) >= 12
    assert all(len(ex.mistakes) >= 2 for ex in week09.EXERCISES.values())


def test_reference_loop_equals_the_package():
    """The notebook's loop (memit_layers) gives the package's memit_edits, given the same targets and C."""
    reqs, zs, layers, C = week09._loop_inputs(0)
    model = week09._model()
    ctx = week09._contexts(0)
    mine = week09.memit_layers(model, reqs, zs, layers, C, 468.75, ctx)
    hp = memit.MemitHparams(context_lengths=((4, 2),), seed=0, mom2_update_weight=468.75)
    assert ctx == rome.context_templates(model, hp.context_lengths, hp.seed)
    pkg = memit.memit_edits(model, reqs, layers, hp, zs=zs, C=C)
    assert all(torch.allclose(a, e.dW, atol=1e-5) for a, e in zip(mine, pkg))
