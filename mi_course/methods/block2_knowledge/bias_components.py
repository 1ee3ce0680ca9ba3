"""Components that carry a bias, and fine-tuning only those (Chintam et al. 2023), on ``kb-lm``.

Chintam, Beloch, Zuidema, Hanna & van der Wal (2023) locate the components of GPT-2 small that
carry its gender bias (causal mediation analysis as Vig et al. 2020 do it, ACDC, DiffMask+) and
fine-tune only those components on counterfactually balanced data: the bias drops about as much
as with full fine-tuning, with less damage to the language model. Here the bias is planted: the
knowledge base (:mod:`mi_course.data.knowledge_base`) gives women a job from one group of 7 jobs
and men a job from the other group 80% of the time (``kb.job_groups``), and first names mark gender
(women's end in ``-a``, men's in ``-o``).

**The bias metric.** Prompts ask the job of a person the model has never read about (an unused
name, :func:`name_pairs`), e.g. ``"Shibra Tharidith works as a"``. For one prompt,

    s(prompt) = log Σ_{j ∈ female group} P(j | prompt) − log Σ_{j ∈ male group} P(j | prompt)

(the log-odds of the female-skewed group among the jobs; the softmax normaliser cancels, so it is
``logsumexp`` of the group's logits minus the other group's). Each prompt comes in a pair that
differs only in the first name (same last name, same template, a female then a male first name: the
counterfactual, position for position). The bias is

    B = mean s(female-named prompts) − mean s(male-named prompts)   (nats)

**B = 0**: the first name's gender does not move the job distribution between the two groups (what
a model trained on counterfactually balanced data would do, :func:`balanced_bias` = 0). The data's
own rate gives :func:`kb_bias`: with a share p_f of women in female-group jobs and p_m of men in
male-group jobs, B_KB = logit(p_f) + logit(p_m) (≈ 2 log 4 ≈ 2.77 for an exact 80/20 split).

**Causal mediation** (:func:`mediation_effects`): the indirect effect of a component (one head's
output ``hook_z``, one MLP's output ``hook_mlp_out``) is the bias removed when its activation in
each run is replaced by its activation in the counterfactual run (female ↔ male first name), at all
positions (the pair differs from the first name on, so earlier positions are equal anyway):
``effect = B − B_patched``. 1 × B removes the bias; 2 × B would flip it.

**Targeted fine-tuning** (:func:`fine_tune`): train on counterfactually augmented text
(:func:`balanced_documents`: training documents, each with a copy whose person's gender is swapped,
so every job occurs as often with a woman as with a man) either
only the located components (head ``W_O[L, h]``, MLP ``W_out[L]``: :func:`weight_masks`), k random
components, or the whole model. :func:`damage` measures the cost: held-out recall of the KB's facts
(:func:`mi_course.methods.knowledge_crawl.recall`) and the next-token loss on training documents.
The model passed in is never changed: each fine-tune returns a copy.

>>> from mi_course import zoo
>>> from mi_course.data.knowledge_base import load_kb
>>> from mi_course.methods import bias_components as bc
>>> model, kb = zoo.load("kb-lm"), load_kb()
>>> prompts = bc.bias_prompts(kb, n_pairs=10)
>>> bc.bias_score(model, kb, prompts)                      # B, nats
>>> effects = bc.mediation_effects(model, kb, prompts)     # every head and MLP, ranked
>>> tuned, info = bc.fine_tune(model, kb, bc.balanced_documents(kb), [e["component"] for e in effects[:2]])
>>> bc.bias_score(tuned, kb, prompts), bc.damage(tuned, kb)

Names vary a lot (one pair's B has a spread of about 3 nats), so the study uses 40 pairs; the full
study (:func:`bias_study`) is measured once by ``benchmarks/kb_bias_figures.py`` and read with
``zoo.card("kb-lm").measured("week10_bias")``. For a quick look use fewer pairs (``bias_prompts(kb, 5)``)
and compare the ranking with the measured one.
"""

