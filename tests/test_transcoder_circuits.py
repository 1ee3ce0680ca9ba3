"""Transcoder circuits on a model's own run: direct attributions against the ablation they predict."""

import copy

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import sae as S
from mi_course.methods import transcoders as T

TINY = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=16, d_vocab=50, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup():
    model = zoo.build(TINY, seed=0)
    model.eval()
    g = torch.Generator().manual_seed(3)
    early = T.make_transcoder(model, 0, 24, "relu", k=None, seed=1)
    late = T.make_transcoder(model, 1, 20, "relu", k=None, seed=2)
    with torch.no_grad():
        early.W_enc.copy_(torch.randn(16, 24, generator=g))
        early.b_enc.fill_(-0.5)
        late.W_enc.copy_(torch.randn(16, 20, generator=g))
        early.output_scale.fill_(2.0)
        late.input_scale.fill_(1.5)
    tokens = torch.randint(0, 50, (3, 16), generator=g)
    return model, early, late, tokens


def _no_late_attention(model):
    """A copy of ``model`` whose layer-1 attention writes nothing (only the direct path is left)."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "layers.1." in name and ".attn." in name and ".o." in name:
                p.zero_()
    return m


def test_attribution_is_the_frozen_scale_part_and_ablation_the_whole_change_when_attention_is_off(setup):
    """Without later attention, ablating latent i at position p changes the later MLP's input only
    through ln2(r) -> ln2(r - write): ablation is that exact change, attribution the same change with
    ln2's scale frozen at its clean value."""
    model, early, late, tokens = setup
    m = _no_late_attention(model)
    att = T.direct_attributions(m, early, late, tokens, 4)                   # [b, p, d_e]
    assert att.shape == (3, 16, 24) and (att[:, 0] == 0).all()
    b, p = 1, 7
    i = int(att[b, p].abs().argmax())
    assert att[b, p, i].abs() > 0
    eff = T.ablation_effect(m, early, late, tokens, i, 4, positions=[p])
    # by hand
    _, cache = m.run_with_cache(tokens, names_filter=lambda n: n in (early.hook_name, "blocks.1.hook_resid_mid"))
    r = cache["blocks.1.hook_resid_mid"][b, p]
    write = early.encode(cache[early.hook_name][b, p])[i] * early.W_dec[i] / early.output_scale
    w, bias = m.blocks[1].ln2.weight, m.blocks[1].ln2.bias

    def ln(v):
        c = v - v.mean()
        return c / (c.pow(2).mean() + m.cfg.eps).sqrt() * w + bias

    def pre(v):
        return float(late.pre_activations(ln(v) * late.input_scale)[4].detach())

    assert float(eff[b, p]) == pytest.approx(pre(r) - pre(r - write), rel=1e-3, abs=1e-6)
    frozen = ((write - write.mean()) / (r - r.mean()).pow(2).mean().add(m.cfg.eps).sqrt() * w) @ late.W_enc[:, 4]
    assert float(att[b, p, i]) == pytest.approx(float(frozen * late.input_scale), rel=1e-3, abs=1e-6)
    # causal: positions before the ablated one do not change; without attention, later ones neither
    assert eff[:, :p].abs().max() < 1e-9 and eff[:, p + 1:].abs().max() < 1e-9


def test_ablation_reaches_later_positions_through_attention(setup):
    model, early, late, tokens = setup
    f = early.encode(model.run_with_cache(tokens, names_filter=lambda n: n == early.hook_name)[1][early.hook_name])
    i = int((f[:, 1:] > 0).float().sum((0, 1)).argmax())
    eff = T.ablation_effect(model, early, late, tokens, i, 0, positions=[5])
    assert eff[:, :5].abs().max() < 1e-6 and eff[:, 6:].abs().max() > 0


def test_a_latent_that_never_fires_has_no_effect(setup):
    model, early, late, tokens = setup
    dead = copy.deepcopy(early)
    with torch.no_grad():
        dead.b_enc[3] = -1e4
    assert T.ablation_effect(model, dead, late, tokens, 3, 2).abs().max() == 0
    assert T.direct_attributions(model, dead, late, tokens, 2)[..., 3].abs().max() == 0


def test_bad_input(setup):
    model, early, late, tokens = setup
    with pytest.raises(InputError, match="must come after"):
        T.ablation_effect(model, late, early, tokens, 0, 0)
    with pytest.raises(InputError, match="early_latent"):
        T.ablation_effect(model, early, late, tokens, 24, 0)
    with pytest.raises(InputError, match="late_latent"):
        T.direct_attributions(model, early, late, tokens, -1)
    with pytest.raises(InputError, match="positions"):
        T.ablation_effect(model, early, late, tokens, 0, 0, positions=[16])
    with pytest.raises(InputError, match="tokens"):
        T.direct_attributions(model, early, late, tokens.float(), 0)
    with pytest.raises(InputError, match="MLP input"):
        sae = S.Transcoder(16, 8)
        sae.hook_name, sae.output_hook_name = "blocks.0.hook_resid_pre", "blocks.0.hook_mlp_out"
        T.ablation_effect(model, sae, late, tokens, 0, 0)
