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
