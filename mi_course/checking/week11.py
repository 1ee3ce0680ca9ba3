"""Checkers for week 11: knowledge neurons (Dai et al. 2022) and the checks of Niu et al. 2024 on ``kb-lm``.

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.knowledge_neurons`) on fixed and random cases, and recognises the common
mistakes listed with each exercise.
"""

from __future__ import annotations


import torch

from mi_course.checking import kb_lm
from mi_course.checking import core
from mi_course.checking.core import Case, Exercise, Mistake, yours_or_reference  # noqa: F401
from mi_course.methods import knowledge_neurons as kn
from mi_course.zoo import hooks as hk

MODEL = "kb-lm"


_model = kb_lm.model  # kb-lm and its KB, loaded once for all of block 2's checkers
_kb = kb_lm.knowledge_base


def _fact(seed: int):
    """A seeded base fact: (subject, relation, object)."""
    kb = _kb()
    g = torch.Generator().manual_seed(seed)
    rels = list(kb.base_relations)
    rel = rels[int(torch.randint(len(rels), (1,), generator=g))]
    facts = kb.facts_of(rel)
    f = facts[int(torch.randint(len(facts), (1,), generator=g))]
    return f.subject, rel, f.object


def _prompts(seed: int, n: int | None = None) -> tuple[list[str], int, str]:
    """The prompts (all templates of the relation, or the first ``n``) of a seeded fact and its object id."""
    kb, model = _kb(), _model()
    s, rel, obj = _fact(seed)
    prompts = [t.format(s) for t in kb.templates(rel)][:n]
    return prompts, kn.target_token(model, obj), rel


def _visible(ex: Exercise, fn, seed) -> bool:
    """The visible check (``seed=None``) returns True/False and never raises; a hidden test raises."""
    __tracebackhide__ = True  # noqa: F841
    return core.check(ex, fn, seed)


def _neuron_list(x):
    """Compare lists of neurons as sorted (layer, index) pairs of ints."""
    try:
        return sorted((int(a), int(b)) for a, b in x)
    except Exception:
        return x


# -- 1. the integration path -------------------------------------------------------------------
def ig_path(base: torch.Tensor, steps: int) -> torch.Tensor:
    """``[steps, d]``: row ``k - 1`` is ``(k / steps) · base`` for ``k = 1 .. steps`` (the paper's Riemann sum)."""
    alphas = torch.arange(1, steps + 1, dtype=base.dtype) / steps
    return alphas[:, None] * base[None, :]


def _path_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    return [Case(f"seed {seed}, d={d}, steps={m}", {"base": torch.rand(d, generator=g) * 3, "steps": m})
            for d, m in [(6, 4), (10, int(torch.randint(5, 12, (1,), generator=g)))]]


PATH = Exercise(
    id="w11_ig_path", title="ig_path", reference=ig_path, cases=_path_cases,
    mistakes=[
        Mistake("from zero", lambda base, steps: (torch.arange(steps, dtype=base.dtype) / steps)[:, None] * base,
                "the paper's sum runs over k = 1 .. m (α = k/m ends at 1, the real activation); yours starts at α = 0."),
        Mistake("linspace", lambda base, steps: torch.linspace(0, 1, steps, dtype=base.dtype)[:, None] * base,
                "`linspace(0, 1, m)` has both ends: the paper's α are 1/m, 2/m, ..., m/m."),
    ],
    hint="The scale factors are 1/m, 2/m, ..., m/m: none is zero and the last row is `base` itself. Broadcasting a "
         "column of factors against `base` builds all rows at once.",
)


def check_ig_path(fn, seed: int | None = None):
    """Check ``ig_path(base, steps) -> [steps, d]``."""
    return _visible(PATH, fn, seed)


