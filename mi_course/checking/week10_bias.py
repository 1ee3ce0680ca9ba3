"""Checkers for week 10's bias study: the components of ``kb-lm`` that carry its planted job-gender bias.

Each ``check_*`` runs your function against the reference (written here the way the exercise asks,
and equal to :mod:`mi_course.methods.bias_components`) on fixed and random cases, and recognises
the common mistakes listed with each exercise.
"""

from __future__ import annotations


import torch

from mi_course.checking import kb_lm
from mi_course.checking import core
from mi_course.checking.core import Case, Exercise, Mistake, yours_or_reference  # noqa: F401
from mi_course.methods import bias_components as bc
from mi_course.methods import components as comps
from mi_course.methods.knowledge_crawl import encode_prompts
from mi_course.zoo import hooks as hk

MODEL = "kb-lm"


_model = kb_lm.model  # kb-lm and its KB, loaded once for all of block 2's checkers
_kb = kb_lm.knowledge_base


def _visible(ex: Exercise, fn, seed) -> bool:
    __tracebackhide__ = True  # noqa: F841
    return core.check(ex, fn, seed)


# -- 1. the bias metric ----------------------------------------------------------------------------
def bias_metric(female_logits: torch.Tensor, male_logits: torch.Tensor, female_ids: torch.Tensor,
                male_ids: torch.Tensor) -> float:
    """B: mean over the female-named prompts of log P(female-group job) − log P(male-group job),
    minus the same mean over the male-named prompts. Logits ``[n, d_vocab]`` at the last token."""
    def log_odds(logits):
        return logits[:, female_ids].logsumexp(-1) - logits[:, male_ids].logsumexp(-1)
    return float(log_odds(female_logits).mean() - log_odds(male_logits).mean())


def _metric_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, v in [(4, 20), (7, 50)]:
        perm = torch.randperm(v, generator=g)
        fem, mal = perm[:5], perm[5:10]
        fl = torch.randn(n, v, generator=g) * 2
        fl[:, fem] += 1.5
        ml = torch.randn(n, v, generator=g) * 2
        ml[:, mal] += 0.5
        out.append(Case(f"seed {seed}, {n} prompt pairs, vocabulary {v}", {
            "female_logits": fl, "male_logits": ml, "female_ids": fem, "male_ids": mal}))
    return out


def _prob_difference(female_logits, male_logits, female_ids, male_ids):
    def d(logits):
        p = logits.softmax(-1)
        return p[:, female_ids].sum(-1) - p[:, male_ids].sum(-1)
    return float(d(female_logits).mean() - d(male_logits).mean())


def _mean_logits(female_logits, male_logits, female_ids, male_ids):
    def d(logits):
        return logits[:, female_ids].mean(-1) - logits[:, male_ids].mean(-1)
    return float(d(female_logits).mean() - d(male_logits).mean())


METRIC = Exercise(
    id="w10b_bias_metric", title="bias_metric", reference=bias_metric, cases=_metric_cases,
    mistakes=[
        Mistake("female prompts only",
                lambda female_logits, male_logits, female_ids, male_ids: float(
                    (female_logits[:, female_ids].logsumexp(-1) - female_logits[:, male_ids].logsumexp(-1)).mean()),
                "the bias is a difference between the pair: subtract the male-named prompts' mean log-odds "
                "(a model can prefer one group for everyone without any bias)."),
        Mistake("probabilities", _prob_difference,
                "use log-odds, log P(female group) − log P(male group), not a difference of probabilities."),
        Mistake("mean logit", _mean_logits,
                "a group's probability is the sum of its jobs' probabilities: logsumexp of their logits, not the mean logit."),
        Mistake("sign", lambda female_logits, male_logits, female_ids, male_ids:
                -bias_metric(female_logits, male_logits, female_ids, male_ids),
                "female-named minus male-named, with the female group's log-odds: B > 0 means the planted skew."),
    ],
    hint="A group's probability is the sum of its jobs' probabilities, so work with log-sum-exps of logits (the "
         "softmax's normaliser cancels in the log-odds); B compares the two runs' mean log-odds, female-named minus "
         "male-named.",
)


def check_bias_metric(fn, seed: int | None = None):
    """Check ``bias_metric(female_logits, male_logits, female_ids, male_ids) -> float``."""
    return _visible(METRIC, fn, seed)


