"""Week 06's new prose, re-measured on modadd-p113: the curves between the phases, and the middle of
the algorithm (neuron-to-logit map, neurons replaced by their key-frequency terms, each frequency
ablated, attention periodicity)."""

import math

import pytest
import torch

from mi_course import zoo
from mi_course.data.modadd import P, all_pairs
from mi_course.errors import InputError
from mi_course.methods import fourier, grokking


@pytest.fixture(autouse=True)
def _no_grad():
    # local, not torch.set_grad_enabled(False) at import: that would leak into other test modules
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def model():
    return zoo.load("modadd-p113")


@pytest.fixture(scope="module")
def parts(model):
    acts = grokking.neuron_activations(model)
    logits = grokking.all_logits(model).reshape(P * P, P)
    return acts, logits, grokking.neuron_logit_map(model), zoo.card("modadd-p113").figures["key_frequencies"]["value"]


def test_the_curves_move_between_the_phases():
    """Notebook: test accuracy ~9% at 1.4k, ~12% at 4k, ~25% at 6k, ~47% at 7k; test loss 25 -> 4.6."""
    from mi_course.training.modadd_recipe import load_checkpoints

    ck = load_checkpoints()
    ep, acc, loss = ck.column("epoch"), ck.column("test_acc"), ck.column("test_loss")

    def at(e):
        i = min(range(len(ep)), key=lambda j: abs(float(ep[j]) - e))
        return float(acc[i]), float(loss[i])

    assert at(1400)[0] == pytest.approx(0.09, abs=0.015) and at(1400)[1] == pytest.approx(24.9, abs=0.5)
    assert at(4000)[0] == pytest.approx(0.12, abs=0.015) and at(6000)[0] == pytest.approx(0.25, abs=0.02)
    assert at(7000)[0] == pytest.approx(0.47, abs=0.02) and at(7000)[1] == pytest.approx(4.6, abs=0.1)
    assert at(7000)[1] < math.log(P) < at(6000)[1]


def test_neuron_logit_map_sits_in_the_key_frequencies(model, parts):
    """Notebook: >99% of the map in the key frequencies; 97% of 426 single-frequency neurons write at the
    frequency they read."""
    acts, _, W_L, keys = parts
    assert torch.allclose(W_L, model.W_out[0].detach() @ model.W_U.detach(), atol=1e-5)
    norms = fourier.output_frequency_norms(W_L)
    assert norms.shape == (512, 57)
    assert float(norms[:, keys].sum() / norms[:, 1:].sum()) > 0.99
    best, k_in = fourier.neuron_frequency_fractions(acts).max(1)
    single = best >= 0.5
    assert int(single.sum()) == 426
    same = float(((norms[:, 1:].argmax(1) + 1)[single] == (k_in + 1)[single]).float().mean())
    assert same == pytest.approx(0.97, abs=0.01)


def test_neurons_replaced_by_key_frequency_terms(parts):
    """Notebook: 96.9% of the variance; loss 1.0e-7 (model 6.3e-7); other frequencies 4.72 (chance 4.73);
    without 7/20/21/22: 0.007 / 0.166 / 0.009 / 0.076."""
    acts, logits, W_L, keys = parts
    assert keys == [7, 20, 21, 22]
    approx = fourier.approximate_in_frequencies(acts, keys)
    centred = acts - acts.mean((0, 1))
    assert float(1 - (acts - approx).pow(2).sum() / centred.pow(2).sum()) == pytest.approx(0.969, abs=0.005)
    losses = grokking.frequency_ablation_losses(acts, W_L, logits, keys)
    slow = grokking.loss_on(grokking.replace_neurons(logits, acts, approx, W_L))
    assert float(losses[0]) == pytest.approx(slow, rel=0.05, abs=1e-9)
    assert float(losses[0]) < 3e-7 and grokking.loss_on(logits) == pytest.approx(6.3e-7, rel=0.05)
    assert [round(float(x), 3) for x in losses[1:]] == pytest.approx([0.007, 0.166, 0.009, 0.076], abs=0.002)
    others = [k for k in range(1, P // 2 + 1) if k not in keys][::7][: len(keys)]
    assert others == [1, 9, 16, 26]
    assert float(grokking.frequency_ablation_losses(acts, W_L, logits, others)[0]) == pytest.approx(4.72, abs=0.05)
    with pytest.raises(InputError):
        grokking.frequency_ablation_losses(acts, W_L, logits, [])
    with pytest.raises(InputError):
        grokking.replace_neurons(logits, acts, approx[:5], W_L)


def test_approximation_keeps_exactly_the_key_terms():
    p = 11
    x = torch.randn(p, p, 3)
    a = fourier.approximate_in_frequencies(x, [2, 4])
    c = fourier.fourier_transform_2d(a)
    mask = fourier.frequency_mask_2d(p, [2, 4])
    assert int(mask.sum()) == 25 and c[~mask].abs().max() < 1e-4
    assert torch.allclose(c[mask], fourier.fourier_transform_2d(x)[mask], atol=1e-4)
    assert torch.allclose(fourier.approximate_in_frequencies(x, list(range(1, 6))), x, atol=1e-4)


def test_attention_is_periodic_at_the_key_frequencies(model, parts):
    """Notebook: attention from '=' to a averages 0.5, spreads ~0.25-0.27, and 96-98% of its variance
    is in the key-frequency terms (81 of 12,769)."""
    keys = parts[3]
    _, cache = model.run_with_cache(all_pairs(P), names_filter=lambda n: n.endswith("hook_pattern"))
    to_a = cache["blocks.0.attn.hook_pattern"][:, :, -1, 0].reshape(P, P, -1)
    power = fourier.fourier_transform_2d(to_a - to_a.mean((0, 1))).pow(2)
    mask = fourier.frequency_mask_2d(P, keys)
    assert int(mask.sum()) == 81
    share = (power * mask[..., None]).sum((0, 1)) / power.sum((0, 1))
    assert float(share.min()) > 0.955 and float(share.max()) < 0.985
    assert torch.allclose(to_a.mean((0, 1)), torch.full((4,), 0.5), atol=0.01)
    assert 0.24 <= float(to_a.std((0, 1)).min()) and float(to_a.std((0, 1)).max()) <= 0.28
