"""Checkers for week 03: FFN layers as key-value memories; logit lens; tuned lens.

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

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
    hint="x = resid - mean; x = x / sqrt(mean(x**2) + 1e-5); logits = (x * w_ln + b_ln) @ W_U + b_U (means over the last dim).",
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
    hint="compare lens_logits.argmax(-1) [layers, batch, pos] with final_logits.argmax(-1) [batch, pos] and average over batch and pos.",
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
    hint="top = value_logits.argmax(-1); agree = (trigger_next == top[:, None]).any(-1); return the mean of agree as a float.",
)


def check_agreement_rate(fn, seed: int | None = None) -> bool:
    """Check ``agreement_rate(value_logits, trigger_next) -> float``."""
    return check(VALUE_KEY_AGREEMENT, fn, seed)


EXERCISES = {ex.id: ex for ex in [LOGIT_LENS, TOP1_AGREEMENT, VALUE_KEY_AGREEMENT]}