# -- 2. causal mediation over every head and MLP ---------------------------------------------------
@torch.no_grad()
def mediation_table(model, female_tokens: torch.Tensor, male_tokens: torch.Tensor, last: torch.Tensor,
                    female_ids: torch.Tensor, male_ids: torch.Tensor) -> torch.Tensor:
    """``[n_layers, n_heads + 1]``: the indirect effect of each head (columns ``0..n_heads-1``) and of
    each layer's MLP (last column) on the bias B: ``B − B_patched``, where the patched runs take the
    component's activation (all positions) from the counterfactual run (female ↔ male name).

    Both runs go through the model as one batch (female rows first), so one patched forward per component
    patches the female rows with the male run's activation and the male rows with the female run's."""
    n = len(last)
    both = torch.cat([female_tokens, male_tokens])
    rows = torch.arange(2 * n)
    last2 = torch.cat([last, last])

    def bias(logits):
        at_last = logits[rows, last2]
        return bias_metric(at_last[:n], at_last[n:], female_ids, male_ids)
    logits, cache = model.run_with_cache(both)
    base = bias(logits)
    L, H = model.cfg.n_layers, model.cfg.n_heads
    out = torch.zeros(L, H + 1)
    for layer in range(L):
        for h in range(H + 1):
            name = hk.z(layer) if h < H else hk.mlp_out(layer)
            swapped = torch.cat([cache[name][n:], cache[name][:n]])  # each row gets its counterpart's

            def hook(act, hook, h=h, swapped=swapped):
                act = act.clone()
                if h < H:
                    act[:, :, h] = swapped[:, :, h]
                else:
                    act[:] = swapped
                return act
            out[layer, h] = base - bias(model.run_with_hooks(both, fwd_hooks=[(name, hook)]))
    return out


def _mediation_cases(seed: int) -> list[Case]:
    model, kb = _model(), _kb()
    g = torch.Generator().manual_seed(seed)
    tpls = kb.templates("job")
    pick = torch.randperm(len(tpls), generator=g)[:2].tolist()
    bp = bc.bias_prompts(kb, 1, "eval", seed=seed, templates=[tpls[i] for i in pick])
    tf, last = encode_prompts(kb, bp.female)
    tm, _ = encode_prompts(kb, bp.male)
    F, M = bc.job_group_ids(kb)
    return [Case(f"seed {seed}, prompts {bp.female} / {bp.male}", {
        "model": model, "female_tokens": tf, "male_tokens": tm, "last": last, "female_ids": F, "male_ids": M})]


def _with_patch(mode: str):
    """Wrong variants of the reference: ``mode`` says what they get wrong."""
    @torch.no_grad()
    def fn(model, female_tokens, male_tokens, last, female_ids, male_ids):
        n = len(last)
        both = torch.cat([female_tokens, male_tokens])
        rows = torch.arange(2 * n)
        last2 = torch.cat([last, last])

        def bias(logits):
            at_last = logits[rows, last2]
            return bias_metric(at_last[:n], at_last[n:], female_ids, male_ids)
        logits, cache = model.run_with_cache(both)
        base = bias(logits)
        L, H = model.cfg.n_layers, model.cfg.n_heads
        out = torch.zeros(L, H + 1)
        for layer in range(L):
            for h in range(H + 1):
                name = hk.z(layer) if h < H else hk.mlp_out(layer)
                if mode == "same run":
                    source = cache[name]
                elif mode == "one direction":  # only the female rows are patched
                    source = torch.cat([cache[name][n:], cache[name][n:]])
                else:
                    source = torch.cat([cache[name][n:], cache[name][:n]])

                def hook(act, hook, h=h, source=source):
                    act = act.clone()
                    sel = (slice(None), slice(None)) if h == H else (slice(None), slice(None), h)
                    if mode == "one direction":
                        sel = (slice(0, n),) + sel[1:]
                    if mode == "last position":
                        sel = (rows, last2) + sel[2:]
                    act[sel] = source[sel]
                    return act
                patched = bias(model.run_with_hooks(both, fwd_hooks=[(name, hook)]))
                out[layer, h] = patched if mode == "patched bias" else base - patched
        return out
    return fn


