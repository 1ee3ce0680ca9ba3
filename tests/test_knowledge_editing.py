"""Causal tracing, ROME and edit evaluation: mechanics on a tiny random model with the KB's tokenizer
(fast), and the errors promised for bad input. The figures measured on ``kb-lm`` are held by
``tests/test_kb_editing_figures.py``."""

import pytest
import torch

from mi_course.errors import InputError
from mi_course.methods import causal_tracing as ct
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import rome


@pytest.fixture(scope="module")
def kb():
    from mi_course.data.knowledge_base import load_kb

    return load_kb()


@pytest.fixture(scope="module")
def tiny(kb_tiny_model):
    return kb_tiny_model


@pytest.fixture(scope="module")
def fact(kb):
    f = kb.facts_of("birth_city")[0]
    tpl = kb.split_templates(f.subject, "birth_city", "train")[0]
    new = next(o for o in kb.objects("birth_city") if o != f.object)
    return {"prompt": tpl, "subject": f.subject, "target_new": new, "target_true": f.object}


# a random model needs a free hand (no weight decay, no clamp) to move its output at all
HP = rome.RomeHparams(context_lengths=((3, 2),), mom2_n_texts=64, v_weight_decay=0.0, clamp_norm_factor=100.0)


# -- causal tracing -----------------------------------------------------------------------------
def test_subject_range_and_named_positions(tiny, kb, fact):
    prompt = fact["prompt"].format(fact["subject"])
    start, end = ct.subject_range(tiny, prompt, fact["subject"])
    assert (start, end) == kb.subject_token_span(prompt, fact["subject"])
    n = len(tiny.to_tokens(prompt)[0])
    groups = ct.named_positions(start, end, n)
    assert groups["first subject token"] == [start] and groups["last subject token"] == [end - 1]
    assert groups["last token"] == [n - 1]
    flat = sorted(p for ps in groups.values() for p in ps)
    assert flat == sorted(set(flat))  # no position in two groups


@pytest.mark.parametrize("kind", ct.KINDS)
def test_trace_shapes_and_endpoints(tiny, fact, kind):
    prompt = fact["prompt"].format(fact["subject"])
    r = ct.trace(tiny, prompt, fact["subject"], fact["target_true"], kind=kind, n_samples=3)
    n = len(tiny.to_tokens(prompt)[0])
    assert r.scores.shape == (3, n) and r.by_name().shape == (3, 6)
    s, e = r.subject
    # positions before the subject are not corrupted: restoring them changes nothing
    assert torch.allclose(r.scores[:, :s], torch.full_like(r.scores[:, :s], r.low), atol=1e-6)
    if kind == "hidden":  # the last layer's state at the last token is the whole clean output
        assert r.scores[-1, -1].item() == pytest.approx(r.high, abs=1e-5)


def test_trace_batching_matches_one_by_one(tiny, fact):
    """The batched trace equals restoring each (layer, pos) in its own run."""
    prompt = fact["prompt"].format(fact["subject"])
    r = ct.trace(tiny, prompt, fact["subject"], fact["target_true"], kind="mlp", n_samples=2, seed=3)
    toks = tiny.to_tokens(prompt)
    s, e = r.subject
    eps = ct.make_noise(2, e - s, tiny.cfg.d_model, 3 * ct.embedding_std(tiny), seed=3)
    _, cache = tiny.run_with_cache(toks)
    L, p = 1, e - 1

    def noise(a, hook):
        a = a.clone(); a[:, s:e] += eps; return a

    def put(a, hook):
        a = a.clone(); a[:, p] = cache["blocks.1.hook_mlp_out"][0, p]; return a
    with torch.no_grad():
        logits = tiny.run_with_hooks(toks.expand(2, -1), fwd_hooks=[("hook_embed", noise), ("blocks.1.hook_mlp_out", put)])
    want = logits[:, -1].softmax(-1)[:, r.target].mean().item()
    assert r.scores[L, p].item() == pytest.approx(want, abs=1e-5)


def test_severed_trace_runs_and_differs(tiny, fact):
    prompt = fact["prompt"].format(fact["subject"])
    plain = ct.trace(tiny, prompt, fact["subject"], fact["target_true"], n_samples=3)
    sev = ct.trace(tiny, prompt, fact["subject"], fact["target_true"], n_samples=3, sever="mlp")
    assert sev.scores.shape == plain.scores.shape
    # severing the MLPs cannot matter when the last layer's output itself is restored
    assert sev.scores[-1, -1].item() == pytest.approx(plain.scores[-1, -1].item(), abs=1e-5)


def test_trace_facts_and_peak(tiny, fact):
    aie, results = ct.trace_facts(tiny, [fact, fact], n_samples=2, progress=False)
    assert aie.shape == (3, 6) and len(results) == 2
    L, name, eff = ct.peak(aie)
    assert 0 <= L < 3 and name in ct.POSITION_NAMES


def test_tracing_errors(tiny, attn_model, fact):
    prompt = fact["prompt"].format(fact["subject"])
    with pytest.raises(InputError, match="does not occur"):
        ct.trace(tiny, prompt, "Nobody Here", fact["target_true"])
    with pytest.raises(InputError, match="tokens"):
        ct.trace(tiny, prompt, fact["subject"], "Lima Lima")
    with pytest.raises(InputError, match="kind"):
        ct.trace(tiny, prompt, fact["subject"], fact["target_true"], kind="resid")
    with pytest.raises(InputError, match="out of range"):
        ct.trace(tiny, prompt, fact["subject"], fact["target_true"], layers=[7])
    with pytest.raises(InputError, match="no MLPs"):
        ct.trace(attn_model, prompt, fact["subject"], fact["target_true"])


