"""The SAE toolkit: architectures, training on planted features and on streamed activations, metrics,
ground truth, baselines, transcoders, and the zoo's SAE loading."""

import itertools

import numpy as np
import pytest
import torch

from mi_course import zoo
from mi_course.data.planted_features import PlantedFeatures
from mi_course.errors import CheckpointError, InputError, UnknownModelError
from mi_course.methods import sae as S
from mi_course.methods import sae_metrics as M

TINY = dict(n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=16, d_vocab=50, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard")


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------- architectures
def test_architectures_shapes_and_sparsity():
    x = torch.randn(3, 5, 8)
    for arch in S.ARCHITECTURES:
        sae = S.SparseAutoencoder(8, 32, arch, k=4 if "topk" in arch else None)
        f = sae.encode(x)
        assert f.shape == (3, 5, 32) and (f >= 0).all()
        assert sae.decode(f).shape == x.shape and sae(x)[0].shape == x.shape
        assert torch.allclose(sae.decoder_directions.norm(dim=-1), torch.ones(32))
    topk = S.SparseAutoencoder(8, 32, "topk", k=4)
    assert ((topk.encode(x) > 0).sum(-1) <= 4).all()
    btk = S.SparseAutoencoder(8, 32, "batchtopk", k=4).train()
    btk.b_enc.data += 1.0  # all pre-activations positive: exactly k*B kept over the batch
    assert int((btk.encode(x.reshape(-1, 8)) > 0).sum()) == 4 * 15
    tc = S.Transcoder(8, 32, d_out=6)
    assert tc.kind == "transcoder" and tc.decode(tc.encode(x)).shape == (3, 5, 6)


def test_jumprelu_threshold_gets_gradient():
    sae = S.SparseAutoencoder(8, 16, "jumprelu", jumprelu_bandwidth=0.5, jumprelu_init_threshold=0.1)
    x = torch.randn(64, 8)
    loss, _ = S.sae_loss(sae, x, x, S.SAETrainConfig(l0_coeff=1.0))
    loss.backward()
    assert sae.log_threshold.grad is not None and sae.log_threshold.grad.abs().sum() > 0


def test_bad_input_is_clear():
    with pytest.raises(InputError, match="architecture"):
        S.SparseAutoencoder(8, 16, "gated")
    with pytest.raises(InputError, match="needs k"):
        S.SparseAutoencoder(8, 16, "topk")
    with pytest.raises(InputError, match="transcoder"):
        S.SparseAutoencoder(8, 16, "relu", d_out=4)
    sae = S.SparseAutoencoder(8, 16)
    with pytest.raises(InputError, match="last dimension"):
        sae.encode(torch.zeros(2, 7))
    with pytest.raises(InputError, match="unknown training option"):
        S.train_sae(sae, torch.randn(10, 8), steps=1, progress=False, l2_coeff=1)


# ------------------------------------------------------------------------------------- metrics
def test_reconstruction_metrics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100, 6, generator=g) + 3
    assert M.explained_variance(x, x) == pytest.approx(1.0)
    assert M.explained_variance(x, x.mean(0).expand_as(x)) == pytest.approx(0.0, abs=1e-6)
    assert M.shrinkage(x, 0.5 * x) == pytest.approx(0.5)
    assert M.mse(x, x + 1) == pytest.approx(6.0)
    lat = torch.tensor([[1.0, 0, 0], [2.0, 3.0, 0]])
    assert M.l0(lat) == 1.5
    assert M.dead_and_dense(lat, dense=0.6) == {"dead": 1, "dense": 1, "n_latents": 3}
    with pytest.raises(InputError, match="shape"):
        M.mse(x, x[:, :5])


def test_hungarian_matches_brute_force():
    rng = np.random.default_rng(0)
    for n, m in [(4, 4), (3, 6), (6, 3), (5, 5)]:
        cost = rng.normal(size=(n, m))
        r, c = M.linear_sum_assignment(cost)
        # brute force over injective maps from the smaller side
        if n <= m:
            brute = min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
        else:
            brute = min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))
        assert cost[r, c].sum() == pytest.approx(brute)
        assert len(set(r)) == len(r) == len(set(c)) == min(n, m)


