"""Exact properties of the week-05 methods, on a small randomly initialised model with MLPs."""

import pytest
import torch

from mi_course import zoo
from mi_course.data import ioi
from mi_course.errors import InputError
from mi_course.methods import ablation, attribution_patching as atp, circuit_discovery as cd
from mi_course.methods import activation_patching as ap, metrics, path_patching as pp
from mi_course.methods.circuit_evaluation import CircuitEvaluator
from mi_course.methods.components import attn, head, mlp, neuron, resid
from mi_course.training.ioi_recipe import CONFIG


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = dict(CONFIG, n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64)
    m = zoo.build(cfg, seed=1)
    m.eval()
    return m


@pytest.fixture(scope="module")
def data():
    ds = ioi.make_ioi(12, seed=0, templates=0)
    return ds, ds.abc(seed=1)


@pytest.fixture(scope="module")
def metric(data):
    return metrics.ioi_metric(data[0])


# -- metrics -----------------------------------------------------------------------------------
def test_logit_diff_by_hand():
    logits = torch.zeros(2, 3, 5)
    logits[0, -1, 1], logits[0, -1, 2] = 3.0, 1.0
    logits[1, 1, 4], logits[1, 1, 0] = 2.0, -2.0
    ld = metrics.logit_diff(logits, torch.tensor([1, 4]), torch.tensor([2, 0]), torch.tensor([2, 1]), per_prompt=True)
    assert ld.tolist() == [2.0, 4.0]
    assert float(metrics.logit_diff(logits, torch.tensor([1, 4]), torch.tensor([2, 0]), torch.tensor([2, 1]))) == 3.0
    p = metrics.answer_probability(torch.zeros(1, 2, 4), torch.tensor([0]))
    assert float(p) == pytest.approx(0.25)
    assert float(metrics.answer_loss(torch.zeros(1, 2, 4), torch.tensor([0]))) == pytest.approx(torch.log(torch.tensor(4.0)).item())


def test_metric_must_be_scalar(model, data):
    ds, abc = data
    per_prompt = lambda logits: metrics.logit_diff(logits, ds.io, ds.s, ds.end, per_prompt=True)  # noqa: E731
    with pytest.raises(InputError, match="scalar"):
        ap.activation_patching(model, ds.tokens, abc.tokens, per_prompt, "attn_out", progress=False)
    with pytest.raises(InputError, match="Python number"):
        atp.attribution_patching(model, ds.tokens, abc.tokens, lambda lg: float(lg.mean()), "z")
    with pytest.raises(InputError, match="nothing to restore"):
        metrics.normalized(lambda lg: lg.mean(), 1.0, 1.0)


# -- ablation ------------------------------------------------------------------------------------
def test_zero_ablation_of_a_head_matches_a_hand_hook(model, data):
    ds, _ = data

    def hook(z, hook):
        z = z.clone()
        z[:, :, 1] = 0
        return z

    want = model.run_with_hooks(ds.tokens, fwd_hooks=[("blocks.1.attn.hook_z", hook)])
    assert torch.allclose(ablation.ablate(model, ds.tokens, [head(1, 1)]), want, atol=1e-5)
    assert torch.allclose(ablation.ablate_heads(model, ds.tokens, [(1, 1)]), want, atol=1e-5)


def test_mean_and_resample_ablation_with_the_same_prompt_change_nothing(model, data):
    ds, _ = data
    one = ds.tokens[:1].repeat(4, 1)
    base = model(one)
    comps = [head(0, 0), mlp(1), neuron(0, 3), resid(1, 4), attn(0)]
    for mode in ("mean", "resample"):
        out = ablation.ablate(model, one, comps, mode=mode, reference_tokens=one)
        assert torch.allclose(out, base, atol=1e-5), mode


def test_every_kind_of_ablation_changes_the_output(model, data):
    ds, abc = data
    base = model(ds.tokens)
    for comp in [head(0, 1), mlp(0), neuron(1, 7), resid(1, 10), attn(1, 14)]:
        for mode in ("zero", "mean", "resample"):
            out = ablation.ablate(model, ds.tokens, [comp], mode=mode, reference_tokens=abc.tokens)
            assert not torch.allclose(out, base, atol=1e-4), (comp, mode)


