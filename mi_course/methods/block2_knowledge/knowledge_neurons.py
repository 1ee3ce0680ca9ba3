"""Knowledge neurons (Dai et al. 2022, *Knowledge Neurons in Pretrained Transformers*), with the checks
of Niu et al. 2024 (*What does the knowledge neuron thesis have to do with knowledge?*).

A *neuron* is one hidden unit of an MLP: entry ``i`` of ``blocks.L.mlp.hook_post`` (after the
non-linearity, the input to ``W_out``), at the prompt's **last token**, where the next token (the
object) is predicted. The method:

1. **Integrated gradients** (paper eq. 3-4). For a prompt and target object, scale one layer's
   neurons at the last token from 0 to their value ``w̄``, ``α w̄`` with ``α = k / m`` for
   ``k = 1 .. m`` (a right Riemann sum, ``m = 20`` as in the paper), and sum the gradients of
   ``P(object)``::

       Attr_i = w̄_i / m · Σ_k ∂P(object | α_k w̄) / ∂w_i

   All ``m`` scaled copies of the prompt go through the model in one batch (one forward and one
   backward per layer).
2. **Refinement**: per prompt keep the neurons whose attribution exceeds ``t × max`` (the maximum
   over all layers' neurons for that prompt, ``t = 0.2``); then keep the neurons kept for at least a
   fraction ``p`` of the fact's paraphrase prompts. What survives are the fact's *knowledge neurons*.
3. **Suppress / amplify**: set the found neurons to 0 (suppress) or double them (amplify) at the
   last token, and measure the relative change of ``P(correct)`` on the fact's own prompts vs on
   other facts' prompts; a baseline draws random neurons (same count, same layers).
4. **Knowledge-neuron edit** (the paper's "updating facts"): each found neuron's *value vector*
   (its row of ``W_out``) loses the old object's direction and gains the new one's::

       W_out[L, i] += scale · ‖W_out[L, i]‖ · (e_new − e_old)

   with ``e`` the unit-norm unembedding column of the object (``W_U[:, token]``; the paper adds
   the word embeddings of a BERT whose input and output embeddings are tied). The edit is an
   :class:`mi_course.methods.rome.Edit` per layer, applied through hooks (:func:`kn_edit_hooks`),
   so it can be scored with :mod:`mi_course.methods.edit_evaluation` beside ROME.

>>> prompts = [t.format("Nado Puzelu") for t in kb.templates("birth_city")]
>>> res = knowledge_neurons(model, prompts, "Pebruku")
>>> res.neurons                        # [(layer, neuron), ...]
>>> before, after, top1 = intervention_probs(model, prompts, "Pebruku", res.neurons, factor=0.0)
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from mi_course.errors import InputError
from mi_course.methods.causal_tracing import _tokens, check_layer, check_model, target_token
from mi_course.methods.rome import Edit, edit_hooks
from mi_course.zoo import hooks as hk

__all__ = ["STEPS", "THRESHOLD", "SHARE", "KnResult", "pad_prompts", "layer_attribution", "attributions",
           "coarse_neurons", "refine", "knowledge_neurons", "scaling_hooks", "intervention_probs",
           "relative_change", "random_neurons", "kn_edit", "kn_edit_hooks", "kn_edited", "layer_histogram",
           "neuron_activations"]

STEPS = 20  #: m, the paper's number of Riemann steps
THRESHOLD = 0.2  #: t: keep neurons above t x the prompt's largest attribution (the paper's value)
SHARE = 0.5  #: p: keep neurons found for at least this share of the fact's prompts

Neuron = tuple[int, int]  # (layer, index)


@dataclass
class KnResult:
    """The knowledge neurons of one fact.

    ``neurons``: sorted ``[(layer, neuron)]``; ``attributions``: ``[n_prompts, n_layers, d_mlp]``;
    ``coarse``: the per-prompt neurons above the threshold, ``[n_prompts, n_layers, d_mlp]`` (bool);
    ``prompts``, ``target`` (token id), ``t``, ``p``.
    """

    neurons: list[Neuron]
    attributions: torch.Tensor
    coarse: torch.Tensor
    prompts: list[str]
    target: int
    t: float = THRESHOLD
    p: float = SHARE
    info: dict = field(default_factory=dict)


# -- input checks -------------------------------------------------------------------------------
def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise InputError("prompts must be a non-empty list of non-empty strings (each ends where the object comes next)")
    return prompts


def _check_fraction(name: str, value, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    if not (0 < value <= 1 if low_open else 0 <= value <= 1):
        raise InputError(f"{name} must be in {'(0, 1]' if low_open else '[0, 1]'}, got {value!r}")
    return float(value)


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps (m, the number of Riemann steps) must be a positive int, got {steps!r}")
    return steps


def _check_neurons(model, neurons: Sequence[Neuron]) -> list[Neuron]:
    out = []
    for n in neurons:
        if not (isinstance(n, (tuple, list)) and len(n) == 2):
            raise InputError(f"a neuron is a (layer, index) pair, got {n!r}")
        L, i = int(n[0]), int(n[1])
        check_layer(model, L)
        if not 0 <= i < model.cfg.d_mlp:
            raise InputError(f"neuron index {i} is out of range: layer {L} has {model.cfg.d_mlp} neurons (0..{model.cfg.d_mlp - 1})")
        out.append((L, i))
    return out


def pad_prompts(model, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens [n, max_len], last [n])``: each prompt with BOS, right-padded with 0; ``last`` = its last token."""
    prompts = _check_prompts(prompts)
    seqs = [_tokens(model, p) for p in prompts]
    lens = torch.tensor([len(s) for s in seqs])
    toks = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long)
    for j, s in enumerate(seqs):
        toks[j, : len(s)] = s
    return toks.to(model.W_E.device), lens - 1