def test_ground_truth_metrics():
    truth = torch.eye(4, 6)
    perm = truth[[2, 0, 3, 1]]
    assert M.mmcs(perm, truth) == pytest.approx(1.0)
    mcc, match = M.matched_cosine(perm, truth)
    assert mcc == pytest.approx(1.0) and match.tolist() == [1, 3, 0, 2]
    # one decoder direction shared by all features: MMCS stays 1, the one-to-one match does not
    dup = torch.stack([truth.sum(0)] * 4)
    assert M.mmcs(dup, truth) == pytest.approx(0.5) and M.matched_cosine(dup, truth)[0] == pytest.approx(0.5)
    assert M.mmcs(torch.cat([truth[:1]] * 4), truth) == pytest.approx(0.25)
    assert M.matched_cosine(torch.cat([truth[:1]] * 4), truth)[0] == pytest.approx(0.25)
    lat = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    coeffs = torch.tensor([[0.5, 0.0], [0.0, 1.0], [0.3, 0.0], [0.2, 0.0]])
    pr = M.latent_precision_recall(lat, coeffs, torch.tensor([0, 1]))
    assert pr["precision"].tolist() == pytest.approx([2 / 3, 1.0]) and pr["recall"].tolist() == pytest.approx([2 / 3, 1.0])
    r = M.random_directions(64, 16, seed=0)
    assert r.shape == (64, 16) and M.mmcs(r, M.random_directions(32, 16, seed=1)) < 0.8


def test_sae_recovers_planted_features_and_beats_the_random_decoder():
    pf = PlantedFeatures(d=16, n_features=32, expected_active=2, seed=0)
    xe, ce = pf.sample(2000, torch.Generator().manual_seed(5))
    sae = S.SparseAutoencoder(16, 64, "topk", k=3, seed=0)
    S.train_sae(sae, S.GeneratorSource(pf.sample, seed=1), steps=400, batch_size=256, lr=3e-3, progress=False)
    rep = M.ground_truth_report(sae, pf.directions, xe, ce)
    base = S.random_decoder_sae(sae, seed=3)
    S.train_sae(base, S.GeneratorSource(pf.sample, seed=1), steps=200, batch_size=256, lr=3e-3, progress=False,
                freeze_decoder=True)
    before = base.W_dec.clone()
    rb = M.ground_truth_report(base, pf.directions, xe, ce)
    assert torch.equal(before, base.W_dec)
    assert rep["mmcs"] > 0.9 and rep["matched_cosine"] > 0.85 and rb["mmcs"] < 0.7
    assert rep["explained_variance"] > rb["explained_variance"] + 0.2
    assert rep["l0"] == pytest.approx(3.0) and 0 < rep["recall"] <= 1


def test_relu_l1_training_is_sparse_and_resamples():
    pf = PlantedFeatures(d=16, n_features=32, expected_active=2, seed=0)
    sae = S.SparseAutoencoder(16, 64, "relu", seed=0)
    with torch.no_grad():
        sae.b_enc[:8] = -100.0  # eight latents that never fire
    hist = S.train_sae(sae, S.GeneratorSource(pf.sample, seed=1), steps=300, batch_size=256, lr=3e-3, l1_coeff=1.0,
                       resample_every=100, dead_after_tokens=256 * 50, progress=False, log_every=50)
    assert any(h.get("resampled", 0) >= 8 for h in hist)
    assert (sae.b_enc[:8] > -100).all()
    x, _ = pf.sample(1000, torch.Generator().manual_seed(2))
    m = M.reconstruction_metrics(sae, x)
    assert m["l0"] < 20 and m["explained_variance"] > 0.7 and m["shrinkage"] < 1.05


# ------------------------------------------------------------------------- streamed, spliced in
@pytest.fixture(scope="module")
def tiny_model():
    return zoo.build(TINY, seed=0).eval()