def test_position_restricted_ablation_leaves_earlier_positions(model, data):
    ds, _ = data
    out = ablation.ablate(model, ds.tokens, [mlp(0, pos=10)])
    base = model(ds.tokens)
    assert torch.allclose(out[:, :10], base[:, :10], atol=1e-5)
    assert not torch.allclose(out[:, 10:], base[:, 10:], atol=1e-4)


def test_ablation_errors(model, data):
    ds, abc = data
    with pytest.raises(InputError, match="does not exist"):
        ablation.ablate(model, ds.tokens, [head(5, 0)])
    with pytest.raises(InputError, match="needs a position"):
        ablation.ablate(model, ds.tokens, [resid(0)])
    with pytest.raises(InputError, match="needs reference_tokens"):
        ablation.ablate(model, ds.tokens, [head(0, 0)], mode="mean")
    with pytest.raises(InputError, match="same template/length"):
        ablation.ablate(model, ds.tokens, [head(0, 0)], mode="mean", reference_tokens=abc.tokens[:, :-1])
    with pytest.raises(InputError, match="mode"):
        ablation.ablate(model, ds.tokens, [head(0, 0)], mode="half")
    with pytest.raises(InputError, match="Component"):
        ablation.ablate(model, ds.tokens, ["0.1"])


# -- activation patching -----------------------------------------------------------------------
def test_patching_the_whole_first_residual_restores_the_clean_run(model, data, metric):
    ds, abc = data
    with torch.no_grad():
        clean, corrupted = float(metric(model(ds.tokens))), float(metric(model(abc.tokens)))
    res = ap.activation_patching(model, ds.tokens, abc.tokens, metric, "resid_pre", by_pos=False, progress=False)
    assert res.shape == (2,)
    assert float(res[0]) == pytest.approx(clean, abs=1e-4)
    by_pos = ap.patch_resid_by_pos(model, ds.tokens, abc.tokens, metric, progress=False)
    assert by_pos.shape == (2, ds.tokens.shape[1])
    # positions where clean and corrupted tokens agree (and that nothing before differs) change nothing
    assert float(by_pos[0, 0]) == pytest.approx(corrupted, abs=1e-4)
    noise = ap.activation_patching(model, ds.tokens, abc.tokens, metric, "resid_pre", direction="noise", progress=False)
    assert float(noise[0]) == pytest.approx(corrupted, abs=1e-4)


@pytest.mark.parametrize("activation,by_pos,shape", [
    ("attn_out", False, (2,)), ("mlp_out", True, (2, 15)), ("z", False, (2, 2)), ("q", True, (2, 15, 2)),
    ("k", False, (2, 2)), ("v", False, (2, 2)), ("pattern", True, (2, 15, 2)),
])
def test_shapes_and_attribution_agrees(model, data, metric, activation, by_pos, shape):
    ds, abc = data
    act = ap.activation_patching(model, ds.tokens, abc.tokens, metric, activation, by_pos, progress=False)
    att = atp.attribution_patching(model, ds.tokens, abc.tokens, metric, activation, by_pos)
    assert act.shape == att.shape == shape
    assert torch.isfinite(att).all()
    if activation in ("z", "v", "attn_out"):  # small, nearly linear activations: AtP is close
        assert torch.allclose(act, att, atol=0.05 + 0.2 * float((act - act.mean()).abs().max()))


def test_patching_errors(model, data, metric):
    ds, abc = data
    with pytest.raises(InputError, match="same shape"):
        ap.activation_patching(model, ds.tokens, abc.tokens[:, :-1], metric, "z", progress=False)
    with pytest.raises(InputError, match="unknown activation"):
        ap.activation_patching(model, ds.tokens, abc.tokens, metric, "result", progress=False)
    with pytest.raises(InputError, match="unknown activation"):
        atp.attribution_patching(model, ds.tokens, abc.tokens, metric, "attn_scores")
    with pytest.raises(InputError, match="unknown hook"):
        ap.check_hook_names(model, ["blocks.0.attn.hook_nope"])
    with pytest.raises(InputError, match="no per-head hook_result"):
        ap.check_hook_names(model, ["blocks.0.attn.hook_result"])
    with pytest.raises(InputError, match="direction"):
        ap.activation_patching(model, ds.tokens, abc.tokens, metric, "z", direction="up", progress=False)


