"""Checkers for week 05: the causal toolbox on indirect object identification (IOI).

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.data import ioi
from mi_course.methods import activation_patching as ap
from mi_course.methods import attribution_patching as atp
from mi_course.methods import logit_attribution as la
from mi_course.methods import metrics
from mi_course.methods.circuit_evaluation import CircuitEvaluator
from mi_course.methods.components import head


@lru_cache(maxsize=1)
def _model():
    from mi_course import zoo

    return zoo.load("ioi-lm")


def _pair(seed: int, n: int = 6, template: int | None = None):
    g = torch.Generator().manual_seed(seed)
    t = int(torch.randint(0, len(ioi.TRAIN_TEMPLATES), (1,), generator=g)) if template is None else template
    ds = ioi.make_ioi(n, seed=seed, templates=t)
    return ds, ds.abc(seed=seed + 1)


# -- 1. logit difference ------------------------------------------------------------------------
def logit_difference(logits, io, s, end):
    """Mean of ``logits[i, end[i], io[i]] - logits[i, end[i], s[i]]`` over prompts."""
    return metrics.logit_diff(logits, io, s, end)


def _ld_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, p, v in [(3, 6, 10), (8, 12, 40)]:
        logits = torch.randn(b, p, v, generator=g) * 3
        io = torch.randint(0, v, (b,), generator=g)
        s = (io + torch.randint(1, v, (b,), generator=g)) % v
        end = torch.randint(p // 2, p - 1, (b,), generator=g)  # padded prompts: not always the last position
        out.append(Case(f"seed {seed}, batch={b} pos={p} vocab={v}", {"logits": logits, "io": io, "s": s, "end": end}))
    return out


LOGIT_DIFF = Exercise(
    id="w05_logit_difference",
    title="logit_difference",
    reference=logit_difference,
    cases=_ld_cases,
    mistakes=[
        Mistake("last position", lambda logits, io, s, end: metrics.logit_diff(logits, io, s, None),
                "you read the logits at the last position; prompts are padded, so use each prompt's `end` position."),
        Mistake("sign flipped", lambda logits, io, s, end: -metrics.logit_diff(logits, io, s, end),
                "the sign is flipped: it is logit(IO) - logit(S), positive when the model prefers the indirect object."),
        Mistake("summed over prompts", lambda logits, io, s, end: metrics.logit_diff(logits, io, s, end) * len(io),
                "average over the prompts (mean), do not sum."),
        Mistake("first prompt's answers", lambda logits, io, s, end: metrics.logit_diff(
            logits, io[:1].expand_as(io), s[:1].expand_as(s), end),
                "each prompt has its own IO and S: index row i with io[i] and s[i] (torch.arange for the rows)."),
    ],
    hint="pick rows with torch.arange(batch), the position end[i], and the columns io[i] and s[i]; then .mean().",
)


def check_logit_difference(fn, seed: int | None = None) -> bool:
    """Check ``logit_difference(logits, io, s, end) -> scalar``."""
    return check(LOGIT_DIFF, fn, seed)


# -- 2. direct logit attribution ----------------------------------------------------------------
def _dla_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for c, b, d in [(4, 3, 8), (13, 10, 64)]:
        out.append(Case(f"seed {seed}, components={c} batch={b} d_model={d}", {
            "resid_stack": torch.randn(c, b, d, generator=g), "directions": torch.randn(b, d, generator=g)}))
    return out


DLA = Exercise(
    id="w05_direct_logit_attribution",
    title="direct_logit_attribution",
    reference=la.dla,
    cases=_dla_cases,
    mistakes=[
        Mistake("one direction for all", lambda resid_stack, directions: (resid_stack @ directions[0]).mean(-1),
                "every prompt has its own logit-difference direction (its own IO and S): pair prompt b's "
                "component with directions[b], e.g. einsum('cbd,bd->cb', ...)."),
        Mistake("summed over batch", lambda resid_stack, directions: la.dla(resid_stack, directions) * directions.shape[0],
                "average over the batch, do not sum."),
        Mistake("all pairs of prompts", lambda resid_stack, directions: (resid_stack @ directions.T).mean((1, 2)),
                "you dotted every prompt's component with every prompt's direction; only matching pairs (b with b) count."),
    ],
    hint="for each component: mean over b of resid_stack[c, b] . directions[b].",
)


def check_direct_logit_attribution(fn, seed: int | None = None) -> bool:
    """Check ``direct_logit_attribution(resid_stack, directions) -> [component]``."""
    return check(DLA, fn, seed)


# -- 3. residual-stream activation patching ----------------------------------------------------
def _patch_cases(seed: int) -> list[Case]:
    ds, abc = _pair(seed)
    return [Case(f"seed {seed}, template {ds.template_ids[0]}, {len(ds)} prompts", {
        "model": _model(), "clean_tokens": ds.tokens, "corrupted_tokens": abc.tokens,
        "metric": metrics.ioi_metric(ds)})]


def patch_residual_stream(model, clean_tokens, corrupted_tokens, metric):
    """``[layer, pos]``: metric of the corrupted run with the clean resid_pre patched in at (layer, pos)."""
    return ap.activation_patching(model, clean_tokens, corrupted_tokens, metric, "resid_pre", by_pos=True,
                                  progress=False)


RESID_PATCH = Exercise(
    id="w05_patch_residual_stream",
    title="patch_residual_stream",
    reference=patch_residual_stream,
    cases=_patch_cases,
    mistakes=[
        Mistake("wrong direction", lambda model, clean_tokens, corrupted_tokens, metric: ap.activation_patching(
            model, clean_tokens, corrupted_tokens, metric, "resid_pre", True, direction="noise", progress=False),
                "you ran the clean prompts and patched in corrupted activations. Here we *denoise*: run the corrupted "
                "prompts and patch the clean activation in."),
        Mistake("all positions", lambda model, clean_tokens, corrupted_tokens, metric: ap.activation_patching(
            model, clean_tokens, corrupted_tokens, metric, "resid_pre", False, progress=False)[:, None].expand(
                -1, clean_tokens.shape[1]).clone(),
                "every position in a row has the same value: patch only position `pos` (act[:, pos]), not the whole layer."),
    ],
    hint="for each layer and position: a hook on blocks.{layer}.hook_resid_pre that copies the clean value at "
         "[:, pos] into the corrupted run; store metric(logits).",
    atol=1e-4,
)


def check_patch_residual_stream(fn, seed: int | None = None) -> bool:
    """Check ``patch_residual_stream(model, clean_tokens, corrupted_tokens, metric) -> [layer, pos]``."""
    return check(RESID_PATCH, fn, seed)


# -- 4. head activation patching ---------------------------------------------------------------
def patch_head_outputs(model, clean_tokens, corrupted_tokens, metric):
    """``[layer, head]``: metric of the corrupted run with one head's clean output (z) patched in."""
    return ap.activation_patching(model, clean_tokens, corrupted_tokens, metric, "z", by_pos=False, progress=False)


