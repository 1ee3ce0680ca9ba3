"""Checkers for week 03: FFN layers as key-value memories; logit lens; tuned lens.

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.methods import ffn_memories, logit_lens


# -- 1. the logit lens from raw weights --------------------------------------------------------
def _lens_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for L, b, p, d, v in [(2, 1, 3, 8, 11), (3, 2, 5, 16, 40)]:
        out.append(Case(f"seed {seed}, layers={L} batch={b} pos={p} d_model={d} d_vocab={v}", {
            "resid": torch.randn(L, b, p, d, generator=g) * 3 + 1.5,
            "w_ln": 1 + 0.3 * torch.randn(d, generator=g), "b_ln": 0.2 * torch.randn(d, generator=g),
            "W_U": torch.randn(d, v, generator=g) / d**0.5, "b_U": 0.1 * torch.randn(v, generator=g)}))
    return out


def _no_ln(resid, w_ln, b_ln, W_U, b_U):
    return resid @ W_U + b_U


def _rms_norm(resid, w_ln, b_ln, W_U, b_U):
    x = resid / (resid.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()
    return (x * w_ln + b_ln) @ W_U + b_U


def _probs(resid, w_ln, b_ln, W_U, b_U):
    return logit_lens.layer_norm_unembed(resid, w_ln, b_ln, W_U, b_U).softmax(-1)


def _no_affine(resid, w_ln, b_ln, W_U, b_U):
    return logit_lens.layer_norm_unembed(resid, torch.ones_like(w_ln), torch.zeros_like(b_ln), W_U, b_U)


LOGIT_LENS = Exercise(
    id="w03_logit_lens",
    title="logit_lens",
    reference=logit_lens.layer_norm_unembed,
    cases=_lens_cases,
    mistakes=[
        Mistake("no final LayerNorm", _no_ln,
                "you unembedded the raw residual stream. The model applies its final LayerNorm before W_U, "
                "and the lens must too: centre, divide by the standard deviation, then * w_ln + b_ln."),
        Mistake("no centring", _rms_norm,
                "LayerNorm first subtracts the mean over d_model; you only divided by the root mean square."),
        Mistake("probabilities", _probs,
                "return logits (before the softmax), like the model's own output."),
        Mistake("no LN weights", _no_affine,
                "after normalising, apply LayerNorm's own weight and bias (x * w_ln + b_ln) before W_U."),
    ],
    hint="do what the model's final LayerNorm does (centre, normalise, then its own weight and bias) over d_model, then unembed.",
    atol=1e-4,
)


def check_logit_lens(fn, seed: int | None = None) -> bool:
    """Check ``logit_lens(resid, w_ln, b_ln, W_U, b_U) -> [..., d_vocab]``."""
    return check(LOGIT_LENS, fn, seed)


# -- 2. top-1 agreement with the final prediction ----------------------------------------------
def _agreement_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for L, b, p, v in [(3, 2, 6, 7), (4, 3, 10, 25)]:
        final = torch.randn(b, p, v, generator=g) * 2
        # later layers agree more often with the final prediction
        lens = torch.stack([final * (i / (L - 1)) + torch.randn(b, p, v, generator=g) * 1.5 for i in range(L)])
        out.append(Case(f"seed {seed}, layers={L} batch={b} pos={p} d_vocab={v}",
                        {"lens_logits": lens, "final_logits": final}))
    return out


def _count(lens_logits, final_logits):
    return (lens_logits.argmax(-1) == final_logits.argmax(-1)).float().sum(dim=(1, 2))


def _over_all(lens_logits, final_logits):
    return (lens_logits.argmax(-1) == final_logits.argmax(-1)).float().mean()


def _min_vs_max(lens_logits, final_logits):
    return (lens_logits.argmin(-1) == final_logits.argmax(-1)).float().mean(dim=(1, 2))


TOP1_AGREEMENT = Exercise(
    id="w03_top1_agreement",
    title="top1_agreement",
    reference=logit_lens.top1_agreement,
    cases=_agreement_cases,
    mistakes=[
        Mistake("count", _count, "return the *fraction* of positions (a mean over batch and position), not a count."),
        Mistake("one number", _over_all,
                "you averaged over the layers too: return one fraction per layer, shape [n_layers]."),
        Mistake("argmin", _min_vs_max, "the lens's prediction is its *highest* logit: argmax, not argmin."),
    ],
    hint="compare each layer's top token with the final top token at every (batch, position), and average over those two dimensions only.",
)


def check_top1_agreement(fn, seed: int | None = None) -> bool:
    """Check ``top1_agreement(lens_logits, final_logits) -> [n_layers]``."""
    return check(TOP1_AGREEMENT, fn, seed)


# -- 3. value-key agreement (Geva et al. 2021) ---------------------------------------------------
def _vk_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, v, k in [(12, 9, 3), (40, 30, 5)]:
        logits = torch.randn(n, v, generator=g)
        nxt = torch.randint(0, v, (n, k), generator=g)
        top = logits.argmax(-1)
        # plant agreement at different trigger ranks (first, later) for some neurons
        for i in range(0, n, 3):
            nxt[i, (i // 3) % k] = top[i]
        nxt[1, -1] = -1  # a trigger at the end of its window has no next token
        out.append(Case(f"seed {seed}, d_mlp={n} d_vocab={v} k={k}", {"value_logits": logits, "trigger_next": nxt}))
    return out


def _first_only(value_logits, trigger_next):
    return float((value_logits.argmax(-1) == trigger_next[:, 0]).float().mean())


def _bottom_token(value_logits, trigger_next):
    return float((trigger_next == value_logits.argmin(-1)[:, None]).any(-1).float().mean())


def _count_matches(value_logits, trigger_next):
    return float((trigger_next == value_logits.argmax(-1)[:, None]).float().mean())


VALUE_KEY_AGREEMENT = Exercise(
    id="w03_agreement_rate",
    title="agreement_rate",
    reference=ffn_memories.agreement_rate,
    cases=_vk_cases,
    mistakes=[
        Mistake("first trigger only", _first_only,
                "a neuron agrees if its value's top token is the next token of *any* of its k triggers, not only the first."),
        Mistake("most suppressed token", _bottom_token,
                "the value's top token is the one it promotes most: argmax of value_logits, not argmin."),
        Mistake("share of triggers", _count_matches,
                "you computed the share of (neuron, trigger) pairs that match; the rate is per neuron: "
                "does *any* trigger match? (then average over neurons)."),
    ],
    hint="per neuron: is its value's top token among its triggers' next tokens? Then the share of neurons for which that holds.",
)


def check_agreement_rate(fn, seed: int | None = None) -> bool:
    """Check ``agreement_rate(value_logits, trigger_next) -> float``."""
    return check(VALUE_KEY_AGREEMENT, fn, seed)



# -- 4. the trigger search (Geva et al.'s keys), in chunks (★★★) --------------------------------
MODEL = "text-lm-v2"  # the notebook's model: cases run on it and on its shipped held-out windows


@lru_cache(maxsize=1)
def _model():
    from mi_course import zoo

    return zoo.load(MODEL)


@lru_cache(maxsize=1)
def _windows() -> torch.Tensor:
    return ffn_memories.load_top_activations(MODEL).tokens


def _tokens(seed: int, n: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = _windows()
    rows = torch.randperm(w.shape[0], generator=g)[:n]
    start = int(torch.randint(1, w.shape[1] - length, (1,), generator=g))
    out = w[rows, start : start + length].clone()
    out[:, 0] = 0  # <bos> first, like every window
    return out


def _top_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    m = _model()
    n_layers = m.cfg.n_layers
    return [Case(f"seed {seed}, 7 windows of 20 tokens, layer {(L := int(torch.randint(0, n_layers, (1,), generator=g)))}, k=4, chunk=3",
                 {"model": m, "tokens": _tokens(seed, 7, 20), "layer": L, "k": 4, "chunk": 3}),
            Case(f"seed {seed}, 5 windows of 16 tokens, layer {(L := int(torch.randint(0, n_layers, (1,), generator=g)))}, k=6, chunk=2",
                 {"model": m, "tokens": _tokens(seed + 1, 5, 16), "layer": L, "k": 6, "chunk": 2})]


def _acts(model, tokens, layer):
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == f"blocks.{layer}.mlp.hook_post")
    return cache[f"blocks.{layer}.mlp.hook_post"]


def _top_with_bos(model, tokens, layer, k, chunk):
    a = _acts(model, tokens, layer)
    v, i = a.reshape(-1, a.shape[-1]).topk(k, dim=0)
    return v.T, (i // tokens.shape[1]).T, (i % tokens.shape[1]).T


def _top_last_chunk(model, tokens, layer, k, chunk):
    start = ((tokens.shape[0] - 1) // chunk) * chunk
    a = _acts(model, tokens[start:], layer)[:, 1:]
    v, i = a.reshape(-1, a.shape[-1]).topk(k, dim=0)
    n_pos = tokens.shape[1] - 1
    return v.T, (i // n_pos + start).T, (i % n_pos + 1).T


def _top_local_batch(model, tokens, layer, k, chunk):
    vs, bs, ps = [], [], []
    for s in range(0, tokens.shape[0], chunk):
        a = _acts(model, tokens[s : s + chunk], layer)[:, 1:]
        v, i = a.reshape(-1, a.shape[-1]).topk(min(k, a.shape[0] * a.shape[1]), dim=0)
        vs.append(v)
        bs.append(i // a.shape[1])  # forgot to add the chunk's start
        ps.append(i % a.shape[1] + 1)
    v, order = torch.cat(vs).topk(k, dim=0)
    return v.T, torch.cat(bs).gather(0, order).T, torch.cat(ps).gather(0, order).T


def _top_pos_unshifted(model, tokens, layer, k, chunk):
    a = _acts(model, tokens, layer)[:, 1:]
    v, i = a.reshape(-1, a.shape[-1]).topk(k, dim=0)
    return v.T, (i // a.shape[1]).T, (i % a.shape[1]).T


TOP_ACTIVATIONS = Exercise(
    id="w03_top_activations",
    title="top_activations",
    reference=ffn_memories.top_activations_layer,
    cases=_top_cases,
    mistakes=[
        Mistake("<bos> searched", _top_with_bos,
                "position 0 is the <bos> token, the same in every window: many neurons fire hugely there, and it is "
                "no trigger prefix. Search positions 1 onwards."),
        Mistake("last chunk only", _top_last_chunk,
                "your top-k comes from the last chunk only: keep a running top-k and merge each chunk's candidates into it."),
        Mistake("chunk-local batch index", _top_local_batch,
                "the batch indices must point into the whole `tokens`, not into the chunk: add the chunk's first row."),
        Mistake("position not shifted back", _top_pos_unshifted,
                "after dropping position 0, index j of what you searched is position j + 1 of the window."),
    ],
    hint="for each chunk: its layer activations without position 0, flattened over (batch, position); keep the best k "
         "per neuron across chunks; then turn flat indices back into (row of tokens, position).",
    atol=1e-3,
)


def check_top_activations(fn, seed: int | None = None) -> bool:
    """Check ``top_activations(model, tokens, layer, k, chunk) -> (values, batch_idx, pos_idx)``, each ``[d_mlp, k]``."""
    return check(TOP_ACTIVATIONS, fn, seed)


# -- 5. how shallow are the keys? -----------------------------------------------------------------
def _mode_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = [Case("two neurons, hand-made", {"last": torch.tensor([[5, 5, 5, 2], [1, 2, 3, 3]])})]
    for n, k, v in [(12, 8, 5), (30, 20, 40)]:
        last = torch.randint(0, v, (n, k), generator=g)
        last[::3, 1:] = last[::3, 1:2]  # some neurons are single-token detectors (not on the first trigger)
        out.append(Case(f"seed {seed}, d_mlp={n}, k={k}", {"last": last}))
    return out


def _mode_unique(last):
    return float(torch.tensor([1 - (len(row.unique()) - 1) / last.shape[1] for row in last]).mean())


def _mode_first(last):
    return float((last == last[:, :1]).float().mean())


def _mode_per_neuron(last):
    return torch.stack([torch.bincount(row - row.min()).max() for row in last]).float() / last.shape[1]


MODE_SHARE = Exercise(
    id="w03_mode_share",
    title="mode_share",
    reference=ffn_memories.mode_share,
    cases=_mode_cases,
    mistakes=[
        Mistake("counted distinct tokens", _mode_unique,
                "the number of distinct last tokens is not the share of the most common one ([5, 5, 2, 3] has 3 "
                "distinct tokens, and its most common covers 2 of 4)."),
        Mistake("share of the first trigger's token", _mode_first,
                "the most common last token need not be the first trigger's: count every token and take the largest count."),
        Mistake("one value per neuron", _mode_per_neuron,
                "return one number for the layer: the mean over neurons of each neuron's share."),
    ],
    hint="for each neuron (row), how many of its k triggers end in its most frequent token? Divide by k, then average.",
)


def check_mode_share(fn, seed: int | None = None) -> bool:
    """Check ``mode_share(last [d_mlp, k]) -> float``."""
    return check(MODE_SHARE, fn, seed)


# -- 6. values through the final LayerNorm --------------------------------------------------------
def _vl_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, d, v in [(6, 8, 11), (20, 16, 30)]:
        out.append(Case(f"seed {seed}, d_mlp={n} d_model={d} d_vocab={v}", {
            "W_out": torch.randn(n, d, generator=g) + 0.5 * torch.randn(n, 1, generator=g),
            "w_ln": 1 + 0.5 * torch.rand(d, generator=g), "W_U": torch.randn(d, v, generator=g)}))
    return out


def _vl_raw(W_out, w_ln, W_U):
    return W_out @ W_U


def _vl_not_centred(W_out, w_ln, W_U):
    return (W_out * w_ln) @ W_U


def _vl_centred_wrong_dim(W_out, w_ln, W_U):
    return ((W_out - W_out.mean(0, keepdim=True)) * w_ln) @ W_U


VALUE_LOGITS = Exercise(
    id="w03_value_logits",
    title="value_logits",
    reference=ffn_memories.value_logits,
    cases=_vl_cases,
    mistakes=[
        Mistake("no LayerNorm", _vl_raw,
                "a value does not reach W_U directly: the final LayerNorm stands in between, and it rescales each "
                "dimension of d_model by its own weight (and centres the vector)."),
        Mistake("not centred", _vl_not_centred,
                "LayerNorm also subtracts each vector's mean over d_model before scaling; a value's mean is removed too."),
        Mistake("centred over neurons", _vl_centred_wrong_dim,
                "centre each value over its own d_model entries (the last dimension), not across neurons."),
    ],
    hint="follow a value through what the final LayerNorm does to a direction (everything except the per-position "
         "division, which changes no ranking), then unembed.",
    atol=1e-4,
)


def check_value_logits(fn, seed: int | None = None) -> bool:
    """Check ``value_logits(W_out, w_ln, W_U) -> [d_mlp, d_vocab]``."""
    return check(VALUE_LOGITS, fn, seed)


# -- 7. scale one neuron (ablate, boost) ----------------------------------------------------------
def _neuron_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    m = _model()
    out = []
    for scale in (0.0, 2.5):
        L = int(torch.randint(0, m.cfg.n_layers, (1,), generator=g))
        n = int(torch.randint(0, m.cfg.d_mlp, (1,), generator=g))
        out.append(Case(f"seed {seed}, neuron {L}.{n}, scale {scale}",
                        {"model": m, "tokens": _tokens(seed + int(scale * 10), 3, 16), "layer": L, "neuron": n, "scale": scale}))
    return out


def _scale_layer(model, tokens, layer, neuron, scale):
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", lambda a, hook: a * scale)])


def _scale_last_position(model, tokens, layer, neuron, scale):
    def hook(a, hook):
        a = a.clone()
        a[:, -1, neuron] = a[:, -1, neuron] * scale
        return a
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", hook)])


def _scale_pre(model, tokens, layer, neuron, scale):
    def hook(a, hook):
        a = a.clone()
        a[..., neuron] = a[..., neuron] * scale
        return a
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.mlp.hook_pre", hook)])


def _set_to_scale(model, tokens, layer, neuron, scale):
    def hook(a, hook):
        a = a.clone()
        a[..., neuron] = scale
        return a
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", hook)])


SCALE_NEURON = Exercise(
    id="w03_scale_neuron",
    title="scale_neuron",
    reference=ffn_memories.scale_neuron,
    cases=_neuron_cases,
    mistakes=[
        Mistake("whole layer", _scale_layer, "you scaled every neuron of the layer; scale only the one neuron."),
        Mistake("last position only", _scale_last_position,
                "scale the neuron at every position (hook_post is [batch, pos, d_mlp]), not only at the last one: "
                "later positions read what it wrote earlier."),
        Mistake("scaled before the nonlinearity", _scale_pre,
                "scaling hook_pre changes the input of the GELU, not the neuron's activation; hook the activation itself."),
        Mistake("set instead of scaled", _set_to_scale,
                "multiply the neuron's activation by scale; do not overwrite it with scale."),
    ],
    hint="one hook on the layer's MLP activations that changes a single neuron's entries at every position, then the logits.",
    atol=1e-3,
)


def check_scale_neuron(fn, seed: int | None = None) -> bool:
    """Check ``scale_neuron(model, tokens, layer, neuron, scale) -> logits [batch, pos, d_vocab]``."""
    return check(SCALE_NEURON, fn, seed)


# -- 8. a neuron's direct effect on the logits (★★★) ----------------------------------------------
def _de_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    m = _model()
    out = []
    for i in range(2):
        L = int(torch.randint(0, m.cfg.n_layers, (1,), generator=g))
        n = int(torch.randint(0, m.cfg.d_mlp, (1,), generator=g))
        out.append(Case(f"seed {seed}, neuron {L}.{n}", {"model": m, "tokens": _tokens(seed * 7 + i, 3, 16), "layer": L, "neuron": n}))
    return out


def _de_parts(model, tokens, layer, neuron):
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in {f"blocks.{layer}.mlp.hook_post", "ln_final.hook_scale"})
    return cache[f"blocks.{layer}.mlp.hook_post"][..., neuron], cache["ln_final.hook_scale"]


def _de_no_ln(model, tokens, layer, neuron):
    act, scale = _de_parts(model, tokens, layer, neuron)
    return (act[..., None] / scale) * (model.W_out[layer, neuron] @ model.W_U)


def _de_no_scale(model, tokens, layer, neuron):
    act, scale = _de_parts(model, tokens, layer, neuron)
    return act[..., None] * ffn_memories.value_vocab(model, layer, neuron)


def _de_key(model, tokens, layer, neuron):
    act, scale = _de_parts(model, tokens, layer, neuron)
    v = model.W_in[layer][:, neuron]
    sd = model.state_dict()
    return (act[..., None] / scale) * ffn_memories.value_logits(v, sd["ln_final.weight"], model.W_U)


def _de_ablation(model, tokens, layer, neuron):
    return model(tokens) - ffn_memories.scale_neuron(model, tokens, layer, neuron, 0.0)


DIRECT_EFFECT = Exercise(
    id="w03_neuron_direct_effect",
    title="neuron_direct_effect",
    reference=ffn_memories.neuron_direct_effect,
    cases=_de_cases,
    mistakes=[
        Mistake("LayerNorm weight left out", _de_no_ln,
                "between the residual stream and W_U the final LayerNorm centres the vector and multiplies each "
                "dimension by its weight: project the value through both (your value_logits)."),
        Mistake("no division by the LayerNorm scale", _de_no_scale,
                "the final LayerNorm divides each position's residual stream by its own scale (ln_final.hook_scale); "
                "the neuron's contribution is divided by it too."),
        Mistake("the key, not the value", _de_key,
                "W_in[:, neuron] is the neuron's key (what it reads); what it writes is its value, W_out[neuron]."),
        Mistake("measured the ablation", _de_ablation,
                "that is the total effect of ablating the neuron (LayerNorm rescaling and later layers included); "
                "the direct effect is computed from one clean run: activation x value, through the final LayerNorm."),
    ],
    hint="you need the neuron's activation at every position and the final LayerNorm's scale there, from one cached "
         "run; combine them with the value's projection to the vocabulary.",
    atol=1e-3,
)


def check_neuron_direct_effect(fn, seed: int | None = None) -> bool:
    """Check ``neuron_direct_effect(model, tokens, layer, neuron) -> [batch, pos, d_vocab]``."""
    return check(DIRECT_EFFECT, fn, seed)


EXERCISES = {ex.id: ex for ex in [LOGIT_LENS, TOP1_AGREEMENT, TOP_ACTIVATIONS, MODE_SHARE, VALUE_LOGITS,
                                  VALUE_KEY_AGREEMENT, SCALE_NEURON, DIRECT_EFFECT]}