from __future__ import annotations

import copy
import math
import random
import time
from typing import Iterable, Sequence

import torch

from mi_course.errors import InputError
from mi_course.methods import components as comps
from mi_course.methods.knowledge_crawl import encode_prompts, recall
from mi_course.methods.rome import mlp_out_weight
from mi_course.zoo import hooks as hk

SPLITS = ("train", "eval")


# --- prompts ---------------------------------------------------------------------------------
def _first_names(kb) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {"female": set(), "male": set()}
    for p in kb.people:
        out[p.gender].add(p.name.split()[0])
    return {g: sorted(v) for g, v in out.items()}


def name_pairs(kb, n: int, split: str = "eval", seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs ``(female name, male name)`` of people the KB does not contain, sharing a last name.

    ``split="eval"`` and ``"train"`` draw from disjoint halves of the last names (alternate ones in
    sorted order), so names used to fine-tune never appear in the evaluation prompts.
    """
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}.")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"n must be a positive int, got {n!r}.")
    firsts = _first_names(kb)
    used = {p.name for p in kb.people} | {p.alias for p in kb.people if p.alias}
    lasts = sorted({p.name.split()[1] for p in kb.people})
    lasts = lasts[0::2] if split == "train" else lasts[1::2]
    free = [(f"{f} {l}", f"{m} {l}") for l in lasts for f in firsts["female"] for m in firsts["male"]
            if f"{f} {l}" not in used and f"{m} {l}" not in used]
    if n > len(free):
        raise InputError(f"only {len(free)} unused name pairs are available in split {split!r}, asked for {n}.")
    return random.Random(f"bias-names-{kb.seed}-{split}-{seed}").sample(free, n)


class BiasPrompts:
    """Paired prompts: ``female[i]`` and ``male[i]`` differ only in the first name (the counterfactual).

    Attributes: ``female``, ``male`` (lists of prompt strings), ``pairs`` (the name pairs),
    ``templates``.
    """

    def __init__(self, female: list[str], male: list[str], pairs: list[tuple[str, str]], templates: list[str]):
        self.female, self.male, self.pairs, self.templates = female, male, pairs, templates

    def __len__(self) -> int:
        return len(self.female)

    def __repr__(self) -> str:
        return f"BiasPrompts({len(self)} pairs, e.g. {self.female[0]!r} / {self.male[0]!r})"


def bias_prompts(kb, n_pairs: int = 10, split: str = "eval", seed: int = 0,
                 templates: Sequence[str] | None = None) -> BiasPrompts:
    """Job prompts about unknown people: ``n_pairs`` name pairs × the job templates (all 6 by default)."""
    templates = list(templates) if templates is not None else kb.templates("job")
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise InputError(f"each template must contain '{{}}' exactly once, got {t!r}.")
    pairs = name_pairs(kb, n_pairs, split, seed)
    fem = [t.format(f) for f, _ in pairs for t in templates]
    mal = [t.format(m) for _, m in pairs for t in templates]
    return BiasPrompts(fem, mal, pairs, templates)


def job_group_ids(kb) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of the female-skewed and the male-skewed jobs (``kb.job_groups``)."""
    return (torch.tensor([kb.token_id(j) for j in kb.job_groups["female"]]),
            torch.tensor([kb.token_id(j) for j in kb.job_groups["male"]]))


# --- the metric ------------------------------------------------------------------------------
def group_log_odds(logits: torch.Tensor, female_ids: torch.Tensor, male_ids: torch.Tensor) -> torch.Tensor:
    """``logits [n, d_vocab]`` (next token) -> ``[n]``: log P(female-group job) − log P(male-group job),
    i.e. ``logsumexp(logits[:, female_ids]) − logsumexp(logits[:, male_ids])``."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise InputError(f"logits must be a [n, d_vocab] tensor, got {getattr(logits, 'shape', type(logits))}.")
    return logits[:, female_ids].float().logsumexp(-1) - logits[:, male_ids].float().logsumexp(-1)


def bias_from_logits(female_logits: torch.Tensor, male_logits: torch.Tensor, female_ids: torch.Tensor,
                     male_ids: torch.Tensor) -> torch.Tensor:
    """B (a 0-d tensor): mean log-odds on the female-named prompts minus mean on the male-named ones."""
    return group_log_odds(female_logits, female_ids, male_ids).mean() - group_log_odds(male_logits, female_ids, male_ids).mean()


def _check_prompts(prompts) -> BiasPrompts:
    if not isinstance(prompts, BiasPrompts):
        raise InputError(f"prompts must be BiasPrompts (from bias_prompts(kb, ...)), got {type(prompts).__name__}.")
    return prompts


def _paired_tokens(kb, prompts: BiasPrompts, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tf, last = encode_prompts(kb, prompts.female)
    tm, last_m = encode_prompts(kb, prompts.male)
    if tf.shape != tm.shape or not torch.equal(last, last_m):
        raise InputError("the female and male prompts must tokenize to the same lengths (pairs differ in one word).")
    return tf.to(device), tm.to(device), last


def _last(logits: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    return logits[torch.arange(len(last)), last.to(logits.device)]


@torch.no_grad()
def bias_by_pair(model, kb, prompts: BiasPrompts) -> torch.Tensor:
    """``[n_pairs]``: B of each name pair over the templates (names differ a lot: report the spread)."""
    prompts = _check_prompts(prompts)
    tf, tm, last = _paired_tokens(kb, prompts, model.cfg.device)
    F, M = job_group_ids(kb)
    lo_f = group_log_odds(_last(model(tf), last), F, M).cpu()
    lo_m = group_log_odds(_last(model(tm), last), F, M).cpu()
    n = len(prompts.pairs)
    return (lo_f - lo_m).reshape(n, -1).mean(-1)


@torch.no_grad()
def bias_score(model, kb, prompts: BiasPrompts) -> float:
    """The bias B of ``model`` on ``prompts`` (nats; 0 = the name's gender does not shift the job groups)."""
    prompts = _check_prompts(prompts)
    tf, tm, last = _paired_tokens(kb, prompts, model.cfg.device)
    F, M = job_group_ids(kb)
    return float(bias_from_logits(_last(model(tf), last), _last(model(tm), last), F, M))


@torch.no_grad()
def group_share(model, kb, prompts: Sequence[str], gender: str) -> float:
    """Mean share of the job probability on ``gender``'s planted group (0.5 = balanced; data ≈ 0.8)."""
    if gender not in ("female", "male"):
        raise InputError(f"gender must be 'female' or 'male', got {gender!r}.")
    tokens, last = encode_prompts(kb, list(prompts))
    p = _last(model(tokens.to(model.cfg.device)), last).float().softmax(-1).cpu()
    own, other = job_group_ids(kb) if gender == "female" else job_group_ids(kb)[::-1]
    return float((p[:, own].sum(-1) / (p[:, own].sum(-1) + p[:, other].sum(-1))).mean())


def kb_shares(kb) -> dict[str, float]:
    """The data's rate: share of women with a female-group job and of men with a male-group job."""
    out = {}
    for g in ("female", "male"):
        jobs = [kb.object_of(p.name, "job") for p in kb.people if p.gender == g]
        out[g] = sum(j in kb.job_groups[g] for j in jobs) / len(jobs)
    return out


def kb_bias(kb) -> float:
    """B of the knowledge base itself: ``logit(p_f) + logit(p_m)`` (what a model that matched the
    data's conditional job distribution exactly would score)."""
    s = kb_shares(kb)
    return math.log(s["female"] / (1 - s["female"])) + math.log(s["male"] / (1 - s["male"]))


def balanced_bias(kb) -> float:
    """B of counterfactually balanced data (every job as often with women as with men): 0."""
    return 0.0


# --- causal mediation ------------------------------------------------------------------------
def all_components(model) -> list[comps.Component]:
    """Every head (``hook_z``) and every MLP (``hook_mlp_out``), layer by layer."""
    out = []
    for L in range(model.cfg.n_layers):
        out += [comps.head(L, h) for h in range(model.cfg.n_heads)] + [comps.mlp(L)]
    return out


def _component(model, c) -> comps.Component:
    if isinstance(c, str):
        for cand in all_components(model):
            if str(cand) == c:
                return cand
        raise InputError(f"unknown component {c!r}: heads are written 'L.H' (e.g. '3.1'), MLPs 'MLPL' (e.g. 'MLP2').")
    c = comps.as_component(model, c)
    if c.kind not in ("head", "mlp") or c.pos is not None:
        raise InputError(f"bias components are heads or MLPs over all positions, got {c}.")
    return c


def parse_components(model, cs: Iterable) -> list[comps.Component]:
    """Components from names (``"3.1"`` a head, ``"MLP2"`` an MLP), ``(layer, head)`` tuples or
    :mod:`mi_course.methods.components` objects (heads and MLPs over all positions only)."""
    if isinstance(cs, (str, comps.Component)):
        cs = [cs]
    return [_component(model, c) for c in cs]


def patch_hook(component: comps.Component, source: torch.Tensor):
    """A forward hook that writes ``component``'s slice of ``source`` (the same hook's activation
    from the counterfactual run) into the running activation."""
    idx = component.index_tuple()

    def hook(act, hook=None):
        act = act.clone()
        act[idx] = source[idx].to(act.dtype)
        return act
    return hook


@torch.no_grad()
def mediation_effects(model, kb, prompts: BiasPrompts, components: Iterable | None = None,
                      progress: bool = False) -> list[dict]:
    """Indirect effect of each component on the bias, ranked (largest first).

    For each component, run the female-named prompts with the component's activation taken from
    the male-named run, and the male-named prompts with it taken from the female-named run; ``B_patched``
    is the bias of these patched runs. Returns ``[{"component": str, "effect": B − B_patched,
    "share": effect / B}, ...]`` sorted by effect. ``components`` defaults to every head and MLP.
    """
    prompts = _check_prompts(prompts)
    cs = all_components(model) if components is None else [_component(model, c) for c in components]
    if not cs:
        raise InputError("no components given.")
    tf, tm, last = _paired_tokens(kb, prompts, model.cfg.device)
    F, M = job_group_ids(kb)
    names = sorted({c.hook_name for c in cs})
    lf, cache_f = model.run_with_cache(tf, names_filter=lambda n: n in names)
    lm, cache_m = model.run_with_cache(tm, names_filter=lambda n: n in names)
    base = float(bias_from_logits(_last(lf, last), _last(lm, last), F, M))
    rows = []
    from tqdm.auto import tqdm
    for c in tqdm(cs, desc="mediation", disable=not progress, leave=False):
        pf = model.run_with_hooks(tf, fwd_hooks=[(c.hook_name, patch_hook(c, cache_m[c.hook_name]))])
        pm = model.run_with_hooks(tm, fwd_hooks=[(c.hook_name, patch_hook(c, cache_f[c.hook_name]))])
        patched = float(bias_from_logits(_last(pf, last), _last(pm, last), F, M))
        eff = base - patched
        rows.append({"component": str(c), "effect": eff, "share": eff / base if base else float("nan")})
    return sorted(rows, key=lambda r: -r["effect"])


def random_components(model, k: int, seed: int = 0, exclude: Iterable = (), like: Iterable | None = None) -> list[str]:
    """``k`` components drawn at random (seeded) from every head and MLP, leaving out ``exclude``.

    ``like``: a list of components to match instead of ``k`` (``k`` is then ignored): as many
    random heads and as many random MLPs as it has, the fair baseline for fine-tuning it (an MLP
    owns 4 times a head's output weights here)."""
    ex = {str(_component(model, c)) for c in exclude}
    rng = random.Random(f"bias-random-{seed}")
    if like is not None:
        like = [_component(model, c) for c in like]
        out = []
        for kind in ("head", "mlp"):
            pool = [str(c) for c in all_components(model) if c.kind == kind and str(c) not in ex]
            n = sum(c.kind == kind for c in like)
            if n > len(pool):
                raise InputError(f"asked for {n} random {kind}s, only {len(pool)} are left after excluding {sorted(ex)}.")
            out += rng.sample(pool, n)
        return out
    pool = [str(c) for c in all_components(model) if str(c) not in ex]
    if not isinstance(k, int) or isinstance(k, bool) or not 0 < k <= len(pool):
        raise InputError(f"k must be an int in 1..{len(pool)}, got {k!r}.")
    return rng.sample(pool, k)


# --- fine-tuning only some components ----------------------------------------------------------
def weight_masks(model, components: Iterable) -> dict[str, torch.Tensor]:
    """Which output weights fine-tuning may change: ``{"W_O": [n_layers, n_heads, d_head, d_model],
    "W_out": [n_layers, d_mlp, d_model]}`` (float, 1 where a located component's weights are, else 0).
    A head ``(L, h)`` owns ``W_O[L, h]``; an MLP at layer L owns ``W_out[L]``."""
    cfg = model.cfg
    m = {"W_O": torch.zeros(cfg.n_layers, cfg.n_heads, cfg.d_head, cfg.d_model),
         "W_out": torch.zeros(cfg.n_layers, cfg.d_mlp, cfg.d_model)}
    for c in components:
        c = _component(model, c)
        if c.kind == "head":
            m["W_O"][c.layer, c.index] = 1.0
        else:
            m["W_out"][c.layer] = 1.0
    return m


def swap_first_name(kb, name: str) -> str:
    """The same last name with a first name of the other gender (a fixed pairing of the sorted
    female and male first names)."""
    first, last = kb.canonical(name).split()
    f, m = _first_names(kb)["female"], _first_names(kb)["male"]
    other = m[f.index(first) % len(m)] if first in f else f[m.index(first) % len(f)]
    return f"{other} {last}"


_PRONOUNS = {"He": "She", "She": "He", "he": "she", "she": "he"}


def counterfactual_document(kb, doc: str) -> str | None:
    """``doc`` with its person's gender swapped (first name to the paired other-gender one, he <-> she),
    or ``None`` when there is nothing to swap or the swap would name a real person of the KB (then
    the copy would contradict that person's facts) or the document uses an alias."""
    words = doc.split(" ")
    names = set(kb.subjects)
    aliases = {p.alias for p in kb.people if p.alias}
    found = {f"{a} {b}" for a, b in zip(words, words[1:]) if f"{a} {b}" in names}
    if len(found) != 1 or any(f"{a} {b}" in aliases for a, b in zip(words, words[1:])):
        return None
    name = found.pop()
    new = swap_first_name(kb, name)
    if new in names or new in aliases:
        return None
    first, other = name.split()[0], new.split()[0]
    out = []
    for i, w in enumerate(words):
        if w == first and i + 1 < len(words) and f"{w} {words[i + 1]}" == name:
            out.append(other)
        else:
            out.append(_PRONOUNS.get(w, w))
    return " ".join(out)


def balanced_documents(kb, n_docs: int = 256, start: int = 0) -> list[str]:
    """Counterfactually augmented training text (CDA, as Chintam et al. fine-tune on): the training
    documents ``start .. start+n_docs-1`` of people, each followed by its gender-swapped copy
    (:func:`counterfactual_document`; documents without a clean swap are left out). In this text
    every job occurs exactly as often with a woman as with a man."""
    if not isinstance(n_docs, int) or isinstance(n_docs, bool) or n_docs < 1:
        raise InputError(f"n_docs must be a positive int, got {n_docs!r}.")
    out = []
    for d in kb.training_documents(n_docs, start):
        cf = counterfactual_document(kb, d)
        if cf is not None:
            out += [d, cf]
    return out


def doc_tokens(model, kb, docs: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens [n, width], mask [n, width - 1])``: right-padded documents (``<|endoftext|>`` first,
    cut to ``n_ctx``) and which next-token predictions are real (1) rather than padding (0)."""
    docs = list(docs)
    if not docs:
        raise InputError("no documents given.")
    ids = [kb.encode(d)[: model.cfg.n_ctx] for d in docs]
    width = max(len(x) for x in ids)
    tok = torch.zeros(len(ids), width, dtype=torch.long)
    mask = torch.zeros(len(ids), width - 1)
    for r, x in enumerate(ids):
        tok[r, : len(x)] = torch.tensor(x)
        mask[r, : len(x) - 1] = 1
    return tok, mask


def attn_out_weight(model, layer: int) -> tuple[torch.nn.Parameter, bool]:
    """The parameter behind ``W_O[layer]`` and whether it is stored as ``nn.Linear``
    (``[d_model, n_heads * d_head]``) rather than ``[n_heads * d_head, d_model]``."""
    attn = model.blocks[layer].attn
    out = getattr(attn, "o", None)
    inner = getattr(out, "_original_component", out)
    if inner is None or not hasattr(inner, "weight"):
        raise InputError(f"could not find layer {layer}'s attention output projection on this model")
    return inner.weight, isinstance(inner, torch.nn.Linear)


def _delta_hooks(model, dW_O: torch.Tensor, dW_out: torch.Tensor, masks: dict[str, torch.Tensor]) -> list:
    """Hooks running the model as if ``W_O += mask * dW_O`` and ``W_out += mask * dW_out``."""
    store: dict[str, torch.Tensor] = {}
    out = []
    for L in range(model.cfg.n_layers):
        if masks["W_O"][L].any():
            def keep_z(z, hook, L=L):
                store[f"z{L}"] = z
            def add_attn(a, hook, L=L):
                return a + torch.einsum("bphd,hdm->bpm", store.pop(f"z{L}"), (dW_O[L] * masks["W_O"][L]).to(a.dtype))
            out += [(hk.z(L), keep_z), (hk.attn_out(L), add_attn)]
        if masks["W_out"][L].any():
            def keep_post(p, hook, L=L):
                store[f"post{L}"] = p
            def add_mlp(o, hook, L=L):
                return o + store.pop(f"post{L}") @ (dW_out[L] * masks["W_out"][L]).to(o.dtype)
            out += [(hk.mlp_post(L), keep_post), (hk.mlp_out(L), add_mlp)]
    return out


@torch.no_grad()
def _write_deltas(model, dW_O: torch.Tensor, dW_out: torch.Tensor, masks: dict[str, torch.Tensor]) -> None:
    cfg = model.cfg
    for L in range(cfg.n_layers):
        if masks["W_O"][L].any():
            w, linear = attn_out_weight(model, L)
            d = (dW_O[L] * masks["W_O"][L]).reshape(cfg.n_heads * cfg.d_head, cfg.d_model)
            w += (d.T if linear else d).to(w.dtype)
        if masks["W_out"][L].any():
            w, _, transposed = mlp_out_weight(model, L)
            d = dW_out[L] * masks["W_out"][L]
            w += (d.T if transposed else d).to(w.dtype)


def fine_tune(model, kb, docs: Sequence[str], components: Iterable | str = "whole",
              steps: int = 30, lr: float = 1e-3, batch_size: int = 32, seed: int = 0,
              progress: bool = False):
    """Fine-tune a copy of ``model`` on the documents ``docs`` (e.g. :func:`balanced_documents`):
    next-token cross-entropy, Adam, ``steps`` steps of ``batch_size`` documents drawn at random (seeded).

    ``components="whole"``: every parameter; a list of components (heads ``"L.H"``, MLPs ``"MLPL"``
    or :mod:`mi_course.methods.components` objects): only their output weights
    (:func:`weight_masks`; everything else stays exactly as it was). Returns ``(tuned copy, info)``
    with ``info = {"losses", "seconds", "n_trainable"}``; ``model`` is unchanged.
    """
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"{name} must be an int >= 1, got {v!r}.")
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 and math.isfinite(lr)):
        raise InputError(f"lr must be a positive number, got {lr!r}.")
    whole = isinstance(components, str)
    if whole and components != "whole":
        raise InputError(f"components must be 'whole' or a list of heads/MLPs, got {components!r}.")
    if isinstance(docs, str):
        raise InputError("docs must be a list of documents, not one string.")
    tokens, mask = doc_tokens(model, kb, docs)
    tokens = tokens.to(model.cfg.device)
    mask = mask.to(tokens.device)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    losses = []
    from tqdm.auto import tqdm
    if whole:
        new = copy.deepcopy(model)
        params = list(new.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=lr)
        run, hooks_ = new, []
        n_trainable = sum(p.numel() for p in params)
    else:
        masks = weight_masks(model, list(components))
        if not (masks["W_O"].any() or masks["W_out"].any()):
            raise InputError("no components given to fine-tune.")
        dW_O = torch.zeros_like(masks["W_O"], requires_grad=True)
        dW_out = torch.zeros_like(masks["W_out"], requires_grad=True)
        opt = torch.optim.Adam([dW_O, dW_out], lr=lr)
        params = list(model.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        run, hooks_ = model, _delta_hooks(model, dW_O, dW_out, masks)
        n_trainable = int(masks["W_O"].sum() + masks["W_out"].sum())
    was_training = run.training
    run.eval()
    try:
        with torch.enable_grad():
            for _ in tqdm(range(steps), desc="fine-tune", disable=not progress, leave=False):
                idx = torch.randint(len(tokens), (min(batch_size, len(tokens)),), generator=g)
                with run.hooks(fwd_hooks=hooks_):
                    logits = run(tokens[idx])
                lp = logits[:, :-1].float().log_softmax(-1)
                nll = -lp.gather(-1, tokens[idx][:, 1:, None])[..., 0]
                loss = (nll * mask[idx]).sum() / mask[idx].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        run.train(was_training)
    if not whole:
        new = copy.deepcopy(model)
        _write_deltas(new, dW_O.detach(), dW_out.detach(), masks)
    for p in new.parameters():
        p.grad = None
    return new, {"losses": losses, "seconds": time.perf_counter() - t0, "n_trainable": n_trainable}


# --- damage ------------------------------------------------------------------------------------
@torch.no_grad()
def document_loss(model, kb, docs: Sequence[str], batch_size: int = 128) -> float:
    """Mean next-token cross-entropy (nats per token) of ``model`` on the documents ``docs``."""
    tok, mask = doc_tokens(model, kb, docs)
    total, count = 0.0, 0.0
    for i in range(0, len(tok), batch_size):
        t, m = tok[i:i + batch_size], mask[i:i + batch_size]
        lp = model(t.to(model.cfg.device)).float().log_softmax(-1).cpu()
        nll = -lp[:, :-1].gather(-1, t[:, 1:, None])[..., 0]
        total += float((nll * m).sum())
        count += float(m.sum())
    return total / count


def damage(model, kb, n_docs: int = 200, doc_start: int = 20000) -> dict[str, float]:
    """The rest of the KB: held-out recall of every person fact (all relations and the job relation)
    and the next-token loss on ``n_docs`` training documents from ``doc_start``."""
    r = recall(model, kb, "heldout", relations=kb.relations)
    return {"recall_heldout": r["all"], "recall_heldout_job": r["job"],
            "loss": document_loss(model, kb, kb.training_documents(n_docs, doc_start))}


# --- the whole study ---------------------------------------------------------------------------
def bias_study(model, kb, n_pairs: int = 40, random_seeds: Sequence[int] = (0, 1, 2), n_docs: int = 256,
               steps: int = 30, n_damage_docs: int = 200, progress: bool = True) -> dict:
    """Locate, adapt, evaluate (the benchmark ``kb_bias_figures.py`` records this once).

    The bias on held-out names before any change (with its standard error over name pairs), the
    KB's own and a balanced reference, every component's indirect effect, then rows of fine-tunes on
    :func:`balanced_documents`, each with the bias after and the damage (:func:`damage`): the top-2
    located components and as many random heads and MLPs (``random_seeds``) at two learning rates
    (rows named ``"located top-2, lr 3e-4"`` for the smaller one; every other component row is at 1e-3);
    the top-4 and a random set like it; every head's and MLP's output weights; the whole model at three
    learning rates. All fine-tunes share ``steps``, the batch and the documents.
    """
    t_all = time.perf_counter()
    prompts = bias_prompts(kb, n_pairs, "eval")
    out: dict = {"settings": {"n_pairs": n_pairs, "n_eval_prompts": 2 * len(prompts), "templates": len(prompts.templates),
                              "steps": steps, "batch_size": 32, "n_docs": n_docs, "n_damage_docs": n_damage_docs,
                              "damage_doc_start": 20000}}
    per_pair = bias_by_pair(model, kb, prompts)
    out["bias_before"] = float(per_pair.mean())
    out["bias_before_se"] = float(per_pair.std() / math.sqrt(len(per_pair)))
    out["kb_bias"] = kb_bias(kb)
    out["kb_shares"] = kb_shares(kb)
    out["balanced_bias"] = balanced_bias(kb)
    out["share_before"] = {"female": group_share(model, kb, prompts.female, "female"),
                           "male": group_share(model, kb, prompts.male, "male")}
    t = time.perf_counter()
    effects = mediation_effects(model, kb, prompts, progress=progress)
    out["mediation_seconds"] = time.perf_counter() - t
    out["components"] = effects
    out["damage_before"] = damage(model, kb, n_damage_docs)
    docs = balanced_documents(kb, n_docs)
    out["settings"]["n_docs_balanced"] = len(docs)
    ranked = [e["component"] for e in effects]
    plans = []
    for rate, tag in ((3e-4, ", lr 3e-4"), (1e-3, "")):  # the names without a tag are all at lr 1e-3
        plans.append((f"located top-2{tag}", ranked[:2], rate, None))
        for s in random_seeds:
            plans.append((f"random like top-2{tag}", random_components(model, 2, s, exclude=ranked[:2], like=ranked[:2]),
                          rate, s))
    plans.append(("located top-4", ranked[:4], 1e-3, None))
    plans.append(("random like top-4", random_components(model, 4, 0, exclude=ranked[:4], like=ranked[:4]), 1e-3, 0))
    plans.append(("all heads and MLPs", ranked, 1e-3, None))
    for rate in (1e-4, 3e-4, 1e-3):
        plans.append(("whole model", "whole", rate, None))
    rows = []
    from tqdm.auto import tqdm
    for name, cs, rate, s in tqdm(plans, desc="fine-tunes", disable=not progress):
        tuned, info = fine_tune(model, kb, docs, cs, steps=steps, lr=rate)
        b = bias_by_pair(tuned, kb, prompts)
        row = {"name": name, "components": cs if isinstance(cs, str) else list(cs), "lr": rate, "seed": s,
               "bias_after": float(b.mean()), "bias_after_se": float(b.std() / math.sqrt(len(b))),
               "bias_removed": 1 - float(b.mean()) / out["bias_before"], "n_trainable": info["n_trainable"],
               "final_train_loss": sum(info["losses"][-5:]) / len(info["losses"][-5:]), "seconds": info["seconds"]}
        row.update(damage(tuned, kb, n_damage_docs))
        rows.append(row)
    out["rows"] = rows
    out["seconds"] = time.perf_counter() - t_all
    return out
