"""Evaluating a model edit the way ROME/MEMIT do (``experiments/summarize.py``), and a fine-tuning baseline.

For each edit request (subject, relation, true object ``o``, new object ``o*``) the model is
edited once, from the original weights, and scored on three sets of prompts:

==========================  ==========================================================================
metric                      definition (per request, then averaged over requests)
==========================  ==========================================================================
efficacy ES / EM            on the edit prompt: fraction with P(o*) > P(o) / mean P(o*) − P(o)
paraphrase PS / PM          the same on the other templates of the fact (incl. its held-out template)
neighbourhood NS / NM       on other subjects with the same relation and true object ``o``:
                            fraction with P(o) > P(o*) / mean P(o) − P(o*)
score S                     harmonic mean of ES, PS, NS
==========================  ==========================================================================

P is the next-token probability at the prompt's last token (every object is one token, so it is
exact: the ROME code's ``exp(−NLL)`` of a one-token target). Values are fractions (the papers
print them ×100). EasyEdit's "reliability" (teacher-forced token accuracy) is a different number.

Editors are functions ``(model, request) -> Edit | None`` (see :mod:`mi_course.methods.rome`):
:func:`rome_editor`, :func:`fine_tune_editor` (one layer's MLP, optionally with the L∞ norm
constraint of ROME's FT-L baseline), :func:`no_edit`. Edits are applied through hooks, so the
model's weights are never touched and nothing needs copying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import harmonic_mean
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.causal_tracing import _tokens, check_layer, check_model
from mi_course.methods.rome import Edit, RomeHparams, default_layer, edited, parse_request, rome_edit

METRICS = ("ES", "EM", "PS", "PM", "NS", "NM", "S")
#: FT-L's L-infinity bound on each weight change (ROME's FT-L for GPT-2 XL: 5e-4 with lr 5e-4).
FT_L_EPS = 5e-3


@dataclass
class EditCase:
    """One request and its evaluation prompts (filled strings; the object is the next token)."""

    request: dict
    target_new: int
    target_true: int
    rewrite_prompts: list[str]
    paraphrase_prompts: list[str]
    neighborhood_prompts: list[str]
    meta: dict = field(default_factory=dict)


def kb_case(model, kb, subject: str, relation: str, target_new: str, template: str | None = None,
            max_neighbours: int = 10) -> EditCase:
    """An :class:`EditCase` computed exactly from the knowledge base ``kb``.

    Edit prompt: ``template`` (default: the subject's first training template). Paraphrases: every
    other template of the relation for this subject (training ones and the held-out one).
    Neighbourhood: the same template filled with up to ``max_neighbours`` other subjects whose true
    object is the same (``kb.neighbours``).
    """
    req = kb.rome_request(subject, relation, target_new, template)
    tpl = req["prompt"]
    paraphrases = [t.format(subject) for t in kb.templates(relation) if t != tpl]
    neigh = [tpl.format(n) for n in kb.neighbours(subject, relation)[:max_neighbours]]
    parsed = parse_request(model, req)
    return EditCase(req, parsed.target_new, parsed.target_true, [tpl.format(subject)], paraphrases, neigh,
                    {"subject": subject, "relation": relation})


def kb_cases(model, kb, n: int, relation: str | None = None, seed: int = 0, max_neighbours: int = 10) -> list[EditCase]:
    """``n`` seeded counterfactual requests: a random fact (of ``relation``, or of any base relation) and
    a random other candidate object. Only facts with at least one neighbour are used."""
    g = torch.Generator().manual_seed(seed)
    rels = [relation] if relation else list(getattr(kb, "base_relations", kb.relations))
    out: list[EditCase] = []
    seen = set()
    while len(out) < n:
        rel = rels[int(torch.randint(len(rels), (1,), generator=g))]
        facts = kb.facts_of(rel)
        f = facts[int(torch.randint(len(facts), (1,), generator=g))]
        if (f.subject, rel) in seen or not kb.neighbours(f.subject, rel):
            continue
        seen.add((f.subject, rel))
        others = [o for o in kb.objects(rel) if o != f.object]
        new = others[int(torch.randint(len(others), (1,), generator=g))]
        out.append(kb_case(model, kb, f.subject, rel, new, max_neighbours=max_neighbours))
    return out


@torch.no_grad()
def next_token_probs(model, prompts: Sequence[str], token_ids: Sequence[int], edit: Edit | None = None) -> torch.Tensor:
    """``[n_prompts, n_ids]``: P(token | prompt) at each prompt's last token (with ``edit`` applied by hooks)."""
    if not prompts:
        return torch.zeros(0, len(token_ids))
    seqs = [_tokens(model, p) for p in prompts]
    lens = torch.tensor([len(s) for s in seqs])
    toks = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long)
    for j, s in enumerate(seqs):
        toks[j, : len(s)] = s
    with edited(model, edit):
        logits = model(toks.to(model.W_E.device))
    probs = logits[torch.arange(len(seqs)), lens - 1].float().softmax(-1)
    return probs[:, list(token_ids)].cpu()


