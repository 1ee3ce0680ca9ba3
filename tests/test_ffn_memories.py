"""Key-value memories: top activations, value projections, agreement and shallowness measures."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import ffn_memories as fm

TINY = dict(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, n_ctx=32, d_vocab=50,
            act_fn="gelu", normalization_type="LN", positional_embedding_type="standard")


@pytest.fixture(scope="module")
def tiny():
    return zoo.build(TINY, seed=1).eval()


@pytest.fixture(scope="module")
def toks():
    return torch.randint(0, 50, (6, 24), generator=torch.Generator().manual_seed(0))


def test_top_activations_are_the_largest(tiny, toks):
    top = fm.top_activations(tiny, toks, k=5)
    acts = fm.mlp_activations(tiny, toks)  # [L, b, p, d_mlp]
    assert top.values.shape == (2, 64, 5)
    for L, n in [(0, 3), (1, 17)]:
        a = acts[L, :, 1:, n].flatten()
        assert torch.allclose(top.values[L, n], a.topk(5).values)
        for b, p, v in fm.trigger_examples(top, L, n):
            assert p >= 1 and acts[L, b, p, n] == pytest.approx(v)


def test_value_projection_and_agreement(tiny, toks):
    v = fm.value_vocab(tiny, 1, 7)
    w_ln = tiny.state_dict()["ln_final.weight"]
    value = tiny.W_out[1, 7]
    # through the final LayerNorm: centred over d_model and scaled by its weight, then unembedded
    assert torch.allclose(v, ((value - value.mean()) * w_ln) @ tiny.W_U, atol=1e-5)
    assert torch.allclose(fm.value_logits(value[None], w_ln, tiny.W_U)[0], v, atol=1e-5)
    assert torch.allclose(fm.value_vocab_all(tiny, 1)[7], v)
    top = fm.top_activations(tiny, toks, k=4)
    nxt = fm.next_tokens(top)
    b, p = top.batch_idx[0, 0, 0], top.pos_idx[0, 0, 0]
    assert nxt[0, 0, 0] == (toks[b, p + 1] if p + 1 < toks.shape[1] else -1)
    agree = fm.agreement_by_layer(tiny, top)
    assert agree.shape == (2,) and ((agree >= 0) & (agree <= 1)).all()
    # a value whose top token is forced to be a trigger's next token agrees
    top1 = torch.tensor([[int(nxt[0, 0, 2])]])
    assert fm.value_key_agreement(top1[0], nxt[0, :1])[0]


def test_last_token_share():
    toks = torch.tensor([[0, 5, 5, 5, 6, 7]])
    top = fm.TopActivations(values=torch.zeros(1, 2, 3), batch_idx=torch.zeros(1, 2, 3, dtype=torch.long),
                            pos_idx=torch.tensor([[[1, 2, 3], [3, 4, 5]]]), tokens=toks)
    share = fm.last_token_share(top)
    assert share.tolist() == pytest.approx([(1.0 + 1 / 3) / 2])


def test_bad_inputs(tiny, toks, attn_model):
    with pytest.raises(InputError, match="layer"):
        fm.value_vocab(tiny, 5, 0)
    with pytest.raises(InputError, match="neuron"):
        fm.value_vocab(tiny, 0, 64)
    with pytest.raises(InputError, match="attention-only"):
        fm.value_vocab(attn_model, 0, 0)
    with pytest.raises(InputError, match="k must"):
        fm.top_activations(tiny, toks, k=0)


def test_chunked_search_equals_one_pass(tiny, toks):
    one = fm.top_activations(tiny, toks, k=5, chunk=100)
    for chunk in (1, 4):
        many = fm.top_activations(tiny, toks, k=5, chunk=chunk)
        assert torch.allclose(one.values, many.values)
        assert torch.equal(one.batch_idx, many.batch_idx) and torch.equal(one.pos_idx, many.pos_idx)
    v, b, p = fm.top_activations_layer(tiny, toks, 1, 5)
    assert torch.equal(b, one.batch_idx[1]) and torch.equal(p, one.pos_idx[1])


def test_mode_share():
    assert fm.mode_share(torch.tensor([[5, 5, 5, 2], [1, 2, 3, 3]])) == pytest.approx((0.75 + 0.5) / 2)


def test_neuron_interventions(tiny, toks):
    clean = tiny(toks)
    assert torch.allclose(fm.scale_neuron(tiny, toks, 1, 3, 1.0), clean, atol=1e-5)
    # with the final LayerNorm's scale frozen, ablating a last-layer neuron changes the logits by its direct effect
    _, cache = tiny.run_with_cache(toks, names_filter=lambda n: n == "ln_final.hook_scale")
    scale = cache["ln_final.hook_scale"]

    def ablate(post, hook):
        post = post.clone()
        post[..., 3] = 0.0
        return post

    with tiny.hooks(fwd_hooks=[("blocks.1.mlp.hook_post", ablate), ("ln_final.hook_scale", lambda s, hook: scale)]):
        frozen = tiny(toks)
    assert torch.allclose(clean - frozen, fm.neuron_direct_effect(tiny, toks, 1, 3), atol=1e-4)