def _targets(model, targets, n: int) -> torch.Tensor:
    if isinstance(targets, (str, int, dict)) and not isinstance(targets, bool):
        targets = [targets] * n
    targets = [target_token(model, t) for t in targets]
    if len(targets) != n:
        raise InputError(f"got {len(targets)} targets for {n} prompts")
    return torch.tensor(targets)


# -- 1. integrated gradients --------------------------------------------------------------------
def layer_attribution(model, tokens: torch.Tensor, last: torch.Tensor, targets: torch.Tensor, layer: int,
                      steps: int = STEPS) -> torch.Tensor:
    """Integrated gradients of ``P(target)`` for every neuron of ``layer`` at each prompt's last token.

    tokens: ``[n, pos]`` (right-padded); last: ``[n]`` the last real position of each row; targets:
    ``[n]`` token ids. Runs the ``n × steps`` scaled copies in one batch: row ``(j, k)`` has
    ``blocks.{layer}.mlp.hook_post[last_j]`` replaced by ``(k / steps) · w̄_j`` (``k = 1..steps``).
    Returns ``[n, d_mlp]``: ``w̄ · mean over k of ∂P/∂w``.
    """
    check_model(model)
    check_layer(model, layer)
    steps = _check_steps(steps)
    name = hk.mlp_post(layer)
    n = tokens.shape[0]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda x: x == name)
        base = cache[name][torch.arange(n), last].float()  # [n, d_mlp]
    alphas = torch.arange(1, steps + 1, dtype=base.dtype, device=base.device) / steps  # [m]
    big = tokens.repeat_interleave(steps, 0)  # [n*m, pos]: prompt j's copies are rows j*m .. j*m+m-1
    rows = torch.arange(n * steps, device=tokens.device)
    pos = last.repeat_interleave(steps)
    tgt = targets.to(tokens.device).repeat_interleave(steps)
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            scaled = (alphas[None, :, None] * base[:, None, :]).reshape(n * steps, -1).clone().requires_grad_(True)

            def put(act, hook):
                act = act.clone()
                act[rows, pos] = scaled.to(act.dtype)
                return act
            logits = model.run_with_hooks(big, fwd_hooks=[(name, put)])
            prob = logits[rows, pos].float().softmax(-1)[rows, tgt]
            (grad,) = torch.autograd.grad(prob.sum(), scaled)
    finally:
        for p, f in zip(model.parameters(), frozen):
            p.requires_grad_(f)
    return base * grad.reshape(n, steps, -1).mean(1)