# -- ROME -----------------------------------------------------------------------------------------
def test_rank_one_update_inserts_the_value():
    g = torch.Generator().manual_seed(0)
    W, b = torch.randn(16, 8, generator=g), torch.randn(8, generator=g)
    A = torch.randn(16, 16, generator=g)
    C = A @ A.T / 16 + torch.eye(16)
    k, v = torch.randn(16, generator=g), torch.randn(8, generator=g)
    dW = rome.rank_one_update(W, b, C, k, v)
    assert torch.allclose(k @ (W + dW) + b, v, atol=1e-4)
    assert torch.linalg.matrix_rank(dW) == 1
    # keys C-orthogonal to k* (x with xᵀ C⁻¹ k* = 0) are not moved
    u = torch.linalg.solve(C, k)
    x = torch.randn(16, generator=g)
    x = x - (x @ u) / (u @ u) * u
    assert torch.allclose(x @ dW, torch.zeros(8), atol=1e-4)


def test_second_moment_is_the_mean_outer_product(tiny, kb):
    texts = kb.training_documents(5)
    C = rome.second_moment(tiny, 1, texts)
    keys = []
    for t in texts:
        _, cache = tiny.run_with_cache(tiny.to_tokens(t))
        keys.append(cache["blocks.1.mlp.hook_post"][0, 1:])
    k = torch.cat(keys)
    assert torch.allclose(C, k.T @ k / len(k), atol=1e-5)


def test_apply_rome_edits_a_copy_and_leaves_the_original(tiny, fact):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    prompt = fact["prompt"].format(fact["subject"])
    new_id = rome.parse_request(tiny, fact).target_new

    def p_new(model):
        with torch.no_grad():
            return model(model.to_tokens(prompt))[0, -1].softmax(-1)[new_id].item()
    p0 = p_new(tiny)
    edited = rome.apply_rome(tiny, fact, layer=1, hparams=HP)
    assert p_new(edited) > 1.2 * p0  # a random model: the real efficacy is measured on kb-lm
    assert p_new(tiny) == pytest.approx(p0)
    after = tiny.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = [k for k, v in edited.state_dict().items() if not torch.equal(v, before[k])]
    assert changed == ["blocks.1.mlp.out.weight"]
    # hooks and written weights agree
    e = edited.rome_edits[0]
    with rome.edited(tiny, e):
        assert p_new(tiny) == pytest.approx(p_new(edited), abs=1e-5)


def test_rome_accepts_str_dict_target_and_default_layer(tiny, fact):
    req = dict(fact, target_new={"str": fact["target_new"]})
    assert rome.parse_request(tiny, req).target_new == rome.parse_request(tiny, fact).target_new
    assert rome.default_layer(tiny) == 1
    assert [rome.default_layer(type("M", (), {"cfg": type("C", (), {"n_layers": n})})()) for n in (4, 6, 24, 36, 48)] \
        == [1, 2, 8, 12, 17]


def test_rome_errors(tiny, attn_model, fact):
    with pytest.raises(InputError, match="not in the prompt"):
        rome.apply_rome(tiny, dict(fact, prompt="was born in"), hparams=HP)
    with pytest.raises(InputError, match="tokens"):
        rome.apply_rome(tiny, dict(fact, target_new="Lima Lima"), hparams=HP)
    with pytest.raises(InputError, match="out of range"):
        rome.apply_rome(tiny, fact, layer=3, hparams=HP)
    with pytest.raises(InputError, match="no MLPs"):
        rome.apply_rome(attn_model, fact)
    with pytest.raises(InputError, match="missing"):
        rome.apply_rome(tiny, {"prompt": "{} was born in"})


# -- evaluation -----------------------------------------------------------------------------------
def test_summarize_matches_rome_definitions():
    cases = [dict(ES=1.0, EM=0.5, PS=0.5, PM=0.1, NS=1.0, NM=0.2), dict(ES=1.0, EM=0.3, PS=1.0, PM=0.3, NS=0.5, NM=0.0)]
    s = ev.summarize(cases)
    assert s["ES"] == 1.0 and s["PS"] == 0.75 and s["NS"] == 0.75 and s["EM"] == pytest.approx(0.4)
    assert s["S"] == pytest.approx(3 / (1 / 1.0 + 1 / 0.75 + 1 / 0.75))


def test_kb_case_and_scores(tiny, kb, fact):
    case = ev.kb_case(tiny, kb, fact["subject"], "birth_city", fact["target_new"])
    assert case.rewrite_prompts == [fact["prompt"].format(fact["subject"])]
    assert kb.prompts(fact["subject"], "birth_city", "heldout")[0] in case.paraphrase_prompts
    assert all(fact["subject"] not in p for p in case.neighborhood_prompts)
    pre = ev.case_scores(tiny, case)
    e = rome.rome_edit(tiny, case.request, 1, HP)
    post = ev.case_scores(tiny, case, e)
    assert post["EM"] > pre["EM"]
    ft = ev.fine_tune_edit(tiny, case.request, 1, steps=10, lr=1e-2)
    ftl = ev.fine_tune_edit(tiny, case.request, 1, norm_constraint=1e-3, steps=10, lr=1e-2)
    assert ftl.dW.abs().max() <= 1e-3 + 1e-9 and ft.dW.abs().max() > 1e-3
    assert ev.case_scores(tiny, case, ft)["EM"] > pre["EM"]
    with pytest.raises(InputError, match="norm_constraint"):
        ev.fine_tune_edit(tiny, case.request, 1, norm_constraint=-1.0)
