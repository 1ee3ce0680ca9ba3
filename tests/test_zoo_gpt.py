"""zoo.gpt.GPT: the plain-torch trainer computes exactly what the bridge computes, with the same weights."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.zoo.gpt import GPT

CFG = dict(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, n_ctx=24, d_vocab=50,
           act_fn="gelu", normalization_type="LN", positional_embedding_type="standard")


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
def test_gpt_matches_the_bridge(act):
    cfg = dict(CFG, act_fn=act)
    bridge = zoo.build(cfg, seed=3)
    gpt = GPT.from_bridge(bridge, cfg)
    x = torch.randint(0, 50, (3, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gpt(x), bridge(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(gpt.loss(x), bridge(x, return_type="loss"), atol=1e-5, rtol=1e-5)
    # trained weights go back into a bridge unchanged (the recipe ships the bridge)
    with torch.no_grad():
        for p in gpt.parameters():
            p.add_(0.01 * torch.randn_like(p))
    fresh = zoo.build(cfg)
    fresh.load_state_dict(gpt.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), gpt(x), atol=1e-5, rtol=1e-5)


def test_gpt_refuses_what_it_cannot_reproduce():
    with pytest.raises(InputError, match="normalization_type"):
        GPT(dict(CFG, normalization_type="RMS"))
    with pytest.raises(InputError, match="act_fn"):
        GPT(dict(CFG, act_fn="silu"))
    with pytest.raises(InputError, match="longer than the context"):
        GPT(CFG)(torch.zeros(1, 25, dtype=torch.long))


def test_gpt_attention_patterns_are_the_bridges():
    """The fused attention never forms the pattern; ``attention_patterns`` recomputes it, equal to ``hook_pattern``."""
    from mi_course.zoo import hooks as hk

    bridge = zoo.build(CFG, seed=1)
    gpt = GPT.from_bridge(bridge, CFG)
    x = torch.randint(0, 50, (2, 24), generator=torch.Generator().manual_seed(1))
    _, cache = bridge.run_with_cache(x, names_filter=hk.only("pattern"))
    got = gpt.attention_patterns(x)
    assert len(got) == CFG["n_layers"]
    for layer, p in enumerate(got):
        torch.testing.assert_close(p, cache["pattern", layer], atol=1e-5, rtol=1e-5)
