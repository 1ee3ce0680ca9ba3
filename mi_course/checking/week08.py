"""Checkers for week 08: causal tracing and ROME on ``kb-lm``.

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.causal_tracing`, :mod:`mi_course.methods.rome`,
:mod:`mi_course.methods.edit_evaluation`) on fixed and random cases, and recognises the common
mistakes listed with each exercise.
"""

from __future__ import annotations

from statistics import harmonic_mean

import torch

from mi_course.checking import kb_lm
from mi_course.checking import core
from mi_course.checking.core import Case, Exercise, Mistake, yours_or_reference  # noqa: F401
from mi_course.methods import causal_tracing as ct
from mi_course.methods import rome
from mi_course.zoo import hooks as hk

MODEL = "kb-lm"


_model = kb_lm.model  # kb-lm and its KB, loaded once for all of block 2's checkers
_kb = kb_lm.knowledge_base


def _fact(seed: int, known: bool = True):
    """A seeded (prompt, subject, object) of the KB: a training template of a random base fact."""
    kb = _kb()
    g = torch.Generator().manual_seed(seed)
    rels = list(getattr(kb, "base_relations", kb.relations))
    rel = rels[int(torch.randint(len(rels), (1,), generator=g))]
    facts = kb.facts_of(rel)
    f = facts[int(torch.randint(len(facts), (1,), generator=g))]
    tpls = kb.split_templates(f.subject, rel, "train")
    tpl = tpls[int(torch.randint(len(tpls), (1,), generator=g))]
    return tpl, f.subject, f.object, rel


def _fact_tokens(seed: int):
    model = _model()
    tpl, subject, obj, _ = _fact(seed)
    prompt = tpl.format(subject)
    tokens = model.to_tokens(prompt)
    start, end = ct.subject_range(model, prompt, subject)
    return tokens, start, end, ct.target_token(model, obj)


def _visible(ex: Exercise, fn, seed) -> bool:
    """The visible check (``seed=None``) returns True/False and never raises; a hidden test raises."""
    __tracebackhide__ = True  # noqa: F841
    return core.check(ex, fn, seed)


# -- 1. corrupt the subject's embeddings ---------------------------------------------------------
def corrupt_embeddings(embed: torch.Tensor, start: int, end: int, noise: torch.Tensor) -> torch.Tensor:
    """``embed [batch, pos, d]`` with ``noise [batch, end - start, d]`` added at positions ``start:end``."""
    out = embed.clone()
    out[:, start:end] = out[:, start:end] + noise
    return out


def _corrupt_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, p, d in [(3, 7, 8), (5, 11, 16)]:
        start = int(torch.randint(1, p - 4, (1,), generator=g))
        end = start + int(torch.randint(1, 4, (1,), generator=g))
        out.append(Case(f"seed {seed}, batch={b} pos={p} subject {start}:{end}", {
            "embed": torch.randn(b, p, d, generator=g), "start": start, "end": end,
            "noise": torch.randn(b, end - start, d, generator=g) * 3}))
    return out


def _replace(embed, start, end, noise):
    out = embed.clone()
    out[:, start:end] = noise
    return out


CORRUPT = Exercise(
    id="w08_corrupt_embeddings", title="corrupt_embeddings", reference=corrupt_embeddings, cases=_corrupt_cases,
    mistakes=[
        Mistake("replaced", _replace, "add the noise to the subject's embeddings; do not replace them with it."),
        Mistake("shifted by one", lambda embed, start, end, noise: corrupt_embeddings(embed, start - 1, end - 1, noise),
                "the subject starts at `start` (the BOS token is position 0 and is already counted); do not shift it."),
        Mistake("scaled", lambda embed, start, end, noise: _replace(embed, start, end, embed[:, start:end] * (1 + noise)),
                "the noise is added (embedding + noise), not multiplied."),
    ],
    hint="work on a copy so the caller's tensor is unchanged, and add the noise at positions start to end - 1 only.",
)


