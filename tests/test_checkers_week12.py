import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week12


def test_at_least_six_exercises():
    assert len(week12.EXERCISES) >= 6


@pytest.mark.parametrize("ex_id", sorted(week12.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week12.EXERCISES[ex_id])


def test_answer_right_only_on_the_default_k_fails():
    def fixed_k(pre, k):
        vals, idx = torch.relu(pre).topk(2, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, vals)

    with pytest.raises(AssertionError):
        week12.check_topk(fixed_k, seed=0)


def test_training_outcome_of_the_reference_is_all_ones():
    assert week12.training_outcome(week12._reference_train, 0).tolist() == [1.0, 1.0, 1.0]


def test_a_loop_that_never_zeroes_gradients_fails():
    def no_zero_grad(sample, d_in, d_sae, steps, l1_coeff=0.3, lr=3e-3, seed=0):
        torch.manual_seed(seed)
        W_enc = (torch.randn(d_in, d_sae) * 0.1).requires_grad_()
        W_dec = (torch.randn(d_sae, d_in) * 0.1).requires_grad_()
        b_enc, b_dec = torch.zeros(d_sae, requires_grad=True), torch.zeros(d_in, requires_grad=True)
        opt = torch.optim.SGD([W_enc, b_enc, W_dec, b_dec], lr=lr)
        for _ in range(steps):
            x = sample(256)
            f = torch.relu((x - b_dec) @ W_enc + b_enc)
            loss = (x - f @ W_dec - b_dec).pow(2).sum(-1).mean()
            loss.backward()
            opt.step()
        return {"W_enc": W_enc.detach(), "b_enc": b_enc.detach(), "W_dec": W_dec.detach(), "b_dec": b_dec.detach()}

    with pytest.raises(AssertionError):
        week12.check_train_sae(no_zero_grad, seed=0)


def test_top_activating_without_sorting_or_one_per_window_fails():
    def argmax_first_k(acts, k):  # the first k windows, each at its max
        return torch.stack([torch.arange(k), acts[:k].argmax(-1)], -1)

    with pytest.raises(AssertionError):
        week12.check_top_activating(argmax_first_k, seed=0)


def test_detection_on_the_first_token_only_fails():
    def first_token(explanation, activating, non_activating):
        tpr = sum(explanation(c)[0] for c in activating) / len(activating)
        tnr = sum(not explanation(c)[0] for c in non_activating) / len(non_activating)
        return (tpr + tnr) / 2

    with pytest.raises(AssertionError):
        week12.check_detection_score(first_token, seed=0)


def test_fuzzing_that_ignores_the_false_highlights_fails():
    def true_only(explanation, contexts, true_marks, false_marks):
        from mi_course.methods import autointerp
        return sum(autointerp.accepts(explanation, c, t) for c, t in zip(contexts, true_marks)) / len(contexts)

    with pytest.raises(AssertionError):
        week12.check_fuzzing_score(true_only, seed=0)