def case_scores(model, case: EditCase, edit: Edit | None = None) -> dict[str, float]:
    """ES, EM, PS, PM, NS, NM of one case (as ``summarize.py`` computes them per case)."""
    ids = [case.target_new, case.target_true]
    out = {}
    for key, prompts, sign in (("E", case.rewrite_prompts, 1), ("P", case.paraphrase_prompts, 1),
                               ("N", case.neighborhood_prompts, -1)):
        if not prompts:
            out[f"{key}S"] = out[f"{key}M"] = float("nan")
            continue
        p = next_token_probs(model, prompts, ids, edit)
        diff = sign * (p[:, 0] - p[:, 1])  # E, P: P(new) - P(true); N: P(true) - P(new)
        out[f"{key}S"] = float((diff > 0).float().mean())
        out[f"{key}M"] = float(diff.mean())
    return out


def summarize(per_case: Sequence[dict[str, float]]) -> dict[str, float]:
    """Means over cases, and ``S`` = harmonic mean of ES, PS, NS (0 if any is 0)."""
    if not per_case:
        raise InputError("no cases to summarize")
    out = {}
    for k in ("ES", "EM", "PS", "PM", "NS", "NM"):
        vals = [c[k] for c in per_case if c[k] == c[k]]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    parts = [out["ES"], out["PS"], out["NS"]]
    out["S"] = 0.0 if min(parts) <= 0 else harmonic_mean(parts)
    out["n"] = len(per_case)
    return out


Editor = Callable[[object, dict], "Edit | None"]


def evaluate_edits(model, cases: Sequence[EditCase], editor: Editor, progress: bool = True,
                   desc: str = "editing") -> tuple[dict[str, float], list[dict[str, float]]]:
    """Edit each case from the original model (one at a time), score it; return (summary, per-case scores)."""
    if not cases:
        raise InputError("cases is empty")
    per_case = []
    for case in tqdm(cases, desc=desc, disable=not progress):
        e = editor(model, case.request)
        per_case.append(case_scores(model, case, e))
    return summarize(per_case), per_case


def no_edit(model, request: dict) -> None:
    """The unedited model (the "pre" rows of the ROME tables)."""
    return None


def rome_editor(layer: int | None = None, hparams: RomeHparams | None = None, texts=None) -> Editor:
    """An editor that applies ROME at ``layer``."""
    def edit(model, request):
        return rome_edit(model, request, layer, hparams, texts)
    return edit


# -- fine-tuning baseline ---------------------------------------------------------------------
def fine_tune_edit(model, request: dict, layer: int | None = None, norm_constraint: float | None = None,
                   steps: int = 25, lr: float = 5e-3, stop_loss: float = 1e-2) -> Edit:
    """Fine-tune one layer's MLP output weights and bias (``W_out``, ``b_out``) on the edit prompt.

    Minimises −log P(target_new | prompt) with Adam for ``steps`` steps (stopping when the loss is
    below ``stop_loss``). ``norm_constraint=eps`` is ROME's FT-L: after each step every weight is
    clamped to within ``eps`` of its original value (an L∞ ball). Returns the change as an :class:`Edit`
    (``dW [d_mlp, d_model]``, ``db [d_model]``), without changing ``model``.
    """
    check_model(model)
    layer = default_layer(model) if layer is None else check_layer(model, layer)
    if norm_constraint is not None and not norm_constraint > 0:
        raise InputError(f"norm_constraint must be a positive number or None, got {norm_constraint!r}")
    req = parse_request(model, request)
    toks = _tokens(model, req.prompt.format(req.subject))[None]
    dW = torch.zeros(model.cfg.d_mlp, model.cfg.d_model, requires_grad=True, device=toks.device)
    db = torch.zeros(model.cfg.d_model, requires_grad=True, device=toks.device)
    opt = torch.optim.Adam([dW, db], lr=lr)
    e = Edit(layer, dW, db)
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    losses = []
    try:
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                with edited(model, e):
                    logits = model(toks)
                loss = -logits[0, -1].float().log_softmax(-1)[req.target_new]
                losses.append(float(loss.detach()))
                if losses[-1] < stop_loss:
                    break
                loss.backward()
                opt.step()
                if norm_constraint is not None:
                    with torch.no_grad():
                        dW.clamp_(-norm_constraint, norm_constraint)
                        db.clamp_(-norm_constraint, norm_constraint)
    finally:
        for p, f in zip(model.parameters(), frozen):
            p.requires_grad_(f)
    return Edit(layer, dW.detach(), db.detach(), {"losses": losses, "norm_constraint": norm_constraint})