# -- 2. integrated gradients for one layer's neurons ------------------------------------------------
def neuron_attribution(model, tokens: torch.Tensor, layer: int, target: int, steps: int = 20) -> torch.Tensor:
    """``[d_mlp]``: integrated gradients of P(target) for each neuron of ``blocks.{layer}.mlp.hook_post`` at
    the last token of one prompt ``tokens [1, pos]`` (``steps`` scaled copies in one batch)."""
    last = torch.tensor([tokens.shape[1] - 1])
    return kn.layer_attribution(model, tokens, last, torch.tensor([target]), layer, steps)[0]


def _attr_variant(log_prob=False, no_act=False, summed=False):
    def fn(model, tokens, layer, target, steps=20):
        name = hk.mlp_post(layer)
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
        base = cache[name][0, -1]
        scaled = ig_path(base, steps).clone().requires_grad_(True)

        def put(act, hook):
            act = act.clone()
            act[:, -1] = scaled
            return act
        with torch.enable_grad():
            logits = model.run_with_hooks(tokens.expand(steps, -1), fwd_hooks=[(name, put)])
            lp = logits[:, -1].log_softmax(-1)[:, target]
            obj = lp if log_prob else lp.exp()
            (grad,) = torch.autograd.grad(obj.sum(), scaled)
        g = grad.sum(0) if summed else grad.mean(0)
        return g.detach() if no_act else (base * g).detach()
    return fn


def _attr_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(2):
        prompts, target, _ = _prompts(seed * 5 + i)
        j = int(torch.randint(len(prompts), (1,), generator=g))
        layer = int(torch.randint(model.cfg.n_layers, (1,), generator=g))
        steps = int(torch.randint(3, 7, (1,), generator=g))
        out.append(Case(f"seed {seed}, {prompts[j]!r}, layer {layer}, steps {steps}", {
            "model": model, "tokens": model.to_tokens(prompts[j]), "layer": layer, "target": target, "steps": steps}))
    return out


ATTR = Exercise(
    id="w11_neuron_attribution", title="neuron_attribution", reference=neuron_attribution, cases=_attr_cases,
    atol=1e-5, rtol=1e-3,
    mistakes=[
        Mistake("log-probability", _attr_variant(log_prob=True),
                "the paper integrates the gradient of the probability P(target), not of its logarithm."),
        Mistake("no activation factor", _attr_variant(no_act=True),
                "integrated gradients multiply the averaged gradient by the neuron's own activation w̄ (the path's length)."),
        Mistake("sum, not mean", _attr_variant(summed=True),
                "the Riemann sum is divided by m: average the gradients over the steps (w̄/m · Σ)."),
    ],
    hint="Integrated gradients: the gradient of P(target) (not its log) with respect to the scaled activations of "
         "your `ig_path`, averaged over the steps and multiplied by the real activation w̄. Each batch row carries "
         "one scaled copy at the last position; gradients are off in the notebook (`torch.enable_grad`).",
)


def check_neuron_attribution(fn, seed: int | None = None):
    """Check ``neuron_attribution(model, tokens, layer, target, steps) -> [d_mlp]``."""
    return _visible(ATTR, fn, seed)


# -- 3. refinement: threshold, then shared across prompts -----------------------------------------
def refine_neurons(attr: torch.Tensor, t: float = 0.2, p: float = 0.5) -> list[tuple[int, int]]:
    """``attr [n_prompts, n_layers, d_mlp]`` -> sorted ``[(layer, neuron)]`` above ``t`` × the prompt's
    largest attribution in at least a share ``p`` of the prompts."""
    return kn.refine(attr, t, p)


def _refine_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, L, d, t, p in [(6, 3, 12, 0.2, 0.5), (4, 4, 10, 0.3, 0.75)]:
        attr = torch.randn(n, L, d, generator=g) * 0.1
        attr[:, :, :3] += torch.rand(n, L, 3, generator=g) * 2  # a few strong neurons, shared by some prompts
        attr[:, L - 1] *= 3  # one layer much larger than the others
        out.append(Case(f"seed {seed}, {n} prompts, {L} layers, t={t}, p={p}", {"attr": attr, "t": t, "p": p}))
    return out