def test_buffer_training_and_spliced_losses(tiny_model):
    tokens = torch.randint(0, 50, (40, 16), generator=torch.Generator().manual_seed(0))
    buf = S.ActivationBuffer(tiny_model, "blocks.0.hook_resid_post", tokens, buffer_tokens=256, model_batch=4)
    x, y = buf.next_batch(64)
    assert x.shape == (64, 16) and y is x
    sae = S.SparseAutoencoder(16, 64, "topk", k=8)
    S.train_sae(sae, buf, steps=30, batch_size=64, progress=False)
    assert buf.tokens_seen >= 30 * 64
    out = M.spliced_losses(tiny_model, sae, tokens[:4], "blocks.0.hook_resid_post")
    assert out["clean"] <= out["zero_ablated"] or out["clean"] > 0
    assert set(out) >= {"clean", "spliced", "zero_ablated", "ce_loss_recovered", "kl_spliced", "kl_score"}
    # an exact autoencoder (d_sae = 2d: +x and -x halves) recovers everything
    exact = S.SparseAutoencoder(16, 32, "relu")
    with torch.no_grad():
        eye = torch.eye(16)
        exact.W_enc.copy_(torch.cat([eye, -eye], 1))
        exact.W_dec.copy_(torch.cat([eye, -eye], 0))
        exact.b_enc.zero_(), exact.b_dec.zero_()
    out = M.spliced_losses(tiny_model, exact, tokens[:4], "blocks.0.hook_resid_post")
    assert out["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-4) and out["kl_spliced"] == pytest.approx(0, abs=1e-5)
    with pytest.raises(InputError, match="no activation"):
        S.ActivationBuffer(tiny_model, "blocks.9.nope", tokens).next_batch(4)


def test_transcoder_on_the_mlp(tiny_model):
    tokens = torch.randint(0, 50, (40, 16), generator=torch.Generator().manual_seed(1))
    buf = S.ActivationBuffer(tiny_model, "blocks.0.mlp.hook_in", tokens, output_hook_name="blocks.0.hook_mlp_out",
                             buffer_tokens=256, model_batch=4)
    x, y = buf.next_batch(32)
    assert x.shape == y.shape == (32, 16) and not torch.equal(x, y)
    tc = S.Transcoder(16, 64, architecture="topk", k=8)
    hist = S.train_sae(tc, buf, steps=60, batch_size=64, lr=3e-3, progress=False, log_every=10)
    assert hist[-1]["mse"] < hist[0]["mse"]
    tc.output_hook_name = "blocks.0.hook_mlp_out"
    out = M.spliced_losses(tiny_model, tc, tokens[:4], "blocks.0.mlp.hook_in")
    assert np.isfinite(out["spliced"])
    with pytest.raises(InputError, match="output_hook_name"):
        M.spliced_losses(tiny_model, S.Transcoder(16, 8), tokens[:2], "blocks.0.mlp.hook_in")


def test_buffer_reuses_small_window_sets_and_stops_early_with_the_same_stream(tiny_model):
    """A window set of at most two buffers runs each window once; the stream (and the activations, computed
    only up to the layer they come from) is what running every window every time gives."""
    from mi_course.methods.block3_features.sae import _stop_after

    tokens = torch.randint(0, 50, (6, 16), generator=torch.Generator().manual_seed(2))
    names = ("blocks.0.mlp.hook_in", "blocks.0.hook_mlp_out")
    assert _stop_after(tiny_model, list(names)) == ({"stop_at_layer": 1} if tiny_model.cfg.n_layers > 1 else {})
    assert _stop_after(tiny_model, ["hook_embed"]) == {}
    calls = []
    real = tiny_model.run_with_cache

    def counting(*a, **k):
        calls.append(a[0].shape[0])
        return real(*a, **k)

    small = S.ActivationBuffer(tiny_model, names[0], tokens, output_hook_name=names[1], buffer_tokens=64, model_batch=4,
                               seed=3)
    small.model = type("M", (), {"run_with_cache": staticmethod(counting), "cfg": tiny_model.cfg})()
    got = [small.next_batch(16) for _ in range(20)]
    assert sum(calls) == tokens.shape[0]            # each of the 6 windows ran once
    with torch.no_grad():
        _, cache = real(tokens, names_filter=lambda n: n in names)
    ref_x = cache[names[0]][:, 1:].reshape(-1, 16)
    for x, y in got:                                 # every row is a real (input, output) pair of some token
        d = torch.cdist(x, ref_x, compute_mode="donot_use_mm_for_euclid_dist").min(-1)
        assert float(d.values.max()) < 1e-5
        assert torch.allclose(y, cache[names[1]][:, 1:].reshape(-1, 16)[d.indices], atol=1e-5)


# -------------------------------------------------------------------------------------- the zoo
def test_zoo_sae_roundtrip_and_checks(tmp_path, monkeypatch):
    from mi_course.zoo import saes

    monkeypatch.setattr(saes, "SAES_DIR", tmp_path)
    sae = S.SparseAutoencoder(16, 64, "batchtopk", k=4)
    sae.threshold.fill_(0.25)
    card = saes.SAECard(name="tiny-sae", summary="test", config={}, training={"command": "none"}, figures={},
                        model_name="tiny", hook_name="blocks.0.hook_resid_post")
    saes.save_sae(sae, card)
    assert saes.sae_names() == ["tiny-sae"]
    loaded = saes.load_sae("tiny-sae")
    assert (loaded.hook_name, loaded.model_name, loaded.kind, loaded.output_hook_name) == \
           ("blocks.0.hook_resid_post", "tiny", "sae", None)
    x = torch.randn(5, 16)
    assert torch.equal(loaded.encode(x), sae.eval().encode(x)) and float(loaded.threshold) == 0.25
    assert "reads blocks.0.hook_resid_post of tiny" in loaded.card.render()
    (tmp_path / "tiny-sae" / saes.SAE_FILE).write_bytes(b"changed")
    with pytest.raises(CheckpointError, match="sha256"):
        saes.load_sae("tiny-sae")
    with pytest.raises(UnknownModelError, match="Unknown zoo SAE"):
        saes.load_sae("nope")


def test_shipped_saes_load():
    for name in zoo.sae_names():
        sae = zoo.load_sae(name)
        assert sae.kind in ("sae", "transcoder") and sae.model_name and sae.hook_name
        assert sae.card.sha256 and sae.card.figures
