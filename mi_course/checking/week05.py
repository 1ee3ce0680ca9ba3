"""Checkers for week 05: the causal toolbox on indirect object identification (IOI).

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.data import ioi
from mi_course.methods import acdc, ioi_circuit
from mi_course.methods import activation_patching as ap
from mi_course.methods import attribution_patching as atp
from mi_course.methods import logit_attribution as la
from mi_course.methods import metrics
from mi_course.methods import path_patching as pp
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
    hint="each prompt contributes one IO logit minus one S logit, both read at that prompt's own end position; "
         "advanced indexing (one index tensor per dimension) picks them for all prompts at once. Return their mean.",
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
    hint="a component's score is how far its contribution points along each prompt's own logit-difference "
         "direction, averaged over the prompts: one number per component (torch.einsum does all at once).",
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
    hint="entry [layer, pos] is the metric of a corrupted run in which only the residual stream entering that layer "
         "(blocks.{layer}.hook_resid_pre), at that one position, takes its value from the clean run.",
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
    hint="as in residual patching, but one head at a time: in the corrupted run only that head's output "
         "(its slice of blocks.{layer}.attn.hook_z) takes its clean value.",
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
    hint="attribution patching is a first-order Taylor estimate: the change in the activation times the gradient at "
         "the corrupted run, summed over every axis except layer and head.",
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
    out = []
    # the second case keeps only layer-2 heads: every earlier head is ablated at every position,
    # which an answer that ablates only the last position cannot imitate
    for kind in ("random", "last layer"):
        if kind == "random":
            k = int(torch.randint(2, L * H // 2, (1,), generator=g))
            pick = sorted(torch.randperm(L * H, generator=g)[:k].tolist())
        else:
            k = int(torch.randint(1, H + 1, (1,), generator=g))
            pick = sorted(((L - 1) * H + torch.randperm(H, generator=g)[:k]).tolist())
        circuit = [head(i // H, i % H) for i in pick]
        out.append(Case(f"seed {seed}, {kind}: {k} heads in the circuit", {
            "model": model, "tokens": ds.tokens, "reference_tokens": abc.tokens, "metric": metrics.ioi_metric(ds),
            "circuit": circuit}))
    return out


def _f_last_position(model, tokens, reference_tokens, metric, circuit):
    keep = {(c.layer, c.index) for c in circuit}
    _, cache = model.run_with_cache(reference_tokens, names_filter=lambda n: n.endswith("hook_z"))
    hooks = []
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_z"
        mean = cache[name].mean(0)
        heads = [h for h in range(model.cfg.n_heads) if (layer, h) not in keep]

        def hook(z, hook, heads=heads, mean=mean):
            z = z.clone()
            for h in heads:
                z[:, -1, h] = mean[-1, h]  # only the last position
            return z

        hooks.append((name, hook))
    with torch.no_grad():
        return float(metric(model.run_with_hooks(tokens, fwd_hooks=hooks)))


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
        Mistake("only the last position", _f_last_position,
                "mean-ablate the heads outside the circuit at *every* position (z[:, :, h]), not only where the "
                "answer is read: what they write at earlier positions reaches the answer through later layers."),
        Mistake("mean over positions", _f_global_mean,
                "take the mean over the reference prompts separately at each position (mean over dim 0 only), "
                "not over positions as well."),
    ],
    hint="mean-ablate every head outside the circuit: in one run on `tokens`, its output z is replaced by its mean "
         "over the reference prompts (one mean per position); circuit heads stay untouched.",
    atol=1e-4,
)


def check_circuit_metric(fn, seed: int | None = None) -> bool:
    """Check ``circuit_metric(model, tokens, reference_tokens, metric, circuit) -> float``."""
    return check(FAITHFULNESS, fn, seed)


# -- 7. path patching (the student's own) --------------------------------------------------------
def path_patch(model, clean_tokens, corrupted_tokens, metric, sender, receivers, receiver_input):
    """Metric of the clean run with only the path ``sender -> receivers`` corrupted (see
    :func:`mi_course.methods.path_patching.path_patching`); ``sender`` a ``(layer, head)``, ``receivers``
    ``"logits"`` or a list of ``(layer, head)``, ``receiver_input`` one of ``"q"``, ``"k"``, ``"v"``."""
    return float(pp.path_patching(model, clean_tokens, corrupted_tokens, metric, [tuple(sender)], receivers,
                                  receiver_input))


def _pp_cases(seed: int) -> list[Case]:
    ds, abc = _pair(seed, n=8)
    model = _model()
    g = torch.Generator().manual_seed(seed)
    H = model.cfg.n_heads
    out = []
    layer = int(torch.randint(0, 2, (1,), generator=g))
    sender = (layer, int(torch.randint(0, H, (1,), generator=g)))
    out.append(Case(f"seed {seed}, sender {sender[0]}.{sender[1]} -> logits", {
        "model": model, "clean_tokens": ds.tokens, "corrupted_tokens": abc.tokens, "metric": metrics.ioi_metric(ds),
        "sender": sender, "receivers": "logits", "receiver_input": "q"}))
    sender = (0, int(torch.randint(0, H, (1,), generator=g)))
    r_layer = int(torch.randint(1, 3, (1,), generator=g))
    recv = [(r_layer, h) for h in sorted(torch.randperm(H, generator=g)[:2].tolist())]
    x = "qkv"[int(torch.randint(0, 3, (1,), generator=g))]
    out.append(Case(f"seed {seed}, sender 0.{sender[1]} -> {[f'{a}.{b}' for a, b in recv]} {x}", {
        "model": model, "clean_tokens": ds.tokens, "corrupted_tokens": abc.tokens, "metric": metrics.ioi_metric(ds),
        "sender": sender, "receivers": recv, "receiver_input": x}))
    return out


@torch.no_grad()
def _pp_unfrozen(model, clean_tokens, corrupted_tokens, metric, sender, receivers, receiver_input):
    """Corrupts the sender but lets every other head recompute: the path through them leaks in."""
    L, H = sender
    name = f"blocks.{L}.attn.hook_z"
    _, cc = model.run_with_cache(corrupted_tokens, names_filter=lambda n: n == name)

    def hs(z, hook):
        z = z.clone()
        z[:, :, H] = cc[name][:, :, H]
        return z

    if receivers == "logits":
        return float(metric(model.run_with_hooks(clean_tokens, fwd_hooks=[(name, hs)])))
    names = sorted({f"blocks.{r[0]}.attn.hook_{receiver_input}" for r in receivers})
    store = {}
    rec = [(n, lambda a, hook, n=n: store.__setitem__(n, a.clone())) for n in names]
    model.run_with_hooks(clean_tokens, fwd_hooks=[(name, hs)] + rec)
    patch = []
    for n in names:
        heads = [r[1] for r in receivers if f"blocks.{r[0]}.attn.hook_{receiver_input}" == n]

        def hr(a, hook, n=n, heads=heads):
            a = a.clone()
            for h in heads:
                a[:, :, h] = store[n][:, :, h]
            return a

        patch.append((n, hr))
    return float(metric(model.run_with_hooks(clean_tokens, fwd_hooks=patch)))


@torch.no_grad()
def _pp_total(model, clean_tokens, corrupted_tokens, metric, sender, receivers, receiver_input):
    """The sender's whole effect (activation patching, noising), not the path's."""
    return float(pp.path_patching(model, clean_tokens, corrupted_tokens, metric, [tuple(sender)], "logits")
                 if receivers == "logits" else _pp_unfrozen(model, clean_tokens, corrupted_tokens, metric,
                                                            sender, "logits", receiver_input))


@torch.no_grad()
def _pp_denoise(model, clean_tokens, corrupted_tokens, metric, sender, receivers, receiver_input):
    return float(pp.path_patching(model, corrupted_tokens, clean_tokens, metric, [tuple(sender)], receivers,
                                  receiver_input))


PATH_PATCH = Exercise(
    id="w05_path_patch",
    title="path_patch",
    reference=path_patch,
    cases=_pp_cases,
    mistakes=[
        Mistake("other heads not frozen", _pp_unfrozen,
                "in the first run only the sender may differ from the clean run: freeze every *other* head's z at "
                "its clean value, or the sender's effect also reaches the receivers through the heads in between."),
        Mistake("whole effect", _pp_total,
                "you measured the sender's whole effect on the metric; path patching then records the receivers' "
                "inputs in that run and patches *only those* into a fresh clean run."),
        Mistake("denoising", _pp_denoise,
                "path patching here runs the *clean* prompts and brings in the sender's output from the corrupted "
                "run (noising), not the other way round."),
    ],
    hint="only the sender -> receiver path may carry the corruption: every other head must be frozen at its clean "
         "output, so the sender's change reaches the receivers directly and not through heads in between. What "
         "the receivers then read (their receiver_input) is all that changes in the final clean run.",
    atol=1e-4,
)


def check_path_patch(fn, seed: int | None = None) -> bool:
    """Check ``path_patch(model, clean_tokens, corrupted_tokens, metric, sender, receivers, receiver_input)``."""
    return check(PATH_PATCH, fn, seed)


# -- 8. copying scores ---------------------------------------------------------------------------
def _copy_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, d, h, k in [(12, 8, 3, 3), (30, 16, 4, int(torch.randint(2, 6, (1,), generator=g)))]:
        resid = torch.randn(n, d, generator=g)
        W_U = torch.randn(d, n, generator=g)
        # some heads copy (OV ~ W_U's pseudo-inverse direction), some do not
        copy = torch.linalg.pinv(resid) @ torch.eye(n) @ torch.linalg.pinv(W_U)
        W_OV = torch.stack([copy * torch.rand(1, generator=g) + torch.randn(d, d, generator=g) * 0.3 * (i + 1)
                            for i in range(h)])
        out.append(Case(f"seed {seed}, {n} names, {h} heads, k={k}", {"resid": resid, "W_OV": W_OV, "W_U": W_U, "k": k}))
    return out


def _copy_transposed(resid, W_OV, W_U, k=1):
    logits = torch.einsum("nd,hde,em->hnm", resid, W_OV, W_U)
    top = logits.topk(int(k), dim=1).indices  # ranks the readers, not the written names
    return (top == torch.arange(resid.shape[0])[None, None, :]).any(1).float().mean(-1)


COPYING = Exercise(
    id="w05_copying_scores",
    title="copying_scores",
    reference=ioi_circuit.copying_scores,
    cases=_copy_cases,
    mistakes=[
        Mistake("top-1 only", lambda resid, W_OV, W_U, k=1: ioi_circuit.copying_scores(resid, W_OV, W_U, 1),
                "a name counts when its own logit is among the k largest of its row, not only when it is the largest: use k."),
        Mistake("ranked the wrong axis", _copy_transposed,
                "rank the names the head *writes* (the last axis of resid @ W_OV @ W_U): row i is what the head "
                "writes when it reads name i."),
        Mistake("without the OV circuit", lambda resid, W_OV, W_U, k=1: ioi_circuit.copying_scores(
            resid, torch.eye(resid.shape[1]).expand_as(W_OV), W_U, k),
                "the head's output is resid @ W_OV[h] (then @ W_U): the score is about what each head copies."),
    ],
    hint="for each head, push every row of resid through the head's OV circuit and the unembedding; a row copies "
         "when its own index is among its k largest logits. The score is the share of rows that copy.",
)


def check_copying_scores(fn, seed: int | None = None) -> bool:
    """Check ``copying_scores(resid, W_OV, W_U, k) -> [n_heads]``."""
    return check(COPYING, fn, seed)


# -- 9. ACDC's pruning loop ----------------------------------------------------------------------
N_ACDC = 8


def _edge_index(cut) -> torch.Tensor:
    """A set of edges ("n{i}", "n{j}") -> a 0/1 tensor over the N x N possible edges."""
    if not isinstance(cut, (set, frozenset, list, tuple)) or not all(
            isinstance(e, tuple) and len(e) == 2 and all(isinstance(x, str) and x[1:].isdigit() for x in e) for e in cut):
        return cut  # not a set of edges: the comparison says what it is
    out = torch.zeros(N_ACDC * N_ACDC)
    for u, d in cut:
        out[int(u[1:]) * N_ACDC + int(d[1:])] = 1
    return out


class _Score:
    """A distance from the full model for a set of cut edges: a weight per edge plus penalties for
    pairs that only matter together (the non-additivity ACDC has to cope with)."""

    def __init__(self, weights: dict, pairs: list, bonus: float):
        self.weights, self.pairs, self.bonus = weights, pairs, bonus

    def __call__(self, cut) -> float:
        cut = set(cut)
        return 0.05 + sum(self.weights[e] for e in cut) + self.bonus * sum(a in cut and b in cut for a, b in self.pairs)


def _acdc_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n_edges in (10, 20):
        edges = []
        while len(edges) < n_edges:
            i, j = sorted(torch.randint(0, N_ACDC, (2,), generator=g).tolist())
            if i < j and ("n%d" % i, "n%d" % j) not in edges:
                edges.append((f"n{i}", f"n{j}"))
        w = torch.rand(n_edges, generator=g).pow(3) * 0.2
        weights = {e: float(x) for e, x in zip(edges, w)}
        pairs = [(edges[a], edges[b]) for a, b in torch.randint(0, n_edges, (n_edges // 3, 2), generator=g).tolist() if a != b]
        threshold = float(0.01 + torch.rand(1, generator=g) * 0.04)
        out.append(Case(f"seed {seed}, {n_edges} edges, threshold {threshold:.3f}", {
            "edges": edges, "score": _Score(weights, pairs, 0.05), "threshold": threshold}))
    return out


def _acdc_vs_full(edges, score, threshold):
    cut, base = set(), float(score(set()))
    for e in edges:
        if float(score(cut | {e})) - base < threshold:
            cut.add(e)
    return cut


def _acdc_alone(edges, score, threshold):
    base = float(score(set()))
    return {e for e in edges if float(score({e})) - base < threshold}


def _acdc_flipped(edges, score, threshold):
    cut, current = set(), float(score(set()))
    for e in edges:
        trial = float(score(cut | {e}))
        if trial - current >= threshold:
            cut.add(e)
            current = trial
    return cut


ACDC_LOOP = Exercise(
    id="w05_acdc_prune",
    title="acdc_prune",
    reference=acdc.acdc_loop,
    cases=_acdc_cases,
    normalize=_edge_index,
    mistakes=[
        Mistake("compared with the full model", _acdc_vs_full,
                "compare each trial with the graph as it is *now* (the edges cut so far), not with the full model: "
                "keep a running `current` score and update it when you keep a cut."),
        Mistake("each edge alone", _acdc_alone,
                "ACDC is greedy and cumulative: test each edge with every edge cut so far still cut (cut | {edge}), "
                "not each edge on its own."),
        Mistake("kept the important edges cut", _acdc_flipped,
                "an edge stays cut when cutting it changes the score by *less* than the threshold; edges that matter stay."),
    ],
    hint="keep the edges cut so far and the score of that graph; each trial cuts one more edge on top of them, and "
         "is compared with the current graph's score (which changes whenever a cut is kept), not the full model's.",
)


def check_acdc_prune(fn, seed: int | None = None) -> bool:
    """Check ``acdc_prune(edges, score, threshold) -> set of cut edges``."""
    return check(ACDC_LOOP, fn, seed)


EXERCISES = {ex.id: ex for ex in [LOGIT_DIFF, DLA, RESID_PATCH, HEAD_PATCH, ATP, FAITHFULNESS, PATH_PATCH, COPYING,
                                  ACDC_LOOP]}
