"""Week 13's checkers (steering, sparse feature circuits, SHIFT) pass the reference and fail the stub and the
listed mistakes, each with its own hint; answers right only on one argument value fail too."""

import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week13


def test_the_week_meets_the_exercise_floors():
    assert len(week13.EXERCISES) >= 8
    assert all(len(ex.mistakes) >= 2 for ex in week13.EXERCISES.values())


@pytest.mark.parametrize("ex_id", sorted(week13.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week13.EXERCISES[ex_id])


def test_steering_that_ignores_the_strength_fails():
    def strength_one(act, vector, strength, positions):
        out = act.clone()
        idx = slice(None) if positions is None else positions
        out[:, idx] += vector
        return out

    with pytest.raises(AssertionError):
        week13.check_steer(strength_one, seed=0)


def test_diff_of_means_that_ignores_the_position_fails():
    def always_last(acts_with, acts_without, position):
        return acts_with[:, -1].mean(0) - acts_without[:, -1].mean(0)

    with pytest.raises(AssertionError):
        week13.check_diff_of_means(always_last, seed=0)


def test_attribution_that_forgets_to_sum_over_the_batch_fails():
    def batch_mean(model, sae, hook_name, tokens, patch_tokens, metric):
        lat, err = week13._node_reference(model, sae, hook_name, tokens, patch_tokens, metric)
        return lat / tokens.shape[0], err / tokens.shape[0]

    with pytest.raises(AssertionError):
        week13.check_node_attribution(batch_mean, seed=0)


def test_ig_with_a_fixed_number_of_steps_fails():
    def ten_steps(model, sae, hook_name, tokens, patch_tokens, metric, steps):
        return week13._ig_reference(model, sae, hook_name, tokens, patch_tokens, metric, 10)

    with pytest.raises(AssertionError):
        week13.check_integrated_gradients(ten_steps, seed=0)


def test_integrated_gradients_and_attribution_patching_differ_on_the_cases():
    """The IG exercise is not the attribution one in disguise: on its cases the two disagree."""
    case = week13._ig_cases(0)[1].kwargs
    ig, _ = week13._ig_reference(**case)
    atp, _ = week13._node_reference(**{k: v for k, v in case.items() if k != "steps"})
    assert (ig - atp).abs().max() > 0.1 * atp.abs().max() and atp.abs().max() > 1e-2


def test_purity_ignoring_min_count_for_the_default_fails():
    def min_three(latents, labels, min_count):
        return week13._purity_reference(latents, labels, 3)

    with pytest.raises(AssertionError):
        week13.check_purity(min_three, seed=0)


def test_shift_ablation_of_a_fixed_set_fails():
    def first_latent(sae, x, latents):
        return week13._shift_reference(sae, x, latents[:1])

    with pytest.raises(AssertionError):
        week13.check_shift_ablation(first_latent, seed=0)