def attributions(model, prompts: Sequence[str], targets, layers: Sequence[int] | None = None,
                 steps: int = STEPS) -> torch.Tensor:
    """``[n_prompts, n_layers, d_mlp]``: :func:`layer_attribution` of each prompt's target at every layer
    (rows of layers not in ``layers`` are zero). ``targets``: one object (str / id) or one per prompt."""
    check_model(model)
    prompts = _check_prompts(prompts)
    tgt = _targets(model, targets, len(prompts))
    layers = list(range(model.cfg.n_layers)) if layers is None else [check_layer(model, int(x)) for x in layers]
    toks, last = pad_prompts(model, prompts)
    out = torch.zeros(len(prompts), model.cfg.n_layers, model.cfg.d_mlp)
    for L in layers:
        out[:, L] = layer_attribution(model, toks, last, tgt, L, steps).cpu()
    return out


# -- 2. refinement ------------------------------------------------------------------------------
def coarse_neurons(attr: torch.Tensor, t: float = THRESHOLD) -> torch.Tensor:
    """``attr [n_prompts, n_layers, d_mlp]`` -> bool, same shape: attribution > ``t`` × the prompt's
    largest attribution (over all layers). A prompt whose largest attribution is not positive keeps none."""
    if not isinstance(attr, torch.Tensor) or attr.dim() != 3:
        raise InputError(f"attr must be a [n_prompts, n_layers, d_mlp] tensor, got {getattr(attr, 'shape', type(attr))}")
    t = _check_fraction("t", t)
    top = attr.flatten(1).max(1).values[:, None, None]
    return (attr > t * top) & (top > 0)


def refine(attr: torch.Tensor, t: float = THRESHOLD, p: float = SHARE) -> list[Neuron]:
    """The fact's knowledge neurons: kept by :func:`coarse_neurons` for at least a share ``p`` of the
    prompts. ``attr``: ``[n_prompts, n_layers, d_mlp]``. Returns sorted ``[(layer, neuron)]``."""
    p = _check_fraction("p", p, low_open=True)
    keep = coarse_neurons(attr, t).float().mean(0) >= p - 1e-9  # [n_layers, d_mlp]
    return [(int(L), int(i)) for L, i in keep.nonzero().tolist()]


def knowledge_neurons(model, prompts: Sequence[str], target, t: float = THRESHOLD, p: float = SHARE,
                      steps: int = STEPS, layers: Sequence[int] | None = None) -> KnResult:
    """Integrated gradients over every layer's neurons for each of the fact's ``prompts`` (paraphrases
    whose next token is ``target``), then :func:`refine`."""
    prompts = _check_prompts(prompts)
    t = _check_fraction("t", t)
    p = _check_fraction("p", p, low_open=True)
    tid = target_token(model, target)
    attr = attributions(model, prompts, tid, layers, steps)
    return KnResult(refine(attr, t, p), attr, coarse_neurons(attr, t), prompts, tid, t, p)


