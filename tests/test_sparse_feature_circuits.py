"""Sparse feature circuits (Marks et al. 2024) on a tiny model with SAEs spliced in with error terms."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import sparse_feature_circuits as SFC
from mi_course.methods.sae import SparseAutoencoder

TINY = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=16, d_vocab=50, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard")
H0, H1 = "blocks.0.hook_resid_post", "blocks.1.hook_resid_mid"


@pytest.fixture(scope="module")
def setup():
    model = zoo.build(TINY, seed=0)
    model.eval()
    saes = {H0: SparseAutoencoder(16, 48, "relu", seed=1), H1: SparseAutoencoder(16, 48, "relu", seed=2)}
    for s in saes.values():  # a bias so that latents fire; the error term is large (untrained)
        s.b_enc.data.fill_(0.05)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 50, (6, 8), generator=g)
    patch = tokens.clone()
    patch[:, 2] = torch.randint(1, 50, (6,), generator=g)
    ref = torch.randint(1, 50, (12, 8), generator=g)

    def metric(logits):
        return logits[:, -1, 3].mean() - logits[:, -1, 4].mean()

    return model, saes, tokens, patch, ref, metric


def test_splicing_with_the_error_term_leaves_the_logits_unchanged(setup):
    model, saes, tokens, *_ = setup
    clean = model(tokens)
    for leaves in (False, True):
        spliced = model.run_with_hooks(tokens, fwd_hooks=SFC.splice_hooks(saes, {}, leaves=leaves))
        assert torch.allclose(spliced, clean, atol=1e-5)


def test_integrated_gradients_add_up_to_the_patching_effect(setup):
    """IG's completeness: the node effects at one hook point sum to patching that whole hook point."""
    model, saes, tokens, patch, _, metric = setup
    eff = SFC.node_effects(model, saes, tokens, metric, patch, method="ig", steps=24)
    store = {}
    with torch.no_grad():
        model.run_with_hooks(patch, fwd_hooks=SFC.splice_hooks(saes, store))
        patched_h1 = model.run_with_hooks(tokens, fwd_hooks=[(H1, lambda a, hook=None: store[H1]["f"] @ saes[H1].W_dec
                                                                / saes[H1].output_scale + saes[H1].b_dec + store[H1]["err"])])
        actual = float(metric(patched_h1) - metric(model(tokens)))
    total = float(eff[H1]["latents"].sum() + eff[H1]["error"].sum())  # the metric is a batch mean
    assert abs(actual) > 0.01 and total == pytest.approx(actual, rel=0.02)
    atp = SFC.node_effects(model, saes, tokens, metric, patch)
    assert atp[H0]["latents"].shape == (8, 48) and atp[H0]["error"].shape == (8,)
    # nothing before the changed position can matter
    assert atp[H0]["latents"][:2].abs().max() < 1e-6 and eff[H1]["error"][:2].abs().max() < 1e-6


def test_edges_prune_faithfulness_completeness(setup):
    model, saes, tokens, patch, ref, metric = setup
    atp = SFC.node_effects(model, saes, tokens, metric, patch)
    j = int(atp[H1]["latents"][-1].abs().argmax())
    edges = SFC.edge_effects(model, saes, tokens, metric, H0, H1, [(-1, j)], patch)
    assert edges["latents"].shape == (1, 8, 48) and edges["error"].shape == (1, 8)
    assert edges["latents"].abs().sum() > 0
    same = SFC.edge_effects(model, saes, tokens, metric, H0, H1, [(-1, j)], tokens)  # no change, no effect
    assert same["latents"].abs().max() < 1e-6
    full = SFC.prune(atp, 0.0)
    everything = {n: {"latents": torch.ones_like(m["latents"]), "error": torch.ones_like(m["error"])} for n, m in full.items()}
    fa = SFC.faithfulness(model, saes, tokens, metric, everything, ref)
    with torch.no_grad():
        assert fa["F(M)"] == pytest.approx(float(metric(model(tokens))), abs=1e-4)
    assert fa["normalised"] == pytest.approx(1.0, abs=1e-5)
    assert SFC.completeness(model, saes, tokens, metric, everything, ref)["normalised"] == pytest.approx(0.0, abs=1e-5)
    top = SFC.prune(atp, float(torch.cat([e["latents"].flatten() for e in atp.values()]).abs().quantile(0.99)))
    size = SFC.circuit_size(top)
    assert 0 < size["latents"] < 2 * 8 * 48
    assert set(SFC.faithfulness(model, saes, tokens, metric, top, ref)) >= {"F(C)", "normalised", "ratio"}


def test_bad_input(setup):
    model, saes, tokens, patch, ref, metric = setup
    with pytest.raises(InputError, match="method"):
        SFC.node_effects(model, saes, tokens, metric, method="exact")
    with pytest.raises(InputError, match="shape of tokens"):
        SFC.node_effects(model, saes, tokens, metric, patch[:2])
    with pytest.raises(InputError, match="upstream first"):
        SFC.edge_effects(model, saes, tokens, metric, H1, H0, [(0, 0)])
    with pytest.raises(InputError, match="non-empty dict"):
        SFC.node_effects(model, {}, tokens, metric)
    with pytest.raises(InputError, match="threshold"):
        SFC.prune({}, -1.0)
