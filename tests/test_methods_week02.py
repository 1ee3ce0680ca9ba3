"""The week-02 claims, measured on the shipped model (the notebook's prose depends on these)."""

import pytest
import torch

from mi_course.data.induction import repeated_random_tokens, token_names, training_batch
from mi_course.errors import InputError
from mi_course.methods import ablation, attention, circuits, induction

SEQ = 24


@pytest.fixture(scope="module")
def tokens():
    return repeated_random_tokens(16, SEQ, 128, seed=7)


def test_attention_pattern_matches_the_model(attn_model, tokens):
    _, cache = attn_model.run_with_cache(tokens)
    for layer in range(2):
        mine = attention.attention_pattern(cache["q", layer], cache["k", layer])
        assert torch.allclose(mine, cache["pattern", layer], atol=1e-5)


def test_induction_circuit_claims(attn_model, tokens):
    s = induction.head_scores(attn_model, tokens, SEQ)
    assert s["prev_token"][0, 3] > 0.9 and s["prev_token"][0, [0, 1, 2]].max() < 0.5
    assert (s["induction"][1] > 0.5).all()
    assert s["induction"][0].max() < 0.1


def test_ablation_claims(attn_model, tokens):
    base = induction.repeated_half_losses(induction.per_token_loss(attn_model(tokens), tokens), SEQ)
    prev = induction.repeated_half_losses(ablation.ablated_head_loss(attn_model, tokens, 0, 3), SEQ)[1]
    assert prev > 0.8 * base[0]  # ablating the previous-token head removes induction
    for h in range(4):  # each single induction head is redundant
        assert induction.repeated_half_losses(ablation.ablated_head_loss(attn_model, tokens, 1, h), SEQ)[1] < 0.5 * base[0]
    all_l1 = ablation.ablate_heads(attn_model, tokens, [(1, h) for h in range(4)])
    assert induction.repeated_half_losses(induction.per_token_loss(all_l1, tokens), SEQ)[1] > 0.8 * base[0]


def test_composition_claims(attn_model):
    base = circuits.baseline_composition_score(64, 16)
    k = circuits.composition_scores(attn_model, "K")[0, :, 1, :]
    q = circuits.composition_scores(attn_model, "Q")[0, :, 1, :]
    assert k[3].min() > 1.5 * base  # 0.3 -> every layer-1 head
    assert k[3].mean() > k[:3].max()
    assert q[3].max() < base


def test_ov_copying_claim(attn_model):
    for layer, lo, hi in [(1, 0.45, 0.7), (0, 0.0, 0.25)]:  # prose: 49-63% in layer 1
        for head in range(4):
            w = circuits.head_weights(attn_model, layer, head)
            ov = circuits.full_ov_circuit(attn_model.W_E, w["W_V"], w["W_O"], attn_model.W_U).AB[1:, 1:]
            frac = (ov.argmax(-1) == torch.arange(127)).float().mean()
            assert lo <= frac <= hi, (layer, head, frac)


def test_training_batch_has_copies_at_random_offsets():
    g = torch.Generator().manual_seed(0)
    x = training_batch(8, 64, 128, g)
    assert x.shape == (8, 64) and (x[:, 0] == 0).all() and (x[:, 1:] > 0).all()
    assert len(token_names(128)) == 128 and token_names(128)[0] == "<bos>"


def test_bad_inputs_are_clear(attn_model):
    with pytest.raises(InputError, match="does not exist"):
        ablation.ablated_head_loss(attn_model, torch.zeros(1, 5, dtype=torch.long), 2, 0)
    with pytest.raises(InputError, match="pattern covers"):
        induction.induction_scores(torch.zeros(1, 1, 10, 10), seq_len=6)
    with pytest.raises(InputError, match="expected"):
        attention.attention_pattern(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(InputError, match="mode must be"):
        ablation.ablate_heads(attn_model, torch.zeros(1, 5, dtype=torch.long), [(0, 0)], mode="bogus")


def test_direct_path_claim(attn_model):
    """Prose: the direct path's diagonal is slightly negative; the induction heads' OV diagonals stand out."""
    def diagonal_z(t):
        return ((t.diagonal().mean() - t.mean()) / t.std()).item()

    assert -3 < diagonal_z((attn_model.W_E @ attn_model.W_U)[1:, 1:]) < 0
    for head in range(4):
        w = circuits.head_weights(attn_model, 1, head)
        ov = circuits.full_ov_circuit(attn_model.W_E, w["W_V"], w["W_O"], attn_model.W_U).AB[1:, 1:]
        assert diagonal_z(ov) > 2


def test_residual_stream_claim(attn_model, tokens):
    """Prose (section 1): without layer 1 the repeated half is as hard as the first; embeddings and
    layer 0 contribute almost nothing directly."""
    _, cache = attn_model.run_with_cache(tokens)
    parts = {"embed": cache["hook_embed"] + cache["hook_pos_embed"],
             "l0": cache["blocks.0.hook_attn_out"], "l1": cache["blocks.1.hook_attn_out"]}
    total = sum(parts.values())

    def halves(resid):
        logits = attn_model.unembed(attn_model.ln_final(resid))
        return induction.repeated_half_losses(induction.per_token_loss(logits, tokens), SEQ)

    first, second = halves(total)
    assert halves(total - parts["l1"])[1] > 0.95 * first
    for name in ("embed", "l0"):
        assert abs(halves(total - parts[name])[1] - second) < 0.1, name