# -- path patching -------------------------------------------------------------------------------
def test_path_from_a_last_layer_head_to_logits_is_its_activation_patch(model, data, metric):
    ds, abc = data
    direct = pp.path_patching(model, ds.tokens, abc.tokens, metric, [head(1, 0)], "logits")
    act = ap.activation_patching(model, ds.tokens, abc.tokens, metric, "z", direction="noise", progress=False)
    assert float(direct) == pytest.approx(float(act[1, 0]), abs=1e-4)
    sweep = pp.path_patching_sweep(model, ds.tokens, abc.tokens, metric, progress=False)
    assert sweep.shape == (2, 2) and float(sweep[1, 0]) == pytest.approx(float(direct), abs=1e-4)


def test_path_patching_to_receivers(model, data, metric):
    ds, abc = data
    with torch.no_grad():
        clean = float(metric(model(ds.tokens)))
    # a sender's path into a receiver's queries differs from the clean run, and only that path is changed
    via_q = pp.path_patching(model, ds.tokens, abc.tokens, metric, [head(0, 0)], [head(1, 1)], "q")
    via_all = pp.path_patching(model, ds.tokens, abc.tokens, metric, [head(0, 0)], [head(1, 0), head(1, 1)], "qkv")
    assert float(via_q) != pytest.approx(clean, abs=1e-6) and float(via_all) != pytest.approx(float(via_q), abs=1e-6)
    sweep = pp.path_patching_sweep(model, ds.tokens, abc.tokens, metric, [head(1, 1)], "v", receiver_pos=14,
                                   progress=False)
    assert torch.isnan(sweep[1]).all() and torch.isfinite(sweep[0]).all()
    with pytest.raises(InputError, match="later layer"):
        pp.path_patching(model, ds.tokens, abc.tokens, metric, [head(1, 0)], [head(1, 1)], "q")
    with pytest.raises(InputError, match="receiver_input"):
        pp.path_patching(model, ds.tokens, abc.tokens, metric, [head(0, 0)], [head(1, 1)], "o")


# -- circuit discovery and evaluation ----------------------------------------------------------
def test_edges_into_the_logits_add_up_to_the_final_residual_attribution(model, data, metric):
    ds, abc = data
    es = cd.edge_attribution_patching(model, ds.tokens, abc.tokens, metric)
    assert es.scores.shape == (1 + 2 * 3, 2 * 7 + 1)
    j = es.downstream.index("logits")
    total = float(es.scores[:, j].nansum())
    with torch.no_grad():
        _, cache = model.run_with_cache(ds.tokens, names_filter=lambda n: n == "ln_final.hook_in")
    _, acts, grads = atp.gradients(model, abc.tokens, metric, ["ln_final.hook_in"])
    want = float(((cache["ln_final.hook_in"] - acts["ln_final.hook_in"]) * grads["ln_final.hook_in"]).sum())
    assert total == pytest.approx(want, rel=1e-3, abs=1e-5)
    # no edge goes backwards
    assert torch.isnan(es.scores[es.upstream.index("MLP1"), es.downstream.index("1.0.q")])
    assert torch.isfinite(es.scores[es.upstream.index("MLP0"), es.downstream.index("1.0.q")])
    circuit = cd.prune(es, top_k=40)
    assert 0 < len(circuit.edges) <= 40
    assert "logits" in {e[1] for e in circuit.edges} and "embed" in {e[0] for e in circuit.edges}
    everything = cd.prune(es, threshold=0.0)
    assert len(everything.edges) == int(torch.isfinite(es.scores).sum())
    assert len(everything.heads) == 4 and len(everything.mlps) == 2
    with pytest.raises(InputError, match="exactly one"):
        cd.prune(es)