def check_corrupt_embeddings(fn, seed: int | None = None):
    """Check ``corrupt_embeddings(embed, start, end, noise) -> [batch, pos, d]``."""
    return _visible(CORRUPT, fn, seed)


# -- 2. the noise level ------------------------------------------------------------------------
def noise_level(W_E: torch.Tensor, subject_token_ids: torch.Tensor) -> float:
    """3 x the standard deviation of the embeddings of the subjects' tokens (over all their entries)."""
    return float(3 * W_E[subject_token_ids].std())


def _noise_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for v, d, n in [(40, 8, 6), (120, 16, 30)]:
        W_E = torch.randn(v, d, generator=g) * torch.linspace(0.2, 2.0, v)[:, None]
        ids = torch.randint(0, v // 2, (n,), generator=g)
        out.append(Case(f"seed {seed}, vocab={v} d={d} {n} subject tokens", {"W_E": W_E, "subject_token_ids": ids}))
    return out


NOISE = Exercise(
    id="w08_noise_level", title="noise_level", reference=noise_level, cases=_noise_cases,
    mistakes=[
        Mistake("whole W_E", lambda W_E, subject_token_ids: float(3 * W_E.std()),
                "use the embeddings of the subjects' tokens (W_E[subject_token_ids]), not the whole vocabulary."),
        Mistake("no factor 3", lambda W_E, subject_token_ids: float(W_E[subject_token_ids].std()),
                "the paper's noise is 3 times the standard deviation."),
        Mistake("per dimension", lambda W_E, subject_token_ids: float(3 * W_E[subject_token_ids].std(0).mean()),
                "take one standard deviation over all entries (`.std()`), not a mean of per-dimension ones."),
    ],
    hint="one standard deviation over all entries of the subject tokens' embedding rows, times the paper's factor, "
         "returned as a Python float.",
)


def check_noise_level(fn, seed: int | None = None):
    """Check ``noise_level(W_E, subject_token_ids) -> float``."""
    return _visible(NOISE, fn, seed)


# -- 3. one restoration --------------------------------------------------------------------------
@torch.no_grad()
def restored_probability(model, tokens: torch.Tensor, start: int, end: int, noise: torch.Tensor, target: int,
                         hook_name: str, pos: int) -> float:
    """Mean over noise samples of P(target) at the last token, subject embeddings corrupted by ``noise``
    (``[n, end - start, d_model]``), with ``hook_name``'s clean activation restored at ``pos``."""
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook_name)
    n = noise.shape[0]

    def corrupt(act, hook):
        return corrupt_embeddings(act, start, end, noise.to(act.dtype))

    def restore(act, hook):
        act = act.clone()
        act[:, pos] = cache[hook_name][0, pos]
        return act
    logits = model.run_with_hooks(tokens.expand(n, -1), fwd_hooks=[("hook_embed", corrupt), (hook_name, restore)])
    return float(logits[:, -1].softmax(-1)[:, target].mean())


def _noise_for(model, seed: int, n: int, width: int) -> torch.Tensor:
    return ct.make_noise(n, width, model.cfg.d_model, 3 * ct.embedding_std(model), seed)


def _restore_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, kind in enumerate(("hidden", "mlp")):
        tokens, start, end, target = _fact_tokens(seed * 7 + i)
        layer = int(torch.randint(0, model.cfg.n_layers - 1, (1,), generator=g))
        pos = end - 1 if i == 0 else int(torch.randint(start, tokens.shape[1], (1,), generator=g))
        out.append(Case(f"seed {seed}, {model.to_str_tokens(tokens)[1:]}, {kind} L{layer} pos {pos}", {
            "model": model, "tokens": tokens, "start": start, "end": end,
            "noise": _noise_for(model, seed + i, 4, end - start), "target": target,
            "hook_name": ct.HOOKS[kind](layer), "pos": pos}))
    return out