def _refine_variant(per_layer=False, absolute=False, strict=False, union=False):
    def fn(attr, t=0.2, p=0.5):
        top = attr.max(-1, keepdim=True).values if per_layer else attr.flatten(1).max(1).values[:, None, None]
        keep = attr > (t if absolute else t * top)
        share = keep.float().mean(0)
        sel = share > 0 if union else (share > p if strict else share >= p)
        return [(int(a), int(b)) for a, b in sel.nonzero().tolist()]
    return fn


REFINE = Exercise(
    id="w11_refine_neurons", title="refine_neurons", reference=refine_neurons, cases=_refine_cases,
    normalize=_neuron_list,
    mistakes=[
        Mistake("max per layer", _refine_variant(per_layer=True),
                "the threshold is t × the prompt's largest attribution over ALL layers, not each layer's own maximum."),
        Mistake("absolute threshold", _refine_variant(absolute=True),
                "t is relative: compare with t × the prompt's largest attribution, not with t itself."),
        Mistake("any prompt", _refine_variant(union=True),
                "keep only neurons found for at least a share p of the prompts (the refinement), not for any prompt."),
        Mistake("more than p", _refine_variant(strict=True),
                "'at least p': a neuron found for exactly p of the prompts is kept (>=, not >)."),
    ],
    hint="Two steps: per prompt, mark the neurons above t × that prompt's largest attribution over all layers; then "
         "keep those marked for at least a share p of the prompts, as sorted (layer, neuron) pairs.",
)


def check_refine_neurons(fn, seed: int | None = None):
    """Check ``refine_neurons(attr, t, p) -> [(layer, neuron)]``."""
    return _visible(REFINE, fn, seed)


# -- 4. suppress / amplify: the relative change ------------------------------------------------------
@torch.no_grad()
def probability_change(model, prompts: list[str], target: int, neurons: list[tuple[int, int]], factor: float) -> float:
    """Mean over ``prompts`` of ``(P_after − P_before) / P_before`` for P(target) at the last token, with
    ``neurons`` multiplied by ``factor`` (0 suppresses, 2 amplifies) at the last token only."""
    b, a, _ = kn.intervention_probs(model, prompts, target, neurons, factor)
    return kn.relative_change(b, a)


def _change_variant(everywhere=False, absolute=False, pre=False):
    @torch.no_grad()
    def fn(model, prompts, target, neurons, factor):
        toks, last = kn.pad_prompts(model, prompts)
        r = torch.arange(len(prompts))
        hooks = kn.scaling_hooks(neurons, factor, None if everywhere else last)
        if pre:
            hooks = [(n.replace("hook_post", "hook_pre"), f) for n, f in hooks]
        b = model(toks)[r, last].softmax(-1)[:, target]
        a = model.run_with_hooks(toks, fwd_hooks=hooks)[r, last].softmax(-1)[:, target]
        return float((a - b).mean()) if absolute else float(((a - b) / b).mean())
    return fn


def _neurons_for(seed: int, n: int) -> list[tuple[int, int]]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = set()
    while len(out) < n:
        out.add((int(torch.randint(model.cfg.n_layers, (1,), generator=g)), int(torch.randint(model.cfg.d_mlp, (1,), generator=g))))
    return sorted(out)


def _change_cases(seed: int) -> list[Case]:
    model = _model()
    out = []
    for i, factor in enumerate((0.0, 2.0)):
        prompts, target, _ = _prompts(seed * 3 + i, n=4)
        res = kn.knowledge_neurons(model, prompts, target, steps=4)
        neurons = res.neurons[:12] + _neurons_for(seed + i, 40)
        out.append(Case(f"seed {seed}, {prompts[0]!r} and 3 paraphrases, {len(neurons)} neurons, factor {factor}",
                        {"model": model, "prompts": prompts, "target": target, "neurons": neurons, "factor": factor}))
    return out


