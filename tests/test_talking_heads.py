"""Talking heads on attn-only-2l: the 0.3 -> 1.1 channel, and an intervention that breaks induction."""

import pytest
import torch

from mi_course.data.induction import repeated_random_tokens
from mi_course.errors import InputError
from mi_course.methods import circuits, induction
from mi_course.methods import talking_heads as th


def test_component_scores_match_composition_score(attn_model):
    ov = circuits.ov_circuit(attn_model, 0, 3).AB
    R = th.receiver_matrix(attn_model, 1, 1, "K", fold_ln=False)
    assert torch.allclose(R, circuits.qk_circuit(attn_model, 1, 1).AB.T)
    cs = th.component_composition_scores(ov, R)
    assert cs.shape == (attn_model.cfg.d_head,)
    # the components split the sender's output: squared shares add up to the K-composition score's square
    total = circuits.composition_score(ov, R)
    U, S, Vh = th.svd(R)
    weighted = (cs**2 * S[: len(cs)] ** 2).sum() / (S**2).sum()
    assert float(weighted) == pytest.approx(total**2, rel=1e-3)


def test_prev_token_head_talks_to_induction_head_most(attn_model):
    R = th.receiver_matrix(attn_model, 1, 1, "K")
    strength = [th.channel(circuits.ov_circuit(attn_model, 0, h).AB, R)[0][:4].sum() for h in range(4)]
    assert int(torch.stack(strength).argmax()) == 3


def test_projecting_out_the_channel_breaks_induction(attn_model):
    toks = repeated_random_tokens(16, 24, 128, seed=5)
    base = induction.head_scores(attn_model, toks, 24)["induction"][1, 1]
    ov = circuits.ov_circuit(attn_model, 0, 3).AB
    R = th.receiver_matrix(attn_model, 1, 1, "K")
    _, cache = th.run_with_projected_sender(attn_model, toks, 0, 3, th.channel_basis(ov, R, 8))
    cut = induction.induction_scores(cache["pattern", 1], 24)[1]
    _, cache = th.run_with_projected_sender(attn_model, toks, 0, 3, th.random_subspace(64, 8))
    rand = induction.induction_scores(cache["pattern", 1], 24)[1]
    assert base > 0.75 and cut < 0.45 and rand > 0.65
    # projecting out nothing changes nothing
    _, cache = th.run_with_projected_sender(attn_model, toks, 0, 3, torch.zeros(64, 1))
    assert induction.induction_scores(cache["pattern", 1], 24)[1] == pytest.approx(float(base), abs=1e-5)


def test_effective_rank():
    assert th.effective_rank(torch.tensor([10.0, 0.1, 0.1])) == 1
    assert th.effective_rank(torch.ones(10)) == 9


def test_bad_inputs(attn_model):
    with pytest.raises(InputError, match="kind"):
        th.receiver_matrix(attn_model, 1, 1, "X")
    with pytest.raises(InputError, match="does not exist"):
        th.receiver_matrix(attn_model, 2, 0, "K")
    with pytest.raises(InputError, match="components"):
        th.read_subspace(torch.eye(4), [7])
    with pytest.raises(InputError, match="basis"):
        th.run_with_projected_sender(attn_model, torch.zeros(1, 5, dtype=torch.long), 0, 3, torch.zeros(10, 2))


# -- the figures week 04's prose quotes (notebook, deck, figures/week04.py) ----------------------
def test_random_direction_baseline(attn_model):
    """A random direction scores ~1/sqrt(d_model) = 0.125, not sqrt(d_head/d_model) = 0.5."""
    from mi_course.course.figures.week04 import random_baseline

    base = random_baseline(attn_model)
    assert 0.115 < float(base.mean()) < 0.13
    assert 0.075 < float(base.quantile(0.05)) < 0.095 and 0.155 < float(base.quantile(0.95)) < 0.18
    q, _ = torch.linalg.qr(torch.randn(64, 64))
    ov = circuits.ov_circuit(attn_model, 0, 3).AB
    assert float(th.direction_scores(ov, q).pow(2).sum()) == pytest.approx(1.0, abs=1e-4)