def fine_tune_editor(layer: int | None = None, norm_constraint: float | None = None, steps: int = 25,
                     lr: float = 5e-3) -> Editor:
    """An editor that fine-tunes ``layer``'s MLP output (FT; with ``norm_constraint``: FT-L)."""
    def edit(model, request):
        return fine_tune_edit(model, request, layer, norm_constraint, steps, lr)
    return edit


def layer_sweep(model, cases: Sequence[EditCase], editors: dict[str, Callable[[int], Editor]],
                layers: Sequence[int] | None = None, progress: bool = True) -> dict[str, dict[int, dict[str, float]]]:
    """``{editor name: {layer: summary}}`` for each editor factory (``layer -> editor``) at each layer."""
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    return {name: {L: evaluate_edits(model, cases, make(L), progress=progress, desc=f"{name} L{L}")[0]
                   for L in layers} for name, make in editors.items()}


# -- the figures on a model card ------------------------------------------------------------------
def known_facts(model, kb, n: int, seed: int = 0, template: int = 0) -> list[dict]:
    """``n`` seeded facts of the base relations whose object is the model's top-1 next token after
    the subject's ``template``-th training template, as ``{"prompt", "subject", "target", "relation"}``."""
    g = torch.Generator().manual_seed(seed)
    pool = [f for f in kb.facts if f.relation in getattr(kb, "base_relations", kb.relations)]
    out = []
    for i in torch.randperm(len(pool), generator=g).tolist():
        f = pool[i]
        tpl = kb.split_templates(f.subject, f.relation, "train")[template]
        tid = parse_request(model, {"prompt": tpl, "subject": f.subject, "target_new": f.object}).target_new
        if int(next_token_probs(model, [tpl.format(f.subject)], range(model.cfg.d_vocab))[0].argmax()) == tid:
            out.append({"prompt": tpl, "subject": f.subject, "target": f.object, "relation": f.relation})
        if len(out) == n:
            break
    return out


def editing_figures(model, kb, n_trace: int = 40, n_edits: int = 20, n_samples: int = 10, seed: int = 0,
                    ft_eps: float | None = None, layers: Sequence[int] | None = None, progress: bool = True) -> dict:
    """Causal-tracing peaks and edit scores per layer, as reported on ``kb-lm``'s card (week 08).

    Tracing: ``n_trace`` known facts, noise 3x the std of the subjects' token embeddings, ``n_samples``
    samples, window 1; per kind the peak ``(layer, position, AIE)`` and the AIE by layer at the last
    subject token and the last token; the severed variants at the last subject token. Editing:
    ``n_edits`` seeded counterfactual requests (:func:`kb_cases`), ROME, FT and FT-L (L∞ ``ft_eps``,
    default :data:`FT_L_EPS`) at every layer in ``layers``.
    """
    from mi_course.methods import causal_tracing as ct

    facts = known_facts(model, kb, n_trace, seed)
    noise = ct.NOISE_FACTOR * ct.embedding_std(model, kb.subjects)
    LS, LT = ct.POSITION_NAMES.index("last subject token"), ct.POSITION_NAMES.index("last token")
    out: dict = {"n_trace": len(facts), "n_samples": n_samples, "noise": round(noise, 4), "tracing": {}, "severed": {}}
    for kind in ct.KINDS:
        aie, res = ct.trace_facts(model, facts, kind=kind, n_samples=n_samples, noise=noise, progress=progress)
        L, pos, eff = ct.peak(aie)
        out["tracing"][kind] = {"peak_layer": L, "peak_position": pos, "peak_aie": round(eff, 4),
                                "last_subject_token": [round(float(x), 4) for x in aie[:, LS]],
                                "last_token": [round(float(x), 4) for x in aie[:, LT]]}
        if kind == "hidden":
            out["clean_p"] = round(sum(r.high for r in res) / len(res), 4)
            out["corrupted_p"] = round(sum(r.low for r in res) / len(res), 4)
    for what in ("mlp", "attn"):
        aie, _ = ct.trace_facts(model, facts, kind="hidden", sever=what, n_samples=n_samples, noise=noise,
                                progress=progress)
        out["severed"][what] = [round(float(x), 4) for x in aie[:, LS]]
    cases = kb_cases(model, kb, n_edits, seed=seed + 1)
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    eps = FT_L_EPS if ft_eps is None else ft_eps
    editors = {"ROME": lambda L: rome_editor(L), "FT": lambda L: fine_tune_editor(L),
               "FT-L": lambda L: fine_tune_editor(L, norm_constraint=eps)}
    sweep = layer_sweep(model, cases, editors, layers, progress=progress)
    out["n_edits"] = len(cases)
    out["ft_l_eps"] = eps
    out["editing"] = {name: {str(L): {k: round(float(s[k]), 4) for k in METRICS} for L, s in by_layer.items()}
                      for name, by_layer in sweep.items()}
    out["unedited"] = {k: round(float(v), 4) for k, v in summarize([case_scores(model, c) for c in cases]).items()
                       if k in METRICS}
    return out