@torch.no_grad()
def _corrupted_only(model, tokens, start, end, noise, target, hook_name, pos):
    logits = model.run_with_hooks(tokens.expand(noise.shape[0], -1), fwd_hooks=[
        ("hook_embed", lambda a, hook: corrupt_embeddings(a, start, end, noise))])
    return float(logits[:, -1].softmax(-1)[:, target].mean())


@torch.no_grad()
def _restore_everywhere(model, tokens, start, end, noise, target, hook_name, pos):
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook_name)
    logits = model.run_with_hooks(tokens.expand(noise.shape[0], -1), fwd_hooks=[
        ("hook_embed", lambda a, hook: corrupt_embeddings(a, start, end, noise)),
        (hook_name, lambda a, hook: cache[hook_name].expand_as(a).clone())])
    return float(logits[:, -1].softmax(-1)[:, target].mean())


RESTORE = Exercise(
    id="w08_restored_probability", title="restored_probability", reference=restored_probability,
    cases=_restore_cases, atol=1e-4,
    mistakes=[
        Mistake("no restoration", _corrupted_only,
                "this is the corrupted run's probability: add a hook on `hook_name` that copies the clean value at `pos`."),
        Mistake("every position", _restore_everywhere,
                "restore the clean activation only at position `pos`, not at every position."),
        Mistake("first sample", lambda model, tokens, start, end, noise, target, hook_name, pos: restored_probability(
            model, tokens, start, end, noise[:1], target, hook_name, pos),
                "average P(target) over all noise samples (one batch row per sample)."),
    ],
    hint="cache the clean run first; then, in one run on n copies of the prompt, corrupt the subject's embeddings "
         "and give `hook_name` its clean value at `pos` only; report the mean probability of `target` at the last "
         "token.",
)


def check_restored_probability(fn, seed: int | None = None):
    """Check ``restored_probability(model, tokens, start, end, noise, target, hook_name, pos) -> float``."""
    return _visible(RESTORE, fn, seed)


# -- 4. the whole trace ------------------------------------------------------------------------
@torch.no_grad()
def causal_trace(model, tokens: torch.Tensor, start: int, end: int, noise: torch.Tensor, target: int,
                 kind: str = "hidden") -> torch.Tensor:
    """``[n_layers, pos]``: :func:`restored_probability` for every layer and position; ``kind``
    ``hidden`` (``blocks.L.hook_resid_post``), ``mlp`` (``hook_mlp_out``) or ``attn`` (``hook_attn_out``)."""
    P = tokens.shape[1]
    out = torch.zeros(model.cfg.n_layers, P)
    for layer in range(model.cfg.n_layers):
        for pos in range(P):
            out[layer, pos] = restored_probability(model, tokens, start, end, noise, target,
                                                   ct.HOOKS[kind](layer), pos)
    return out


def _trace_cases(seed: int) -> list[Case]:
    model = _model()
    out = []
    for i, kind in enumerate(("hidden", "mlp") if seed % 2 == 0 else ("hidden", "attn")):
        tokens, start, end, target = _fact_tokens(seed * 5 + i)
        out.append(Case(f"seed {seed}, {model.to_str_tokens(tokens)[1:]}, kind={kind}", {
            "model": model, "tokens": tokens, "start": start, "end": end,
            "noise": _noise_for(model, seed + 10 + i, 3, end - start), "target": target, "kind": kind}))
    return out


def _trace_resid_pre(model, tokens, start, end, noise, target, kind="hidden"):
    out = torch.zeros(model.cfg.n_layers, tokens.shape[1])
    for layer in range(model.cfg.n_layers):
        name = (hk.resid_pre(layer) if kind == "hidden" else ct.HOOKS[kind](layer))
        for pos in range(tokens.shape[1]):
            out[layer, pos] = restored_probability(model, tokens, start, end, noise, target, name, pos)
    return out