def test_component_scores_against_the_baseline(attn_model):
    from mi_course.course.figures.week04 import random_baseline

    hi = float(random_baseline(attn_model).quantile(0.95))
    R = th.receiver_matrix(attn_model, 1, 1, "K")
    sc = {h: th.component_composition_scores(circuits.ov_circuit(attn_model, 0, h).AB, R) for h in range(4)}
    above = {h: int((s > hi).sum()) for h, s in sc.items()}
    sumsq = {h: float(s.pow(2).sum()) for h, s in sc.items()}
    assert above[3] == 14 and 0.2 < float(sc[3][:14].min()) and float(sc[3][:14].max()) < 0.29
    assert 0.85 < sumsq[3] < 0.93 and 0.45 < sumsq[2] < 0.56 and 7 <= above[2] <= 10
    assert above[0] == 0 and above[1] <= 4 and sumsq[0] < 0.22 and 0.22 < sumsq[1] < 0.33
    assert sum(sumsq.values()) <= 4.0 and all(v <= 1.0 + 1e-5 for v in sumsq.values())
    S, _ = th.channel(circuits.ov_circuit(attn_model, 0, 3).AB, R)
    assert th.effective_rank(S) == 11


@pytest.fixture(scope="module")
def ioi_model():
    from mi_course import zoo

    return zoo.load("ioi-lm")


def test_ioi_query_channels_are_low_rank_for_every_sender(ioi_model):
    for s in range(4):
        for r in range(4):
            R = th.receiver_matrix(ioi_model, 2, r, "Q")
            assert 4 <= th.effective_rank(th.channel(circuits.ov_circuit(ioi_model, 1, s).AB, R)[0]) <= 6
            sumsq = float(th.sender_receiver_scores(ioi_model, 1, 2, r, "Q")[s].pow(2).sum())
            assert 0.2 < sumsq < 0.35, (s, r, sumsq)


def test_ioi_channel_intervention():
    from mi_course.course.figures.week04 import ioi_channel_effects

    e = ioi_channel_effects()
    assert e["clean"]["value"] == pytest.approx(11.65, abs=0.05)
    h0, h1 = e["1.0"], e["1.1"]
    assert h0["channel"] == pytest.approx(10.89, abs=0.05) and h1["channel"] == pytest.approx(10.97, abs=0.05)
    assert h0["channel_layer2_only"] == pytest.approx(11.08, abs=0.05)
    assert h0["random_mean"] == pytest.approx(11.63, abs=0.05) and h0["random_min"] > h0["channel"] + 0.5
    assert 11.5 < h0["inside_mean"] < 11.6 and h0["inside_min"] > h0["channel"] + 0.3
    assert h0["top_output"] < h0["channel"] - 0.1 and h0["top_output"] == pytest.approx(10.7, abs=0.1)
    assert 0.87 < h0["cos_channel_top"] < 0.94
    assert e["1.3"]["channel"] == pytest.approx(11.0, abs=0.1)


def test_new_week04_methods_reject_bad_input(attn_model):
    with pytest.raises(InputError, match="directions"):
        th.direction_scores(torch.eye(4), torch.zeros(5, 2))
    with pytest.raises(InputError, match="sender_layer"):
        th.sender_receiver_scores(attn_model, 1, 1, 0, "K")
    with pytest.raises(InputError, match="reader_layer"):
        th.run_with_edit_seen_only_by(attn_model, torch.zeros(1, 5, dtype=torch.long), 0, 3, torch.zeros(64, 1), 0)
    with pytest.raises(InputError, match="random_effects"):
        th.empirical_p_value(0.5, torch.tensor([]))
    assert th.empirical_p_value(1.0, torch.zeros(30)) == pytest.approx(1 / 31)