MEDIATION = Exercise(
    id="w10b_mediation", title="mediation_table", reference=mediation_table, cases=_mediation_cases,
    mistakes=[
        Mistake("same run", _with_patch("same run"),
                "take the patched activation from the counterfactual run (the male-named prompts' cache for the "
                "female-named run, and the other way round), not from the run itself: that changes nothing."),
        Mistake("one direction", _with_patch("one direction"),
                "patch both runs: the female-named run gets the male run's activation AND the male-named run "
                "gets the female run's; then compute B of the two patched runs."),
        Mistake("last position", _with_patch("last position"),
                "patch the component at every position: the pair differs from the first name on, and a head or "
                "MLP at the name's position carries the gender too."),
    ],
    hint="For each component, swap its activation with the counterfactual run's (both directions, every position) and "
         "store how much B drops. A head is one index of `hook_z`, the MLP all of `hook_mlp_out`; the table is "
         "[n_layers, n_heads + 1].",
    atol=1e-3, rtol=1e-3, visible_random_seed=False,
)


def check_mediation_table(fn, seed: int | None = None):
    """Check ``mediation_table(model, female_tokens, male_tokens, last, female_ids, male_ids) -> [n_layers, n_heads + 1]``."""
    return _visible(MEDIATION, fn, seed)


# -- 3. which output weights fine-tuning may change ------------------------------------------------
def output_weight_masks(n_layers: int, n_heads: int, d_head: int, d_model: int, d_mlp: int,
                        components: list) -> dict[str, torch.Tensor]:
    """``{"W_O": [n_layers, n_heads, d_head, d_model], "W_out": [n_layers, d_mlp, d_model]}``, 1.0 where
    a located component owns the weight (a head (L, h): ``W_O[L, h]``; the MLP of layer L: ``W_out[L]``)."""
    m = {"W_O": torch.zeros(n_layers, n_heads, d_head, d_model), "W_out": torch.zeros(n_layers, d_mlp, d_model)}
    for c in components:
        if c.kind == "head":
            m["W_O"][c.layer, c.index] = 1.0
        else:
            m["W_out"][c.layer] = 1.0
    return m


def _mask_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for L, H, dh, dm, dmlp in [(4, 3, 2, 6, 8), (6, 4, 3, 5, 7)]:
        every = [comps.head(layer, h) for layer in range(L) for h in range(H)] + [comps.mlp(layer) for layer in range(L)]
        heads = [c for c in every if c.kind == "head" and c != comps.head(1, 0)]
        hi = torch.randperm(len(heads), generator=g)[:1 + int(torch.randint(0, 3, (1,), generator=g))].tolist()
        chosen = [comps.head(1, 0)] + [heads[i] for i in hi] + [comps.mlp(int(torch.randint(0, L, (1,), generator=g)))]
        out.append(Case(f"seed {seed}, {L} layers x {H} heads, components {[str(c) for c in chosen]}", {
            "n_layers": L, "n_heads": H, "d_head": dh, "d_model": dm, "d_mlp": dmlp, "components": chosen}))
    return out


def _mask_whole_layer(n_layers, n_heads, d_head, d_model, d_mlp, components):
    m = output_weight_masks(n_layers, n_heads, d_head, d_model, d_mlp, [])
    for c in components:
        if c.kind == "head":
            m["W_O"][c.layer] = 1.0
        else:
            m["W_out"][c.layer] = 1.0
    return m


def _mask_swapped(n_layers, n_heads, d_head, d_model, d_mlp, components):
    m = output_weight_masks(n_layers, n_heads, d_head, d_model, d_mlp, [])
    for c in components:
        if c.kind == "head":
            if c.index < n_layers and c.layer < n_heads:
                m["W_O"][c.index, c.layer] = 1.0
        else:
            m["W_out"][c.layer] = 1.0
    return m