def _z_wrong_index(model, clean_tokens, corrupted_tokens, metric):
    _, cache = model.run_with_cache(clean_tokens, names_filter=lambda n: n.endswith("hook_z"))
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            name = f"blocks.{layer}.attn.hook_z"

            def hook(z, hook, name=name, h=h):
                z = z.clone()
                z[:, h] = cache[name][:, h]
                return z

            with torch.no_grad():
                out[layer, h] = metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(name, hook)]))
    return out


HEAD_PATCH = Exercise(
    id="w05_patch_head_outputs",
    title="patch_head_outputs",
    reference=patch_head_outputs,
    cases=_patch_cases,
    mistakes=[
        Mistake("indexed positions", _z_wrong_index,
                "hook_z is [batch, pos, head, d_head]: the head is the third index (z[:, :, h]), you patched a position."),
        Mistake("wrong direction", lambda model, clean_tokens, corrupted_tokens, metric: ap.activation_patching(
            model, clean_tokens, corrupted_tokens, metric, "z", False, direction="noise", progress=False),
                "run the corrupted prompts and patch the clean head output in (denoising), not the other way round."),
    ],
    hint="hook blocks.{layer}.attn.hook_z on the corrupted run and copy the clean z[:, :, head].",
    atol=1e-4,
)


def check_patch_head_outputs(fn, seed: int | None = None) -> bool:
    """Check ``patch_head_outputs(model, clean_tokens, corrupted_tokens, metric) -> [layer, head]``."""
    return check(HEAD_PATCH, fn, seed)


# -- 5. attribution patching -------------------------------------------------------------------
def attribution_scores(clean_z, corrupted_z, corrupted_grad):
    """AtP per head: ``sum over batch, pos, d_head of (clean - corrupted) * grad`` -> ``[layer, head]``.

    All inputs ``[layer, batch, pos, head, d_head]``; the gradient is of the metric at the corrupted run.
    """
    return atp.head_attributions(clean_z, corrupted_z, corrupted_grad)


def _atp_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for L, b, p, h, d in [(2, 2, 3, 2, 4), (3, 5, 7, 4, 8)]:
        shape = (L, b, p, h, d)
        out.append(Case(f"seed {seed}, shape {list(shape)}", {
            "clean_z": torch.randn(*shape, generator=g), "corrupted_z": torch.randn(*shape, generator=g),
            "corrupted_grad": torch.randn(*shape, generator=g)}))
    return out


