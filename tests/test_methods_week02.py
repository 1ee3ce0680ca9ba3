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
    # prose: 0.2 is a partial previous-token head (0.35, ~5x the uniform baseline 0.07); 0.0, 0.1 near baseline
    n = tokens.shape[1]
    uniform = induction.prev_token_scores((torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None])[None, None]).item()
    assert 0.06 < uniform < 0.08
    assert 0.3 < s["prev_token"][0, 2] < 0.4
    assert s["prev_token"][0, [0, 1]].max() < 2 * uniform


def test_ablation_claims(attn_model, tokens):
    base = induction.repeated_half_losses(induction.per_token_loss(attn_model(tokens), tokens), SEQ)
    assert 4.95 < base[0] < 5.15 and 0.40 < base[1] < 0.47  # prose: first half ~5.06 (> ln 127), repeated 0.44
    prev = induction.repeated_half_losses(ablation.ablated_head_loss(attn_model, tokens, 0, 3), SEQ)[1]
    assert prev > 0.8 * base[0] and 4.3 < prev < 4.7  # ablating the previous-token head removes induction (~4.5)
    for h in range(4):  # prose: one induction head ablated roughly doubles the repeated half (0.84-0.92)...
        one = induction.repeated_half_losses(ablation.ablated_head_loss(attn_model, tokens, 1, h), SEQ)[1]
        assert 0.82 < one < 0.94 and one < 0.25 * base[0]  # ...yet stays far below the first half
    all_l1 = ablation.ablate_heads(attn_model, tokens, [(1, h) for h in range(4)])
    assert 5.3 < induction.repeated_half_losses(induction.per_token_loss(all_l1, tokens), SEQ)[1] < 5.6  # prose: 5.46
    partial = induction.repeated_half_losses(ablation.ablated_head_loss(attn_model, tokens, 0, 2), SEQ)[1]
    assert 0 < partial - base[1] < 0.06  # prose: ablating 0.2 costs about 0.03 nats


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


def _dense(m):
    return (m.AB if hasattr(m, "AB") else m)[1:, 1:]


def test_k_composition_circuit_claims(attn_model):
    """Prose (section 10): through 0.3 the K-composition circuit's top-1 diagonal is 100% for every
    layer-1 head, the direct QK circuit's 0%; through 0.2 about half (47-57%), through 0.0/0.1 at most 11%."""
    W_E = attn_model.W_E.detach()
    for h in range(4):
        w1 = circuits.head_weights(attn_model, 1, h)
        assert circuits.top1_diagonal_fraction(_dense(circuits.full_qk_circuit(W_E, w1["W_Q"], w1["W_K"]))) < 0.01
        via = []
        for h0 in range(4):
            w0 = circuits.head_weights(attn_model, 0, h0)
            via.append(circuits.top1_diagonal_fraction(
                _dense(circuits.k_composition_circuit(W_E, w1["W_Q"], w1["W_K"], w0["W_V"], w0["W_O"]))))
        assert via[3] == 1.0
        assert 0.45 <= via[2] <= 0.6
        assert max(via[0], via[1]) <= 0.12


def test_qk_by_source_claims(attn_model, tokens):
    """Prose (section 10): query=embed x key=0.3 carries 5.9-9.8 in every layer-1 head; next is
    embed x 0.2 (0.4-0.7); every other term is below 0.25 in size."""
    for h in range(4):
        g = circuits.qk_by_source(attn_model, tokens, SEQ, 1, h)
        assert g.shape == (6, 6)
        assert 5.5 < g[0, 5] < 10.3
        assert 0.35 < g[0, 4] < 0.8
        rest = g.clone()
        rest[0, 5] = rest[0, 4] = 0
        assert rest.abs().max() < 0.25


def test_logit_attribution_by_path_claims(attn_model, tokens):
    """Prose (section 11): each induction head adds 1.6-1.8 to the correct logit on the repeated half;
    the direct path and layer-0 heads add ~0 (|share| <= 0.01 -> 0.02 here); the paths plus the biases
    give back the logit."""
    dla = circuits.logit_attribution_by_path(attn_model, tokens)
    assert dla.shape == (10, 16, 2 * SEQ)
    second = dla[:, :, SEQ + 1:].mean((1, 2))
    first = dla[:, :, 1:SEQ].mean((1, 2))
    assert ((second[6:] > 1.5) & (second[6:] < 1.85)).all()
    assert second[:6].abs().max() < 0.02 and first.abs().max() < 0.03
    # exactness: add the constant terms back
    _, cache = attn_model.run_with_cache(tokens)
    bias = sum(attn_model.b_O[l].detach() for l in range(2))
    scale = cache["ln_final.hook_scale"]
    const = ((bias - bias.mean()) / scale * attn_model.ln_final.w.detach() + attn_model.ln_final.b.detach())
    W_U_next = attn_model.W_U.detach()[:, tokens[:, 1:]]
    const_logit = torch.einsum("bpd,dbp->bp", const[:, :-1], W_U_next) + attn_model.b_U.detach()[tokens[:, 1:]]
    logits = attn_model(tokens)
    correct = logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    assert torch.allclose(dla.sum(0) + const_logit, correct, atol=1e-3)


def test_new_circuit_functions_reject_bad_input(attn_model):
    with pytest.raises(InputError, match="square"):
        circuits.top1_diagonal_fraction(torch.zeros(3, 4))
    with pytest.raises(InputError, match="W_O_prev"):
        circuits.k_composition_circuit(torch.zeros(5, 4), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3, 4))
    with pytest.raises(InputError, match="does not exist"):
        circuits.qk_by_source(attn_model, repeated_random_tokens(1, 4, 128, seed=0), 4, 2, 0)
    with pytest.raises(InputError, match="repeated tokens"):
        circuits.qk_by_source(attn_model, torch.zeros(1, 7, dtype=torch.long), 4, 1, 0)


def test_first_copy_bet_on_seen_tokens(attn_model, tokens):
    """Prose (section 1): on the first copy the model puts ~16% of its probability on tokens already
    seen (uniform share ~9%), which is why the first half costs more than ln(127)."""
    probs = attn_model(tokens).softmax(-1)
    on_seen, share = [], []
    for b in range(tokens.shape[0]):
        for i in range(2, SEQ):
            seen = torch.unique(tokens[b, 1:i + 1])
            on_seen.append(probs[b, i, seen].sum().item())
            share.append(len(seen) / 127)
    on_seen, share = sum(on_seen) / len(on_seen), sum(share) / len(share)
    assert 0.14 < on_seen < 0.18 and 0.08 < share < 0.10