CHANGE = Exercise(
    id="w11_probability_change", title="probability_change", reference=probability_change, cases=_change_cases,
    atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake("every position", _change_variant(everywhere=True),
                "scale the neurons only at each prompt's last token (where they were attributed), not at every position."),
        Mistake("absolute change", _change_variant(absolute=True),
                "the paper reports the relative change (P_after − P_before) / P_before, per prompt, then the mean."),
        Mistake("before the non-linearity", _change_variant(pre=True),
                "a neuron's activation is `hook_post` (after the GELU), not `hook_pre`."),
    ],
    hint="Scale the neurons only at each prompt's own last token (prompts differ in length: right-pad and remember "
         "the last positions, or run them one at a time), compare P(target) there with an unhooked run, and average "
         "the relative change over prompts.",
)


def check_probability_change(fn, seed: int | None = None):
    """Check ``probability_change(model, prompts, target, neurons, factor) -> float``."""
    return _visible(CHANGE, fn, seed)


# -- 5. the layer histogram -----------------------------------------------------------------------
def layer_histogram(neurons: list[tuple[int, int]], n_layers: int) -> torch.Tensor:
    """``[n_layers]`` (long): how many of ``neurons`` are in each layer."""
    return kn.layer_histogram(neurons, n_layers)


def _hist_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, L in [(9, 6), (int(torch.randint(5, 30, (1,), generator=g)), 8)]:
        top = L - 2  # the last layers stay empty: a histogram must still have n_layers bins
        neurons = [(int(torch.randint(top, (1,), generator=g)), int(torch.randint(100, (1,), generator=g))) for _ in range(n)]
        out.append(Case(f"seed {seed}, {n} neurons, {L} layers", {"neurons": neurons, "n_layers": L}))
    return out


HIST = Exercise(
    id="w11_layer_histogram", title="layer_histogram", reference=layer_histogram, cases=_hist_cases,
    mistakes=[
        Mistake("no minlength", lambda neurons, n_layers: torch.bincount(torch.tensor([a for a, _ in neurons])),
                "give every layer a bin, also the empty last ones: `torch.bincount(..., minlength=n_layers)`."),
        Mistake("shares", lambda neurons, n_layers: layer_histogram(neurons, n_layers).float() / len(neurons),
                "count the neurons (integers); the shares come later."),
    ],
    hint="Count the pairs that fall into each layer, with a bin for every layer, the empty ones too (look up "
         "`torch.bincount` and its options). Self-check: the counts sum to len(neurons).",
)


def check_layer_histogram(fn, seed: int | None = None):
    """Check ``layer_histogram(neurons, n_layers) -> [n_layers]``."""
    return _visible(HIST, fn, seed)


# -- 6. flips: does suppression change the answer? --------------------------------------------------
def suppression_flips(logits_after: torch.Tensor, target: int, objects: list[int]) -> torch.Tensor:
    """``logits_after [n, vocab]`` -> ``tensor([flip, to_object])``: the share of prompts whose top-1 token is
    no longer ``target``, and among those, the share whose new top-1 is another of the relation's
    ``objects`` (0 when nothing flipped)."""
    top = logits_after.argmax(-1)
    flipped = top != target
    others = set(int(o) for o in objects) - {int(target)}
    n = int(flipped.sum())
    to_obj = sum(int(x) in others for x in top[flipped].tolist()) / n if n else 0.0
    return torch.tensor([float(flipped.float().mean()), float(to_obj)])