ATP = Exercise(
    id="w05_attribution_scores",
    title="attribution_scores",
    reference=attribution_scores,
    cases=_atp_cases,
    mistakes=[
        Mistake("difference reversed", lambda clean_z, corrupted_z, corrupted_grad: atp.head_attributions(
            corrupted_z, clean_z, corrupted_grad),
                "the patch moves the activation from corrupted to clean: multiply (clean - corrupted) by the gradient."),
        Mistake("gradient only", lambda clean_z, corrupted_z, corrupted_grad: corrupted_grad.sum((1, 2, 4)),
                "the gradient alone says how sensitive the metric is, not how much the patch changes it: multiply "
                "by the change of the activation (clean - corrupted)."),
        Mistake("mean instead of sum", lambda clean_z, corrupted_z, corrupted_grad: (
            (clean_z - corrupted_z) * corrupted_grad).mean((1, 2, 4)),
                "a first-order Taylor estimate sums the products over every entry (batch, positions, d_head); do not average."),
    ],
    hint="(clean_z - corrupted_z) * corrupted_grad, summed over dims 1, 2 and 4 (batch, pos, d_head).",
)


def check_attribution_scores(fn, seed: int | None = None) -> bool:
    """Check ``attribution_scores(clean_z, corrupted_z, corrupted_grad) -> [layer, head]``."""
    return check(ATP, fn, seed)


# -- 6. faithfulness ---------------------------------------------------------------------------
def circuit_metric(model, tokens, reference_tokens, metric, circuit):
    """F(C): the metric with every head *not* in ``circuit`` mean-ablated over ``reference_tokens``."""
    return CircuitEvaluator(model, tokens, reference_tokens, metric).F(circuit)


def _circuit_cases(seed: int) -> list[Case]:
    ds, abc = _pair(seed, n=8)
    model = _model()
    g = torch.Generator().manual_seed(seed)
    L, H = model.cfg.n_layers, model.cfg.n_heads
    k = int(torch.randint(2, L * H // 2, (1,), generator=g))
    pick = torch.randperm(L * H, generator=g)[:k].tolist()
    circuit = [head(i // H, i % H) for i in sorted(pick)]
    return [Case(f"seed {seed}, {k} heads in the circuit", {"model": model, "tokens": ds.tokens,
                 "reference_tokens": abc.tokens, "metric": metrics.ioi_metric(ds), "circuit": circuit})]


def _f_zero(model, tokens, reference_tokens, metric, circuit):
    from mi_course.methods.ablation import ablate
    from mi_course.methods.components import all_heads

    keep = {(c.layer, c.index) for c in circuit}
    drop = [c for c in all_heads(model) if (c.layer, c.index) not in keep]
    return float(metric(ablate(model, tokens, drop, "zero")))


def _f_inverted(model, tokens, reference_tokens, metric, circuit):
    from mi_course.methods.components import all_heads

    keep = {(c.layer, c.index) for c in circuit}
    return CircuitEvaluator(model, tokens, reference_tokens, metric).F(
        [c for c in all_heads(model) if (c.layer, c.index) not in keep])


def _f_global_mean(model, tokens, reference_tokens, metric, circuit):
    from mi_course.methods.components import all_heads

    keep = {(c.layer, c.index) for c in circuit}
    _, cache = model.run_with_cache(reference_tokens, names_filter=lambda n: n.endswith("hook_z"))
    hooks = []
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_z"
        mean = cache[name].mean((0, 1))  # [head, d_head]: over prompts *and positions*
        heads = [h for h in range(model.cfg.n_heads) if (layer, h) not in keep]

        def hook(z, hook, heads=heads, mean=mean):
            z = z.clone()
            for h in heads:
                z[:, :, h] = mean[h]
            return z

        hooks.append((name, hook))
    with torch.no_grad():
        return float(metric(model.run_with_hooks(tokens, fwd_hooks=hooks)))


FAITHFULNESS = Exercise(
    id="w05_circuit_metric",
    title="circuit_metric",
    reference=circuit_metric,
    cases=_circuit_cases,
    mistakes=[
        Mistake("zero ablation", _f_zero,
                "you zero-ablated the heads outside the circuit; the IOI paper mean-ablates them over the reference "
                "(ABC) prompts, which keeps their task-independent average output."),
        Mistake("ablated the circuit", _f_inverted,
                "you knocked out the circuit and kept the rest: F(C) keeps the circuit's heads and mean-ablates all others."),
        Mistake("mean over positions", _f_global_mean,
                "take the mean over the reference prompts separately at each position (mean over dim 0 only), "
                "not over positions as well."),
    ],
    hint="cache hook_z on reference_tokens, average over the batch (per position), and in the run on `tokens` "
         "overwrite z[:, :, h] of every head not in the circuit with that mean.",
    atol=1e-4,
)


def check_circuit_metric(fn, seed: int | None = None) -> bool:
    """Check ``circuit_metric(model, tokens, reference_tokens, metric, circuit) -> float``."""
    return check(FAITHFULNESS, fn, seed)


EXERCISES = {ex.id: ex for ex in [LOGIT_DIFF, DLA, RESID_PATCH, HEAD_PATCH, ATP, FAITHFULNESS]}