TRACE = Exercise(
    id="w08_causal_trace", title="causal_trace", reference=causal_trace, cases=_trace_cases, atol=1e-4,
    visible_random_seed=False,  # each case is a whole trace; seed 0 already covers two kinds
    mistakes=[
        Mistake("resid_pre", _trace_resid_pre,
                "the hidden state of layer L is the residual stream *after* block L: `blocks.L.hook_resid_post`."),
        Mistake("kind ignored", lambda model, tokens, start, end, noise, target, kind="hidden": causal_trace(
            model, tokens, start, end, noise, target, "hidden"),
                "use `kind` to pick the hook: hidden -> hook_resid_post, mlp -> hook_mlp_out, attn -> hook_attn_out."),
        Mistake("transposed", lambda model, tokens, start, end, noise, target, kind="hidden": causal_trace(
            model, tokens, start, end, noise, target, kind).T,
                "return [n_layers, pos] (layers first)."),
    ],
    hint="two loops (layer, position), each entry one call of your `restored_probability` with the right hook name.",
)


def check_causal_trace(fn, seed: int | None = None):
    """Check ``causal_trace(model, tokens, start, end, noise, target, kind) -> [n_layers, pos]``."""
    return _visible(TRACE, fn, seed)


# -- 5. named positions ------------------------------------------------------------------------
def by_named_position(effect: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """``[layer, 6]``: ``effect [layer, pos]`` averaged over each of ``causal_tracing.POSITION_NAMES``
    (NaN where a prompt has no such position; the last token belongs only to "last token")."""
    groups = ct.named_positions(start, end, effect.shape[1])
    cols = [effect[:, ps].mean(1) if ps else torch.full((effect.shape[0],), float("nan"))
            for ps in (groups[n] for n in ct.POSITION_NAMES)]
    return torch.stack(cols, 1)


def _named_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for L, P, start, width in [(4, 9, 1, 2), (6, 8, 2, 3), (3, 6, 1, 1), (5, 7, 1, 4)]:
        P = P + int(torch.randint(0, 2, (1,), generator=g))
        out.append(Case(f"seed {seed}, {P} tokens, subject {start}:{start + width}", {
            "effect": torch.rand(L, P, generator=g), "start": start, "end": start + width}))
    return out


def _named_zeros(effect, start, end):
    return torch.nan_to_num(by_named_position(effect, start, end), nan=0.0)


def _named_overlap(effect, start, end):
    P = effect.shape[1]
    groups = [[start], list(range(start + 1, end - 1)), [end - 1], [end], list(range(end + 1, P)), [P - 1]]
    return torch.stack([effect[:, g].mean(1) if g else torch.full((effect.shape[0],), float("nan")) for g in groups], 1)


NAMED = Exercise(
    id="w08_by_named_position", title="by_named_position", reference=by_named_position, cases=_named_cases,
    mistakes=[
        Mistake("zeros", _named_zeros, "where a prompt has no such position (a one-word subject has no middle), "
                "return NaN, so that averaging over facts skips it (torch.nanmean)."),
        Mistake("last token twice", _named_overlap,
                "the last token is only 'last token': leave it out of 'further tokens' (and 'first subsequent token')."),
    ],
    hint="give each name in ct.POSITION_NAMES its positions, remembering that `end` is exclusive (the last subject "
         "token is end - 1) and that the prompt's last token belongs to 'last token' only. Self-check: a one-token "
         "subject must give a NaN middle column.",
)


def check_by_named_position(fn, seed: int | None = None):
    """Check ``by_named_position(effect, start, end) -> [layer, 6]``."""
    return _visible(NAMED, fn, seed)


# -- 6. the key ----------------------------------------------------------------------------------
@torch.no_grad()
def subject_key(model, layer: int, prompts: list[str], subject: str) -> torch.Tensor:
    """k* ``[d_mlp]``: ``blocks.{layer}.mlp.hook_post`` at the subject's last token, averaged over ``prompts``."""
    name = f"blocks.{layer}.mlp.hook_post"
    keys = []
    for p in prompts:
        _, end = ct.subject_range(model, p, subject)
        _, cache = model.run_with_cache(model.to_tokens(p), names_filter=lambda n: n == name)
        keys.append(cache[name][0, end - 1])
    return torch.stack(keys).mean(0)


def _key_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    ctx = rome.context_templates(model, ((5, 3), (8, 2)), seed=seed)
    out = []
    for i in range(2):
        tpl, subject, _, _ = _fact(seed * 3 + i)
        layer = int(torch.randint(0, model.cfg.n_layers, (1,), generator=g))
        out.append(Case(f"seed {seed}, subject {subject!r}, layer {layer}, {len(ctx)} prompts", {
            "model": model, "layer": layer, "prompts": [c.format(tpl.format(subject)) for c in ctx], "subject": subject}))
    return out


@torch.no_grad()
def _key_at(model, layer, prompts, subject, where="last_token", hook="hook_post"):
    name = f"blocks.{layer}.mlp.{hook}"
    keys = []
    for p in prompts:
        start, end = ct.subject_range(model, p, subject)
        toks = model.to_tokens(p)
        _, cache = model.run_with_cache(toks, names_filter=lambda n: n == name)
        pos = {"last_token": toks.shape[1] - 1, "first": start, "last": end - 1}[where]
        keys.append(cache[name][0, pos])
    return torch.stack(keys).mean(0)


KEY = Exercise(
    id="w08_subject_key", title="subject_key", reference=subject_key, cases=_key_cases, atol=1e-4,
    mistakes=[
        Mistake("last token", lambda model, layer, prompts, subject: _key_at(model, layer, prompts, subject, "last_token"),
                "the key is read at the subject's *last token*, not at the prompt's last token."),
        Mistake("first subject token", lambda model, layer, prompts, subject: _key_at(model, layer, prompts, subject, "first"),
                "use the subject's last token (end - 1), not its first."),
        Mistake("hook_pre", lambda model, layer, prompts, subject: _key_at(model, layer, prompts, subject, "last", "hook_pre"),
                "the key is the input to W_out, after the nonlinearity: `mlp.hook_post`, not `mlp.hook_pre`."),
    ],
    hint="k* is the MLP key (the input to W_out) at the subject's last token, averaged over the prompts; "
         "`causal_tracing.subject_range` gives each subject's token range.",
)


def check_subject_key(fn, seed: int | None = None):
    """Check ``subject_key(model, layer, prompts, subject) -> [d_mlp]``."""
    return _visible(KEY, fn, seed)


# -- 7. the second moment C -------------------------------------------------------------------
@torch.no_grad()
def second_moment(model, layer: int, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """C ``[d_mlp, d_mlp]``: mean of ``k kᵀ`` over the keys ``blocks.{layer}.mlp.hook_post`` of every real
    token (positions ``1 .. lengths[i] - 1`` of row ``i``: no BOS, no padding)."""
    name = f"blocks.{layer}.mlp.hook_post"
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    pos = torch.arange(tokens.shape[1])[None]
    mask = (pos < lengths[:, None]) & (pos >= 1)
    k = cache[name][mask]
    return k.T @ k / k.shape[0]


def _c_cases(seed: int) -> list[Case]:
    model = _model()
    kb = _kb()
    g = torch.Generator().manual_seed(seed)
    docs = kb.training_documents(6, start=int(torch.randint(0, 500, (1,), generator=g)))
    seqs = [model.to_tokens(d)[0] for d in docs]
    lengths = torch.tensor([len(s) for s in seqs])
    tokens = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = s
    layer = int(torch.randint(0, model.cfg.n_layers, (1,), generator=g))
    return [Case(f"seed {seed}, 6 documents of {lengths.tolist()} tokens, layer {layer}",
                 {"model": model, "layer": layer, "tokens": tokens, "lengths": lengths})]


@torch.no_grad()
def _c_variant(model, layer, tokens, lengths, pad=False, bos=False, centred=False, total=False):
    name = f"blocks.{layer}.mlp.hook_post"
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    pos = torch.arange(tokens.shape[1])[None]
    mask = torch.ones_like(tokens, dtype=torch.bool) if pad else (pos < lengths[:, None])
    if not bos:
        mask = mask & (pos >= 1)
    k = cache[name][mask]
    if centred:
        k = k - k.mean(0)
    return k.T @ k if total else k.T @ k / k.shape[0]


C_EX = Exercise(
    id="w08_second_moment", title="second_moment", reference=second_moment, cases=_c_cases, atol=1e-5,
    mistakes=[
        Mistake("padding", lambda model, layer, tokens, lengths: _c_variant(model, layer, tokens, lengths, pad=True),
                "leave out the padding: only positions below lengths[i] are real tokens."),
        Mistake("BOS", lambda model, layer, tokens, lengths: _c_variant(model, layer, tokens, lengths, bos=True),
                "leave out position 0 (the BOS token: its key is the same in every text)."),
        Mistake("centred", lambda model, layer, tokens, lengths: _c_variant(model, layer, tokens, lengths, centred=True),
                "ROME's C is the *uncentred* second moment E[k kᵀ]; do not subtract the mean key."),
        Mistake("sum", lambda model, layer, tokens, lengths: _c_variant(model, layer, tokens, lengths, total=True),
                "divide by the number of keys (a mean, not a sum)."),
    ],
    hint="C is the uncentred second moment of the keys over every real token (not position 0, not the padding past "
         "each length). Self-check: C is symmetric, [d_mlp, d_mlp].",
)


def check_second_moment(fn, seed: int | None = None):
    """Check ``second_moment(model, layer, tokens, lengths) -> [d_mlp, d_mlp]``."""
    return _visible(C_EX, fn, seed)


# -- 8. the rank-one update --------------------------------------------------------------------
def rank_one_update(W_out, b_out, C, k_star, v_star) -> torch.Tensor:
    """ΔW ``[d_mlp, d_model]`` (see :func:`mi_course.methods.rome.rank_one_update`)."""
    return rome.rank_one_update(W_out, b_out, C, k_star, v_star)


def _r1_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for m, d in [(12, 6), (40, 16)]:
        A = torch.randn(m, m, generator=g)
        out.append(Case(f"seed {seed}, d_mlp={m} d_model={d}", {
            "W_out": torch.randn(m, d, generator=g), "b_out": torch.randn(d, generator=g),
            "C": A @ A.T / m + 0.5 * torch.eye(m), "k_star": torch.randn(m, generator=g),
            "v_star": torch.randn(d, generator=g)}))
    return out


R1 = Exercise(
    id="w08_rank_one_update", title="rank_one_update", reference=rank_one_update, cases=_r1_cases, atol=1e-4,
    mistakes=[
        Mistake("no C", lambda W_out, b_out, C, k_star, v_star: rome.rank_one_update(W_out, b_out, None, k_star, v_star),
                "the direction of the update is C⁻¹k*, not k*: solve with C (torch.linalg.solve(C, k_star))."),
        Mistake("C not inverted", lambda W_out, b_out, C, k_star, v_star: torch.outer(
            C @ k_star, (v_star - k_star @ W_out - b_out) / ((C @ k_star) @ k_star)),
                "use C⁻¹k* (solve C u = k*), not C k*."),
        Mistake("bias forgotten", lambda W_out, b_out, C, k_star, v_star: rome.rank_one_update(W_out, None, C, k_star, v_star),
                "the MLP's current output at k* is k* @ W_out + b_out: include the bias in the residual v* - output."),
        Mistake("denominator k·k", lambda W_out, b_out, C, k_star, v_star: torch.outer(
            torch.linalg.solve(C, k_star), (v_star - k_star @ W_out - b_out) / (k_star @ k_star)),
                "divide by (C⁻¹k*)ᵀk* (= u @ k_star), so that k* @ (W_out + ΔW) + b_out equals v* exactly."),
    ],
    hint="solve with C rather than inverting it (look up torch.linalg.solve); ΔW is an outer product, scaled so "
         "that k_star @ (W_out + ΔW) + b_out equals v_star exactly: check that.",
)


def check_rank_one_update(fn, seed: int | None = None):
    """Check ``rank_one_update(W_out, b_out, C, k_star, v_star) -> [d_mlp, d_model]``."""
    return _visible(R1, fn, seed)


# -- 9. the value: optimise δ -----------------------------------------------------------------
def compute_delta(model, layer: int, tokens: torch.Tensor, lookup: torch.Tensor, last: torch.Tensor, target: int,
                  n_kl: int, kl_factor: float = 0.0625, weight_decay: float = 0.5, steps: int = 10, lr: float = 0.5,
                  clamp_norm_factor: float = 4.0) -> torch.Tensor:
    """δ ``[d_model]`` (see :func:`mi_course.methods.rome.optimise_delta`; no early stop)."""
    return rome.optimise_delta(model, layer, tokens, lookup, last, target, n_kl, kl_factor, weight_decay, steps, lr,
                               clamp_norm_factor)[0]


def delta_inputs(model, prompt: str, subject: str, target: str, contexts: list[str], kl_prompts: list[str]) -> dict:
    """The tensors :func:`compute_delta` takes, for one request: the prefixed prompts, then the KL prompts."""
    texts = [c.format(prompt.format(subject)) for c in contexts] + [k.format(subject) for k in kl_prompts]
    seqs = [model.to_tokens(t)[0] for t in texts]
    lengths = torch.tensor([len(s) for s in seqs])
    tokens = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = s
    lookup = torch.tensor([ct.subject_range(model, t, subject)[1] - 1 for t in texts])
    return {"tokens": tokens, "lookup": lookup, "last": lengths - 1, "target": ct.target_token(model, target),
            "n_kl": len(kl_prompts)}


def _delta_cases(seed: int) -> list[Case]:
    model = _model()
    kb = _kb()
    g = torch.Generator().manual_seed(seed)
    tpl, subject, obj, rel = _fact(seed * 11)
    new = [o for o in kb.objects(rel) if o != obj][int(torch.randint(0, len(kb.objects(rel)) - 1, (1,), generator=g))]
    ctx = rome.context_templates(model, ((5, 2), (8, 2)), seed=seed)
    layer = int(torch.randint(0, model.cfg.n_layers - 1, (1,), generator=g))
    kw = {"model": model, "layer": layer, **delta_inputs(model, tpl, subject, new, ctx, ["{}"])}
    kw2 = dict(kw, kl_factor=1.0, weight_decay=0.1, steps=6)
    return [Case(f"seed {seed}, {tpl.format(subject)!r} -> {new}, layer {layer}", kw),
            Case(f"seed {seed}, same with kl_factor=1.0, weight_decay=0.1, steps=6", kw2)]


def _delta_variant(drop: str):
    def fn(model, layer, tokens, lookup, last, target, n_kl, kl_factor=0.0625, weight_decay=0.5, steps=10, lr=0.5,
           clamp_norm_factor=4.0):
        if drop == "kl":
            kl_factor = 0.0
        if drop == "wd":
            weight_decay = 0.0
        if drop == "clamp":
            clamp_norm_factor = 1e9
        if drop == "defaults":
            kl_factor, weight_decay, steps = 0.0625, 0.5, 10
        return rome.optimise_delta(model, layer, tokens, lookup, last, target, n_kl, kl_factor, weight_decay, steps,
                                   lr, clamp_norm_factor)[0]
    return fn


DELTA = Exercise(
    id="w08_compute_delta", title="compute_delta", reference=compute_delta, cases=_delta_cases, atol=2e-3, rtol=2e-2,
    mistakes=[
        Mistake("no KL", _delta_variant("kl"),
                "add the KL term: kl_factor · KL(P_orig ‖ P_δ) at the last token of the last n_kl rows "
                "(F.kl_div(new_logprobs, orig_logprobs, log_target=True, reduction='batchmean'))."),
        Mistake("no weight decay", _delta_variant("wd"),
                "add weight_decay · ‖δ‖ / ‖v_init‖² (v_init: the clean MLP output at row 0's lookup position)."),
        Mistake("defaults", _delta_variant("defaults"),
                "use the arguments you are given (kl_factor, weight_decay, steps), not the default values."),
    ],
    hint="only δ is trained (the model stays frozen): it is added to blocks.{layer}.hook_mlp_out at each row's lookup "
         "position; the loss is the target's NLL plus the KL term plus weight decay, and ‖δ‖ is clamped after "
         "every step.",
)


def check_compute_delta(fn, seed: int | None = None):
    """Check ``compute_delta(model, layer, tokens, lookup, last, target, n_kl, ...) -> [d_model]``."""
    return _visible(DELTA, fn, seed)


# -- 10. the edit metrics ----------------------------------------------------------------------
def edit_metrics(rewrite: torch.Tensor, paraphrase: torch.Tensor, neighbourhood: torch.Tensor) -> torch.Tensor:
    """``[ES, PS, NS, S]`` of one edit. Each argument is ``[n_prompts, 2]``: columns P(new), P(true).

    ES/PS: fraction with P(new) > P(true); NS: fraction with P(true) > P(new); S: harmonic mean."""
    es = (rewrite[:, 0] > rewrite[:, 1]).float().mean()
    ps = (paraphrase[:, 0] > paraphrase[:, 1]).float().mean()
    ns = (neighbourhood[:, 1] > neighbourhood[:, 0]).float().mean()
    parts = [float(es), float(ps), float(ns)]
    s = 0.0 if min(parts) <= 0 else harmonic_mean(parts)
    return torch.tensor(parts + [s])


def _metric_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (3, 8):
        def probs(k, bias):
            p = torch.rand(k, 2, generator=g)
            p[:, 0] += bias
            return p / p.sum(1, keepdim=True) * 0.9
        out.append(Case(f"seed {seed}, {n} prompts each", {
            "rewrite": probs(n, 0.3), "paraphrase": probs(n + 2, 0.1), "neighbourhood": probs(n + 3, -0.2)}))
    return out


def _metrics_wrong(ns_flip=False, mean=False):
    def fn(rewrite, paraphrase, neighbourhood):
        es = (rewrite[:, 0] > rewrite[:, 1]).float().mean()
        ps = (paraphrase[:, 0] > paraphrase[:, 1]).float().mean()
        ns = (neighbourhood[:, 0] > neighbourhood[:, 1]).float().mean() if ns_flip else \
            (neighbourhood[:, 1] > neighbourhood[:, 0]).float().mean()
        parts = [float(es), float(ps), float(ns)]
        s = sum(parts) / 3 if mean else (0.0 if min(parts) <= 0 else harmonic_mean(parts))
        return torch.tensor(parts + [s])
    return fn


METRICS = Exercise(
    id="w08_edit_metrics", title="edit_metrics", reference=edit_metrics, cases=_metric_cases,
    mistakes=[
        Mistake("neighbourhood flipped", _metrics_wrong(ns_flip=True),
                "on neighbours the edit should change nothing: NS counts prompts where P(true) > P(new) still holds."),
        Mistake("arithmetic mean", _metrics_wrong(mean=True), "S is the *harmonic* mean of ES, PS and NS."),
    ],
    hint="ES and PS are the share of rows where the new object beats the true one, NS the reverse; S is their "
         "harmonic mean (0 when any of them is 0).",
)


def check_edit_metrics(fn, seed: int | None = None):
    """Check ``edit_metrics(rewrite, paraphrase, neighbourhood) -> [ES, PS, NS, S]``."""
    return _visible(METRICS, fn, seed)


EXERCISES = {ex.id: ex for ex in (CORRUPT, NOISE, RESTORE, TRACE, NAMED, KEY, C_EX, R1, DELTA, METRICS)}