MASKS = Exercise(
    id="w10b_weight_masks", title="output_weight_masks", reference=output_weight_masks, cases=_mask_cases,
    mistakes=[
        Mistake("whole attention layer", _mask_whole_layer,
                "a head owns only its own slice `W_O[layer, head]`; the other heads of its layer stay frozen."),
        Mistake("layer and head swapped", _mask_swapped,
                "index `W_O[c.layer, c.index]`: layer first, then head."),
        Mistake("MLPs left out", lambda n_layers, n_heads, d_head, d_model, d_mlp, components: output_weight_masks(
            n_layers, n_heads, d_head, d_model, d_mlp, [c for c in components if c.kind == "head"]),
                "located MLPs are fine-tuned too: set `W_out[layer]` for each MLP component."),
    ],
    normalize=lambda m: (m["W_O"], m["W_out"]) if isinstance(m, dict) and {"W_O", "W_out"} <= set(m) else m,
    hint="Start from zero masks of the two shapes and mark only what each located component owns: a head its own "
         "slice of `W_O` (layer first, then head), an MLP the whole `W_out` of its layer.",
)


def check_output_weight_masks(fn, seed: int | None = None):
    """Check ``output_weight_masks(n_layers, n_heads, d_head, d_model, d_mlp, components) -> dict``."""
    return _visible(MASKS, fn, seed)


# -- 4. counterfactual data: swap a biography's gender -------------------------------------------
def swap_gender(doc: str, name: str, new_name: str) -> str:
    """``doc`` (words separated by single spaces) with the person ``name`` renamed ``new_name`` (another
    first name, the same last name) and every pronoun swapped: He <-> She, he <-> she."""
    swap = {"He": "She", "She": "He", "he": "she", "she": "he"}
    words = doc.split(" ")
    first, last = name.split()
    out = []
    for i, w in enumerate(words):
        if w == first and i + 1 < len(words) and words[i + 1] == last:
            out.append(new_name.split()[0])
        else:
            out.append(swap.get(w, w))
    return " ".join(out)


def _swap_cases(seed: int) -> list[Case]:
    kb = _kb()
    g = torch.Generator().manual_seed(seed)
    start = int(torch.randint(0, 5000, (1,), generator=g))
    docs = kb.training_documents(400, start)
    names = set(kb.subjects)

    def person(d):
        w = d.split(" ")
        found = [f"{a} {b}" for a, b in zip(w, w[1:]) if f"{a} {b}" in names]
        return found[0] if found else None
    with_upper = [d for d in docs if person(d) and (" He " in d or " She " in d)]
    with_lower = [d for d in docs if person(d) and (" he " in d or " she " in d)]
    out = []
    for pool in (with_upper, with_lower):
        d = pool[int(torch.randint(0, len(pool), (1,), generator=g))]
        n = person(d)
        out.append(Case(f"seed {seed}: {d!r}", {"doc": d, "name": n, "new_name": bc.swap_first_name(kb, n)}))
    return out


def _chained_replace(doc, name, new_name):
    out = doc.replace(name, new_name)
    for a, b in (("He ", "She "), ("She ", "He "), (" he ", " she "), (" she ", " he ")):
        out = out.replace(a, b)
    return out


SWAP = Exercise(
    id="w10b_swap_gender", title="swap_gender", reference=swap_gender, cases=_swap_cases,
    mistakes=[
        Mistake("chained replace", _chained_replace,
                "replacing He -> She and then She -> He turns every pronoun back into He: swap word by word, in one pass."),
        Mistake("name only", lambda doc, name, new_name: doc.replace(name, new_name),
                "swap the pronouns too, or the counterfactual text still says which gender the person is."),
        Mistake("capitalised pronouns only", lambda doc, name, new_name: " ".join(
            {"He": "She", "She": "He"}.get(w, w) for w in doc.replace(name, new_name).split(" ")),
                "lower-case pronouns count too ('In daily life, he works as a ...'): swap he <-> she as well."),
        Mistake("pronouns only", lambda doc, name, new_name: " ".join(
            {"He": "She", "She": "He", "he": "she", "she": "he"}.get(w, w) for w in doc.split(" ")),
                "rename the person as well: the first name marks the gender in this knowledge base."),
    ],
    hint="Work word by word in a single pass (two passes of replace undo each other): the first name changes only "
         "where the full name occurs, and every pronoun swaps, capitalised or not.",
)


def check_swap_gender(fn, seed: int | None = None):
    """Check ``swap_gender(doc, name, new_name) -> str``."""
    return _visible(SWAP, fn, seed)


EXERCISES = {ex.id: ex for ex in (METRIC, MEDIATION, MASKS, SWAP)}
