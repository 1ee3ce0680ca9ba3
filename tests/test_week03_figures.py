"""The numbers week 03's notebook and deck quote, re-measured on the shipped ``text-lm`` (and its shipped search).

If ``text-lm`` is retrained, rebuild its search (``python -m mi_course.training.textlm_triggers``), rerun
these tests, and update the prose where they fail.
"""

import pytest
import torch

from mi_course import zoo
from mi_course.course.figures import week03 as fig
from mi_course.methods import ffn_memories as fm
from mi_course.methods import logit_lens as ll


@pytest.fixture(scope="module")
def model():
    return zoo.load("text-lm")


@pytest.fixture(scope="module")
def top():
    return fm.load_top_activations()


def test_shipped_search_matches_the_checkpoint(top):
    assert top.values.shape == (4, 512, 20)
    assert top.tokens.shape[0] * (top.tokens.shape[1] - 1) == 127_000
    assert (top.pos_idx >= 1).all() and (top.values[..., :-1] >= top.values[..., 1:]).all()


def test_shipped_search_is_the_search(model, top):
    """Spot check: the first 24 windows searched again give activations no larger than the shipped top-20."""
    small = fm.top_activations(model, top.tokens[:24], k=1)
    assert (small.values[..., 0] <= top.values[..., 0] + 1e-4).all()


def test_lens_numbers(model):
    sample = fig._setup()[1]
    rep = ll.lens_report(model, sample[:16], ll.load_tuned_lens(model))
    assert rep["logit_agreement"].tolist() == pytest.approx([0.283, 0.415, 0.57, 1.0], abs=0.006)
    assert float(rep["logit_loss"][0]) == pytest.approx(5.23, abs=0.01) and float(rep["tuned_loss"][0]) == pytest.approx(4.40, abs=0.01)
    assert float(rep["logit_loss"][2]) == pytest.approx(4.19, abs=0.01) and float(rep["tuned_loss"][2]) == pytest.approx(3.94, abs=0.01)
    assert bool((rep["tuned_loss"][:3] < rep["logit_loss"][:3]).all())
    assert float(rep["tuned_agreement"][0]) == pytest.approx(0.48, abs=0.006) and float(rep["tuned_agreement"][3]) == pytest.approx(0.998, abs=0.002)


def test_keys_and_values(model, top):
    shares = [fm.mode_share(fm.last_tokens(top)[L]) for L in range(4)]
    assert all(0.475 <= s <= 0.51 for s in shares), shares
    assert torch.allclose(fm.last_token_share(top), torch.tensor(shares), atol=1e-4)
    flat = top.tokens[:, 1:].reshape(-1)
    random_last = flat[torch.randint(0, flat.numel(), (512, 20), generator=torch.Generator().manual_seed(0))]
    assert 0.085 < fm.mode_share(random_last) < 0.1
    agree = fm.agreement_by_layer(model, top)
    assert agree.tolist() == pytest.approx([0.225, 0.199, 0.193, 0.176], abs=0.003)
    chance = fm.agreement_by_layer(model, top, shuffled=True)
    assert 0.01 < float(chance.min()) and float(chance.max()) < 0.08
    k1 = fm.agreement_by_layer(model, top, k=1)
    assert 0.02 <= float(k1.min()) and float(k1.max()) <= 0.04
    assert float(fm.agreement_by_layer(model, top, k=1, shuffled=True).max()) <= 0.006
    w = model.state_dict()["ln_final.weight"]
    assert 1.15 < float(w.min()) and float(w.max()) < 1.7
    changed = [float((fm.value_vocab_all(model, L).argmax(-1) != (model.W_out[L] @ model.W_U).argmax(-1)).float().mean())
               for L in range(4)]
    assert all(0.075 <= c <= 0.11 for c in changed), changed


def test_interventions():
    num = fig.intervention_numbers()
    a, b = num[0], num[3]
    assert (a["neuron"], a["token"], b["neuron"]) == (263, ":", 437)
    assert a["logp_clean"] == pytest.approx(-0.22, abs=0.01) and a["logp_ablated"] == pytest.approx(-0.23, abs=0.01)
    assert a["logp_boosted"] == pytest.approx(-0.17, abs=0.01)
    assert a["top1_clean"] == pytest.approx(0.9) and a["top1_boosted"] == pytest.approx(1.0)
    assert b["logp_clean"] == pytest.approx(-1.20, abs=0.01) and b["logp_ablated"] == pytest.approx(-1.41, abs=0.01)
    assert b["logp_boosted"] == pytest.approx(-0.83, abs=0.01)
    assert max(a["control_max_drop"], b["control_max_drop"]) < 0.005
    assert a["direct_effect"] == pytest.approx(0.89, abs=0.01) and b["direct_effect"] == pytest.approx(0.66, abs=0.01)
    assert a["ablation_logit_change"] == pytest.approx(0.14, abs=0.01) and b["ablation_logit_change"] == pytest.approx(0.22, abs=0.01)
    assert a["lens_clean"][0] == pytest.approx(0.65, abs=0.01) and a["lens_boosted"][0] == pytest.approx(0.75, abs=0.01)
    assert a["lens_clean"][-1] == pytest.approx(0.90, abs=0.01) and a["lens_boosted"][-1] == pytest.approx(0.90, abs=0.01)