def _flip_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, v in [(10, 30), (16, 50)]:
        logits = torch.randn(n, v, generator=g)
        target = int(torch.randint(v, (1,), generator=g))
        objects = torch.randperm(v, generator=g)[: v // 3].tolist() + [target]
        logits[: n // 3, target] += 5  # a third of the prompts keep their answer
        logits[n // 2: n // 2 + 3, objects[0] if objects[0] != target else objects[1]] += 5  # some flip to an object
        out.append(Case(f"seed {seed}, {n} prompts, vocab {v}", {"logits_after": logits, "target": target, "objects": objects}))
    return out


def _flip_all_prompts(logits_after, target, objects):
    top = logits_after.argmax(-1)
    flipped = top != target
    others = set(objects) - {target}
    return torch.tensor([float(flipped.float().mean()), sum(int(x) in others for x in top[flipped].tolist()) / len(top)])


FLIPS = Exercise(
    id="w11_suppression_flips", title="suppression_flips", reference=suppression_flips, cases=_flip_cases,
    mistakes=[
        Mistake("share of all prompts", _flip_all_prompts,
                "the second number is a share of the FLIPPED prompts (how many of the changed answers are another object)."),
        Mistake("kept, not flipped", lambda logits_after, target, objects: torch.tensor(
            [1 - float(suppression_flips(logits_after, target, objects)[0]), float(suppression_flips(logits_after, target, objects)[1])]),
                "the first number counts prompts whose top-1 is NOT the target any more."),
    ],
    hint="The first share is over all prompts (top-1 no longer `target`); the second only over the flipped prompts: "
         "how many now answer another of the `objects` (the target left out; 0 if none flipped).",
)


def check_suppression_flips(fn, seed: int | None = None):
    """Check ``suppression_flips(logits_after, target, objects) -> tensor([flip, to_object])``."""
    return _visible(FLIPS, fn, seed)


# -- 7. the knowledge-neuron edit ---------------------------------------------------------------------
def kn_edit_weights(model, neurons: list[tuple[int, int]], old: int, new: int, scale: float = 1.0) -> torch.Tensor:
    """``[n_layers, d_mlp, d_model]``: the change of every layer's ``W_out`` by the paper's fact update: row
    ``i`` of layer ``L`` (a found neuron's value vector) gets ``scale · ‖W_out[L, i]‖ · (e_new − e_old)``,
    ``e`` the unit-norm unembedding column ``W_U[:, token]``; all other rows 0."""
    out = torch.zeros(model.cfg.n_layers, model.cfg.d_mlp, model.cfg.d_model)
    for e in kn.kn_edit(model, neurons, old, new, scale):
        out[e.layer] = e.dW
    return out


def _edit_variant(raw=False, no_norm=False, swapped=False):
    def fn(model, neurons, old, new, scale=1.0):
        out = torch.zeros(model.cfg.n_layers, model.cfg.d_mlp, model.cfg.d_model)
        u_new, u_old = model.W_U[:, new].float(), model.W_U[:, old].float()
        if not raw:
            u_new, u_old = u_new / u_new.norm(), u_old / u_old.norm()
        d = u_old - u_new if swapped else u_new - u_old
        for L, i in neurons:
            out[L, i] = scale * (1.0 if no_norm else model.W_out[L, i].norm()) * d
        return out
    return fn


def _edit_cases(seed: int) -> list[Case]:
    model, kb = _model(), _kb()
    out = []
    for i, scale in enumerate((1.0, 0.5 + seed % 3)):
        s, rel, obj = _fact(seed * 11 + i)
        others = [o for o in kb.objects(rel) if o != obj]
        new = others[(seed + i) % len(others)]
        neurons = _neurons_for(seed * 13 + i, 7)
        out.append(Case(f"seed {seed}, {rel}: {obj} -> {new}, {len(neurons)} neurons, scale {scale}", {
            "model": model, "neurons": neurons, "old": kn.target_token(model, obj), "new": kn.target_token(model, new),
            "scale": scale}))
    return out


EDIT = Exercise(
    id="w11_kn_edit_weights", title="kn_edit_weights", reference=kn_edit_weights, cases=_edit_cases, atol=1e-5,
    mistakes=[
        Mistake("raw unembedding", _edit_variant(raw=True),
                "normalise each object's unembedding column to unit norm before taking the difference."),
        Mistake("no row norm", _edit_variant(no_norm=True),
                "scale each row's change by the norm of that neuron's own value vector ‖W_out[L, i]‖."),
        Mistake("old added", _edit_variant(swapped=True),
                "subtract the OLD object's direction and add the NEW one's (e_new − e_old)."),
    ],
    hint="Only the found neurons' rows change, all in one direction: away from the old object's unit-norm unembedding "
         "and towards the new one's, each row scaled by `scale` and by the norm of that neuron's own value vector. "
         "The result is [n_layers, d_mlp, d_model].",
)


def check_kn_edit_weights(fn, seed: int | None = None):
    """Check ``kn_edit_weights(model, neurons, old, new, scale) -> [n_layers, d_mlp, d_model]``."""
    return _visible(EDIT, fn, seed)


# -- 8. Niu et al.: do the neurons respond to the fact or to the wording? -----------------------------
@torch.no_grad()
def activation_ratio(model, prompts: list[str], other_prompts: list[str], neurons: list[tuple[int, int]]) -> float:
    """The found neurons' summed activation at the last token, averaged over ``other_prompts``, divided by the
    same over ``prompts`` (1: they fire as much for the other prompts as for the fact's own)."""
    own = kn.neuron_activations(model, prompts, neurons).sum(1).mean()
    other = kn.neuron_activations(model, other_prompts, neurons).sum(1).mean()
    return float(other / own)


def _ratio_variant(inverted=False, every_position=False, absolute=False):
    @torch.no_grad()
    def fn(model, prompts, other_prompts, neurons):
        def act(ps):
            toks, last = kn.pad_prompts(model, ps)
            names = {hk.mlp_post(L) for L, _ in neurons}
            _, cache = model.run_with_cache(toks, names_filter=lambda n: n in names)
            r = torch.arange(len(ps))
            if every_position:
                mask = torch.arange(toks.shape[1])[None] <= last[:, None]
                cols = [(cache[hk.mlp_post(L)][:, :, i] * mask).sum(1) / mask.sum(1) for L, i in neurons]
            else:
                cols = [cache[hk.mlp_post(L)][r, last, i] for L, i in neurons]
            x = torch.stack(cols, 1)
            return (x.abs() if absolute else x).sum(1).mean()
        a, b = act(prompts), act(other_prompts)
        return float(a / b) if inverted else float(b / a)
    return fn


def _ratio_cases(seed: int) -> list[Case]:
    model, kb = _model(), _kb()
    out = []
    for i in range(2):
        prompts, target, rel = _prompts(seed * 7 + i)
        res = kn.knowledge_neurons(model, prompts[:3], target, steps=4)
        unknown = kb.unknown_people(2, seed=seed + i)
        other = [t.format(u) for u in unknown for t in kb.templates(rel)][:5]
        out.append(Case(f"seed {seed}, {prompts[0]!r}: {len(res.neurons)} neurons; vs unknown people", {
            "model": model, "prompts": prompts, "other_prompts": other, "neurons": res.neurons}))
    return out


RATIO = Exercise(
    id="w11_activation_ratio", title="activation_ratio", reference=activation_ratio, cases=_ratio_cases,
    atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake("inverted", _ratio_variant(inverted=True), "the ratio is other / own (1 means 'as much as for the fact')."),
        Mistake("every position", _ratio_variant(every_position=True),
                "read the neurons at each prompt's last token only, where they were attributed."),
        Mistake("absolute values", _ratio_variant(absolute=True),
                "sum the activations as they are (a GELU output can be slightly negative); no abs()."),
    ],
    hint="Read the neurons only at each prompt's own last token (right-padded prompts end at different positions) and "
         "compute the same summary, summed over neurons and averaged over prompts, for both prompt sets. Self-check: "
         "the same prompts on both sides give 1.",
)


def check_activation_ratio(fn, seed: int | None = None):
    """Check ``activation_ratio(model, prompts, other_prompts, neurons) -> float``."""
    return _visible(RATIO, fn, seed)


EXERCISES = {ex.id: ex for ex in (PATH, ATTR, REFINE, CHANGE, HIST, FLIPS, EDIT, RATIO)}