def test_circuit_evaluation(model, data, metric):
    ds, abc = data
    ev = CircuitEvaluator(model, ds.tokens, abc.tokens, metric)
    everything = [head(L, H) for L in range(2) for H in range(2)]
    f = ev.faithfulness(everything)
    with torch.no_grad():
        full = float(metric(model(ds.tokens)))
    assert f["F(C)"] == f["F(M)"] == pytest.approx(full)
    assert f["ratio"] == pytest.approx(1.0)
    # F(empty) = every head mean-ablated, by hand
    by_hand = metric(ablation.ablate(model, ds.tokens, everything, "mean", abc.tokens))
    assert f["F(empty)"] == pytest.approx(float(by_hand), abs=1e-5)
    rows = ev.completeness([head(1, 0), head(0, 1)], subsets=[[], [head(1, 0)]])
    assert rows[0]["gap"] == pytest.approx(abs(ev.F([head(1, 0), head(0, 1)]) - f["F(M)"]))
    mini = ev.minimality([head(1, 0), head(0, 1)])
    assert set(mini) == {head(1, 0), head(0, 1)} and all(v >= 0 for v in mini.values())
    with pytest.raises(InputError, match="same length"):
        CircuitEvaluator(model, ds.tokens, abc.tokens[:, :-2], metric)
    with pytest.raises(InputError, match="subset of the circuit"):
        ev.completeness([head(1, 0)], subsets=[[head(0, 0)]])


def test_attribution_of_many_activations_in_one_pass(model, data, metric):
    ds, abc = data
    many = atp.attribution_patching_many(model, ds.tokens, abc.tokens, metric, [("z", True), ("resid_pre", True), ("pattern", False)])
    for name, by_pos in [("z", True), ("resid_pre", True), ("pattern", False)]:
        one = atp.attribution_patching(model, ds.tokens, abc.tokens, metric, name, by_pos)
        assert torch.allclose(many[name], one, atol=1e-5), name


def test_the_gpt2_cells_run_on_a_tiny_hugging_face_gpt2(tmp_path):
    """The notebook's gpt2-small section, offline: a randomly initialised 2-layer GPT2LMHeadModel with
    the real GPT-2 tokenizer, loaded through boot_transformers like the hub model."""
    import shutil

    from conftest import SHARED

    tok_dir = SHARED / "data" / "gpt2-tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        pytest.skip("GPT-2 tokenizer files not found in ../shared/data/gpt2-tokenizer")
    from transformer_lens import TransformerBridge
    from transformers import GPT2Config, GPT2LMHeadModel

    from mi_course.methods import ioi_circuit, logit_attribution as la

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=64)).save_pretrained(tmp_path)
    for f in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(tok_dir / f, tmp_path)
    gpt2 = TransformerBridge.boot_transformers(str(tmp_path), device="cpu")
    gpt2.eval()
    clean = ioi.make_ioi(6, seed=0, templates=0)
    g, g_abc = ioi.encode_gpt2(clean, gpt2), ioi.encode_gpt2(clean.abc(seed=1), gpt2)
    metric = metrics.ioi_metric(g)
    with torch.no_grad():
        ld = float(metric(gpt2(g.tokens)))
    shares, _ = la.dla_by_component(gpt2, g.tokens, g.io, g.s, g.end)
    assert float(shares.sum()) == pytest.approx(ld, abs=1e-4)
    classes = ioi_circuit.classify_heads(ioi_circuit.attention_signatures(gpt2, g), la.dla_by_head(gpt2, g.tokens, g.io, g.s, g.end))
    assert set(classes) >= {"name mover", "S-inhibition", "induction", "duplicate token", "previous token"}
    act = ap.activation_patching(gpt2, g.tokens, g_abc.tokens, metric, "z", progress=False)
    att = atp.attribution_patching(gpt2, g.tokens, g_abc.tokens, metric, "z")
    assert act.shape == att.shape == (2, 4)
    assert cd.edge_attribution_patching(gpt2, g.tokens, g_abc.tokens, metric).scores.shape == (1 + 2 * 5, 2 * 13 + 1)