# -- 3. suppress / amplify ----------------------------------------------------------------------
def scaling_hooks(neurons: Sequence[Neuron], factor: float, last: torch.Tensor | None = None) -> list[tuple[str, object]]:
    """Forward hooks multiplying each neuron's ``hook_post`` by ``factor`` (0: suppress, 2: amplify),
    at each row's ``last`` position (``[batch]``), or at every position when ``last`` is None."""
    by_layer: dict[int, list[int]] = {}
    for L, i in neurons:
        by_layer.setdefault(int(L), []).append(int(i))
    out = []
    for L, idx in by_layer.items():
        ids = torch.tensor(idx)

        def scale(act, hook, ids=ids):
            act = act.clone()
            if last is None:
                act[:, :, ids] = act[:, :, ids] * factor
            else:
                r = torch.arange(act.shape[0], device=act.device)
                sub = act[r, last.to(act.device)]
                sub[:, ids] = sub[:, ids] * factor
                act[r, last.to(act.device)] = sub
            return act
        out.append((hk.mlp_post(L), scale))
    return out


@torch.no_grad()
def intervention_probs(model, prompts: Sequence[str], targets, neurons: Sequence[Neuron],
                       factor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(P_before [n], P_after [n], top1_after [n])``: P(target) at each prompt's last token without and
    with ``neurons`` scaled by ``factor`` there, and the top-1 token after the intervention."""
    check_model(model)
    prompts = _check_prompts(prompts)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor != factor:
        raise InputError(f"factor must be a number (0 suppresses, 2 amplifies), got {factor!r}")
    neurons = _check_neurons(model, neurons)
    tgt = _targets(model, targets, len(prompts))
    toks, last = pad_prompts(model, prompts)
    r = torch.arange(len(prompts))
    before = model(toks)[r, last].float().softmax(-1)
    after = model.run_with_hooks(toks, fwd_hooks=scaling_hooks(neurons, factor, last))[r, last].float().softmax(-1)
    return before[r, tgt].cpu(), after[r, tgt].cpu(), after.argmax(-1).cpu()


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """The mean over prompts of ``(after − before) / before`` (the paper's "correct probability change")."""
    if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor) or before.shape != after.shape:
        raise InputError("before and after must be tensors of the same shape")
    if before.numel() == 0 or bool((before <= 0).any()):
        raise InputError("before must be non-empty probabilities > 0")
    return float(((after - before) / before).mean())


def random_neurons(neurons: Sequence[Neuron], d_mlp: int, seed: int = 0) -> list[Neuron]:
    """A baseline: as many random neurons as ``neurons`` in the same layers (per layer the same count),
    none of them among ``neurons``."""
    g = torch.Generator().manual_seed(seed)
    taken = {(int(L), int(i)) for L, i in neurons}
    count: dict[int, int] = {}
    for L, _ in taken:
        count[L] = count.get(L, 0) + 1
    out = []
    for L in sorted(count):
        free = torch.tensor([i for i in range(d_mlp) if (L, i) not in taken])
        pick = free[torch.randperm(len(free), generator=g)[: count[L]]]
        out += [(L, int(i)) for i in pick]
    return sorted(out)


def layer_histogram(neurons: Sequence[Neuron], n_layers: int) -> torch.Tensor:
    """``[n_layers]``: how many of ``neurons`` are in each layer."""
    h = torch.zeros(n_layers, dtype=torch.long)
    for L, _ in neurons:
        if not 0 <= int(L) < n_layers:
            raise InputError(f"layer {L} out of range 0..{n_layers - 1}")
        h[int(L)] += 1
    return h


@torch.no_grad()
def neuron_activations(model, prompts: Sequence[str], neurons: Sequence[Neuron]) -> torch.Tensor:
    """``[n_prompts, n_neurons]``: each neuron's ``hook_post`` at each prompt's last token."""
    neurons = _check_neurons(model, neurons)
    toks, last = pad_prompts(model, prompts)
    names = {hk.mlp_post(L) for L, _ in neurons}
    _, cache = model.run_with_cache(toks, names_filter=lambda n: n in names)
    r = torch.arange(len(toks))
    cols = [cache[hk.mlp_post(L)][r, last, i] for L, i in neurons]
    return torch.stack(cols, 1).float().cpu() if cols else torch.zeros(len(toks), 0)


# -- 4. the knowledge-neuron edit -----------------------------------------------------------------
def _unit_direction(model, token: int) -> torch.Tensor:
    u = model.W_U[:, token].detach().float()
    return u / u.norm()


def kn_edit(model, neurons: Sequence[Neuron], old, new, scale: float = 1.0) -> list[Edit]:
    """The paper's fact update on the value vectors of ``neurons``: one :class:`Edit` per layer with
    ``dW[i] = scale · ‖W_out[L, i]‖ · (e_new − e_old)`` for each found neuron ``i`` (``e``: the object's
    unit-norm unembedding column, ``[d_model]``), zero elsewhere (``dW [d_mlp, d_model]``)."""
    check_model(model)
    neurons = _check_neurons(model, neurons)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale != scale:
        raise InputError(f"scale must be a number, got {scale!r}")
    o, nw = target_token(model, old), target_token(model, new)
    if o == nw:
        raise InputError("old and new are the same token")
    direction = _unit_direction(model, nw) - _unit_direction(model, o)  # [d_model]
    edits: dict[int, torch.Tensor] = {}
    for L, i in neurons:
        W = model.W_out[L].detach().float()  # [d_mlp, d_model]
        dW = edits.setdefault(L, torch.zeros_like(W))
        dW[i] = scale * W[i].norm() * direction
    return [Edit(L, dW, None, {"neurons": [n for n in neurons if n[0] == L], "scale": scale})
            for L, dW in sorted(edits.items())]


def kn_edit_hooks(edits: Sequence[Edit]) -> list[tuple[str, object]]:
    """Forward hooks that run a model as if all ``edits`` were written into its weights."""
    out: list[tuple[str, object]] = []
    for e in edits:
        out += edit_hooks(e)
    return out


@contextmanager
def kn_edited(model, edits: Sequence[Edit] | None) -> Iterator[None]:
    """Inside the block every forward of ``model`` runs with ``edits`` (hooks; weights untouched)."""
    if not edits:
        yield
        return
    with model.hooks(fwd_hooks=kn_edit_hooks(edits)):
        yield


# -- the figures on a model card ----------------------------------------------------------------
KN_SCALES = (0.25, 0.5, 1.0, 2.0)  #: scales of the knowledge-neuron edit measured on the card


def _other_prompts(kb, subject: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` seeded prompts (first training template) of facts of other subjects, and their objects."""
    g = torch.Generator().manual_seed(seed)
    pool = [f for f in kb.facts if f.relation in kb.base_relations and f.subject != subject]
    pick = torch.randperm(len(pool), generator=g)[:n].tolist()
    facts = [pool[i] for i in pick]
    return ([kb.split_templates(f.subject, f.relation, "train")[0].format(f.subject) for f in facts],
            [f.object for f in facts])


def _r(x: float) -> float:
    return round(float(x), 4)


@torch.no_grad()
def _top1(model, prompts: Sequence[str], hooks=()) -> torch.Tensor:
    toks, last = pad_prompts(model, prompts)
    logits = model.run_with_hooks(toks, fwd_hooks=list(hooks)) if hooks else model(toks)
    return logits[torch.arange(len(prompts)), last].argmax(-1).cpu()


def measure_fact(model, kb, case, index: int = 0, seed: int = 0, n_other: int = 10, n_unknown: int = 3,
                 scales: Sequence[float] = KN_SCALES, rome_layers: Sequence[int] = (0,), t: float = THRESHOLD,
                 p: float = SHARE, steps: int = STEPS) -> dict:
    """Every week-11 figure for one edit case (:func:`mi_course.methods.edit_evaluation.kb_cases`).

    The fact's prompts are all templates of its relation with its subject. Returns a dict of
    plain numbers: the knowledge neurons and their layers; suppress (×0) / amplify (×2) relative
    changes of P(correct) on the fact's prompts, on ``n_other`` other facts' prompts and on its
    neighbours' (same relation and object, other subjects), each beside random neurons (same count,
    same layers); how often suppressing flips the top-1 token, and to another object of the relation;
    the found neurons' activation on the same templates with ``n_unknown`` people the model never saw
    and on the subject's other relations, relative to the fact's own prompts; the knowledge-neuron edit
    at each of ``scales`` and ROME at ``rome_layers`` (ES, PS, NS, and the share of other facts whose
    top-1 prediction is unchanged).
    """
    from mi_course.methods import edit_evaluation as ev
    from mi_course.methods import rome

    subject, rel = case.meta["subject"], case.meta["relation"]
    true = kb.object_of(subject, rel)
    prompts = [tpl.format(subject) for tpl in kb.templates(rel)]
    res = knowledge_neurons(model, prompts, true, t, p, steps)
    neurons = res.neurons
    rand = random_neurons(neurons, model.cfg.d_mlp, seed=seed * 1000 + index)
    others, other_obj = _other_prompts(kb, subject, n_other, seed * 1000 + index)
    neigh = case.neighborhood_prompts
    row: dict = {"subject": subject, "relation": rel, "object": true, "new": case.request["target_new"],
                 "n_neurons": len(neurons), "neurons": [list(n) for n in neurons],
                 "layers": layer_histogram(neurons, model.cfg.n_layers).tolist()}
    with torch.no_grad():
        for what, factor in (("suppress", 0.0), ("amplify", 2.0)):
            for who, ns in (("kn", neurons), ("random", rand)):
                b, a, top = intervention_probs(model, prompts, true, ns, factor)
                row[f"{what}_{who}_own"] = _r(relative_change(b, a))
                b, a, _ = intervention_probs(model, others, other_obj, ns, factor)
                row[f"{what}_{who}_other"] = _r(relative_change(b, a))
                if neigh:
                    b, a, _ = intervention_probs(model, neigh, true, ns, factor)
                    row[f"{what}_{who}_neighbours"] = _r(relative_change(b, a))
                if what == "suppress" and who == "kn":
                    tid = target_token(model, true)
                    flipped = top != tid
                    objs = {target_token(model, o) for o in kb.objects(rel)} - {tid}
                    row["flip"] = _r(flipped.float().mean())
                    row["flip_to_object"] = _r(sum(int(x) in objs for x in top[flipped]) / max(1, int(flipped.sum())))
        b, _, _ = intervention_probs(model, prompts, true, [], 1.0)
        row["p_before"] = _r(b.mean())
        # Niu et al.: do the neurons respond to the fact, or to the wording (the template)?
        own = neuron_activations(model, prompts, neurons).sum(1).mean() if neurons else torch.tensor(float("nan"))
        unknown = kb.unknown_people(n_unknown, seed=seed)
        unk_prompts = [tpl.format(u) for u in unknown for tpl in kb.templates(rel)]
        other_rel = [tpl.format(subject) for r2 in kb.base_relations if r2 != rel for tpl in kb.templates(r2)]
        for name, ps in (("unknown_people", unk_prompts), ("other_relations", other_rel)):
            act = neuron_activations(model, ps, neurons).sum(1).mean() if neurons else torch.tensor(float("nan"))
            row[f"activation_{name}"] = _r(act / own)
        base_other = _top1(model, others)
        row["kn_edit"] = {}
        for sc in scales:
            edits = kn_edit(model, neurons, true, case.request["target_new"], sc) if neurons else []
            with kn_edited(model, edits):
                s = ev.case_scores(model, case, None)
                kept = (_top1(model, others) == base_other).float().mean()
            row["kn_edit"][str(sc)] = {k: _r(s[k]) for k in ("ES", "PS", "NS")} | {"others_kept": _r(kept)}
    row["rome"] = {}
    for L in rome_layers:
        e = rome.rome_edit(model, case.request, L)
        s = ev.case_scores(model, case, e)
        with rome.edited(model, e):
            kept = (_top1(model, others) == base_other).float().mean()
        row["rome"][str(L)] = {k: _r(s[k]) for k in ("ES", "PS", "NS")} | {"others_kept": _r(kept)}
    return row


def summarize_facts(rows: Sequence[dict], n_layers: int) -> dict:
    """Means over :func:`measure_fact` rows, the layer distribution of all found neurons, the neurons
    found for many facts, and the share of each fact's neurons also found for a fact of another relation."""
    if not rows:
        raise InputError("no rows to summarize")
    mean = lambda xs: _r(sum(xs) / len(xs)) if xs else float("nan")  # noqa: E731
    out: dict = {"n_facts": len(rows)}
    counts = sorted(r["n_neurons"] for r in rows)
    out["neurons_per_fact"] = {"mean": mean(counts), "median": counts[len(counts) // 2], "min": counts[0],
                               "max": counts[-1], "facts_with_none": sum(c == 0 for c in counts)}
    hist = [sum(r["layers"][L] for r in rows) for L in range(n_layers)]
    out["layer_counts"] = hist
    out["layer_share"] = [_r(h / max(1, sum(hist))) for h in hist]
    for key in rows[0]:
        if key.startswith(("suppress_", "amplify_", "activation_")) or key in ("flip", "flip_to_object", "p_before"):
            vals = [r[key] for r in rows if key in r and r[key] == r[key]]
            out[key] = mean(vals)
    flipped = [r for r in rows if r["flip"] > 0]
    out["flip_to_object"] = mean([r["flip_to_object"] for r in flipped])
    out["facts_flipped_by_suppress"] = _r(sum(r["flip"] > 0 for r in rows) / len(rows))
    for kind in ("kn_edit", "rome"):
        out[kind] = {k: {m: mean([r[kind][k][m] for r in rows]) for m in ("ES", "PS", "NS", "others_kept")}
                     for k in rows[0][kind]}
    # neurons shared across facts (a fact-specific store would share few)
    found: dict[tuple[int, int], set[int]] = {}
    for j, r in enumerate(rows):
        for L, i in r["neurons"]:
            found.setdefault((L, i), set()).add(j)
    common = sorted(((len(v), n) for n, v in found.items()), reverse=True)
    out["most_shared"] = [{"neuron": list(n), "facts": c, "share": _r(c / len(rows))} for c, n in common[:8]]
    shared = []
    for j, r in enumerate(rows):
        if r["neurons"]:
            other_rel = {k for k, rr in enumerate(rows) if rr["relation"] != r["relation"]}
            shared.append(sum(bool(found[tuple(n)] & other_rel) for n in r["neurons"]) / len(r["neurons"]))
    out["share_also_other_relation"] = mean(shared)
    return out


def kn_figures(model, kb, n_facts: int = 50, seed: int = 0, progress: bool = True, **kwargs) -> dict:
    """Week 11's figures on ``kb-lm``: :func:`measure_fact` for ``n_facts`` seeded edit cases
    (``edit_evaluation.kb_cases(model, kb, n_facts, seed=seed)``) and :func:`summarize_facts`."""
    from tqdm.auto import tqdm

    from mi_course.methods import edit_evaluation as ev

    cases = ev.kb_cases(model, kb, n_facts, seed=seed)
    rows = [measure_fact(model, kb, c, i, seed, **kwargs) for i, c in enumerate(tqdm(cases, desc="facts", disable=not progress))]
    return {"settings": {"n_facts": n_facts, "seed": seed, "steps": STEPS, "t": THRESHOLD, "p": SHARE,
                         "scales": list(kwargs.get("scales", KN_SCALES)), "rome_layers": list(kwargs.get("rome_layers", (0,))),
                         "prompts": "all templates of the fact's relation with its subject; neurons at the last token"},
            "summary": summarize_facts(rows, model.cfg.n_layers), "facts": rows}
