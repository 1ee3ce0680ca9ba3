"""Crawling the internal knowledge base of a language model (Cohen et al. 2023), on ``kb-lm``.

Cohen, Geva, Berant & Globerson (2023) extract a knowledge graph from GPT-3 by prompting:
for a seed subject they generate the relations it has, ask for the objects of each relation
(with several paraphrases of the question), let the model say "don't know" when it is unsure,
and add the confident answers as edges; new objects become new subjects. On GPT-3 they could
only estimate precision (by hand). Here the true graph is the generator's knowledge base
(:mod:`mi_course.data.knowledge_base`), so we score precision *and* recall per relation.

Pieces (students build the starred ones in week 07):

- :func:`next_token_logits` / :func:`predict` -- batched next-token prediction on prompt strings.
- :func:`recall` -- share of facts whose top-1 next token is the object (the card's figure).
- :func:`query` * -- ask one (subject, relation) through several paraphrases, average the
  probabilities, answer the top object or ``None`` ("don't know") below a confidence threshold.
- :func:`crawl` * -- breadth-first crawl from seed subjects into a graph of confident edges.
- :func:`score_graph` * -- precision, recall and F1 per relation against the ground truth.
- :func:`error_table` -- which facts the model gets wrong, with the person's training frequency
  and the template, for error analysis.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from mi_course.errors import InputError

UNKNOWN = None  # what query() returns for "don't know"


def encode_prompts(kb, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens [n, max_len], last [n])``: prompts right-padded with ``<|endoftext|>`` (id 0)
    and the position of each prompt's last token. Position 0 is ``<|endoftext|>``."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise InputError("no prompts given.")
    ids = [kb.encode(p) for p in prompts]
    width = max(len(i) for i in ids)
    tokens = torch.zeros(len(ids), width, dtype=torch.long)
    for row, i in enumerate(ids):
        tokens[row, : len(i)] = torch.tensor(i)
    return tokens, torch.tensor([len(i) - 1 for i in ids])


@torch.no_grad()
def next_token_logits(model, kb, prompts: Sequence[str], batch_size: int = 512) -> torch.Tensor:
    """Logits of the next token after each prompt: ``[n_prompts, d_vocab]``."""
    out = []
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    for i in range(0, len(prompts), batch_size):
        tokens, last = encode_prompts(kb, prompts[i:i + batch_size])
        logits = model(tokens.to(model.cfg.device))
        out.append(logits[torch.arange(len(last)), last].float().cpu())
    return torch.cat(out)


def object_ids(kb, relation: str) -> torch.Tensor:
    """Token ids of the candidate objects of ``relation`` (in ``kb.objects(relation)`` order)."""
    return torch.tensor([kb.token_id(o) for o in kb.objects(relation)])


@torch.no_grad()
def predict(model, kb, prompts: Sequence[str], relation: str | None = None) -> list[str]:
    """Top-1 next word after each prompt (over the whole vocabulary, or over ``relation``'s objects)."""
    logits = next_token_logits(model, kb, prompts)
    if relation is None:
        return [kb.vocabulary[i] for i in logits.argmax(-1).tolist()]
    cands = kb.objects(relation)
    return [cands[i] for i in logits[:, object_ids(kb, relation)].argmax(-1).tolist()]


@torch.no_grad()
def recall(model, kb, split: str = "heldout", relations: Iterable[str] | None = None,
           subjects: Iterable[str] | None = None, all_train_templates: bool = True) -> dict[str, float]:
    """Share of facts whose top-1 next token (whole vocabulary) is the true object, per relation.

    ``split="heldout"``: each fact's held-out template; ``"train"``: its training templates
    (every one, or the first if ``all_train_templates=False``), averaged over prompts.
    Returns ``{relation: recall, ..., "all": recall over every prompt}``.
    """
    relations = list(relations) if relations is not None else list(kb.relations)
    subjects = list(subjects) if subjects is not None else None
    prompts, targets, rels = [], [], []
    for rel in relations:
        for s in (subjects if subjects is not None else kb.subjects_of(rel)):
            ps = kb.prompts(s, rel, split)
            if split == "train" and not all_train_templates:
                ps = ps[:1]
            prompts += ps
            targets += [kb.token_id(kb.object_of(s, rel))] * len(ps)
            rels += [rel] * len(ps)
    hit = (next_token_logits(model, kb, prompts).argmax(-1) == torch.tensor(targets)).float()
    out = {}
    for rel in relations:
        m = torch.tensor([r == rel for r in rels])
        out[rel] = hit[m].mean().item()
    out["all"] = hit.mean().item()
    return out


# --- pieces students build ---------------------------------------------------------------
def last_token_logits(logits: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """``logits [batch, pos, d_vocab]`` of right-padded prompts, ``last [batch]`` -> ``[batch, d_vocab]``
    at each prompt's own last token (not at the padded end)."""
    if logits.ndim != 3 or last.ndim != 1 or last.shape[0] != logits.shape[0]:
        raise InputError(f"expected logits [batch, pos, d_vocab] and last [batch], got {list(logits.shape)} and {list(last.shape)}.")
    return logits[torch.arange(logits.shape[0]), last]


def candidate_probs(last_logits: torch.Tensor, candidate_ids: torch.Tensor) -> torch.Tensor:
    """``[n, d_vocab]`` logits -> ``[n, n_candidates]``: the probability of each candidate object under
    the softmax over the *whole* vocabulary (so the rows need not sum to 1: the rest is on other words)."""
    return last_logits.softmax(-1)[:, candidate_ids]


def paraphrase_answer(probs: torch.Tensor, threshold: float) -> tuple[int, float]:
    """Pool paraphrases: ``probs [n_paraphrases, n_candidates]`` -> ``(index, confidence)``.

    The confidence of a candidate is its probability averaged over the paraphrases; the answer
    is the most confident candidate, or ``-1`` ("don't know") if its confidence is below ``threshold``.
    """
    mean = probs.mean(0)
    conf, idx = mean.max(0)
    return (int(idx) if float(conf) >= threshold else -1), float(conf)


def crawl_graph(query_fn, seeds: Sequence[str], relations_of, max_subjects: int | None = None) -> dict[tuple[str, str], str]:
    """Breadth-first crawl. ``query_fn(subject, relation) -> object or None`` ("don't know");
    ``relations_of(subject) -> relations to ask`` (empty for things that are not subjects).

    Visit subjects in first-in-first-out order starting from ``seeds``, each at most once, at most
    ``max_subjects`` of them; every answer that is not ``None`` becomes an edge
    ``(subject, relation) -> object``, and the object is queued as a new subject.
    """
    queue, seen, graph = deque(seeds), set(), {}
    while queue and (max_subjects is None or len(seen) < max_subjects):
        s = queue.popleft()
        if s in seen:
            continue
        seen.add(s)
        for rel in relations_of(s):
            obj = query_fn(s, rel)
            if obj is not None:
                graph[(s, rel)] = obj
                queue.append(obj)
    return graph


def precision_recall(graph: dict, truth: dict) -> tuple[float, float]:
    """``(precision, recall)`` of ``graph`` against ``truth`` (both ``{(subject, relation): object}``).

    precision = correct edges / edges in the graph (an edge about a subject the truth does not
    know is wrong); recall = correct edges / true facts. 0.0 where a denominator is 0.
    """
    correct = sum(1 for k, o in graph.items() if truth.get(k) == o)
    return (correct / len(graph) if graph else 0.0), (correct / len(truth) if truth else 0.0)


def recall_by_bins(hits: torch.Tensor, counts: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Recall by training frequency: split the facts into ``n_bins`` bins of (nearly) equal size by
    ``counts`` (ascending; ties broken by order) and return ``(mean count [n_bins], recall [n_bins])``."""
    order = torch.argsort(counts.float(), stable=True)
    bins = torch.tensor_split(order, n_bins)
    return (torch.stack([counts[b].float().mean() for b in bins]), torch.stack([hits[b].float().mean() for b in bins]))


# --- the crawler on kb-lm ---------------------------------------------------------------
@dataclass
class Answer:
    """What :func:`query` found: the answer (``None`` = don't know), its confidence and all scores."""
    subject: str
    relation: str
    object: str | None
    confidence: float
    probs: dict[str, float] = field(repr=False, default_factory=dict)


def paraphrase_prompts(kb, subject: str, relation: str, n_paraphrases: int = 2, use_aliases: bool = False) -> list[str]:
    """The prompts a crawler asks for one fact: the held-out template, then ``n_paraphrases - 1``
    training templates (in a fixed order), for the name and (if ``use_aliases``) its aliases."""
    names = [subject] + (kb.aliases(subject) if use_aliases else [])
    out = []
    for n in names:
        out += (kb.prompts(n, relation, "heldout") + kb.prompts(n, relation, "train"))[:max(1, n_paraphrases)]
    return out


@torch.no_grad()
def answer_table(model, kb, subjects: Iterable[str], relations: Iterable[str] | None = None,
                 n_paraphrases: int = 2, use_aliases: bool = False) -> dict[tuple[str, str], torch.Tensor]:
    """Probabilities of the candidate objects for every (subject, relation), one batched pass:
    ``{(subject, relation): [n_prompts, n_candidates]}`` (rows: :func:`paraphrase_prompts`).
    People need not be in the KB (unknown people get answers too: the point of "don't know")."""
    keys, prompts, spans = [], [], []
    for s in subjects:
        rels = list(relations) if relations is not None else list(_relations_of(kb, s))
        for r in rels:
            ps = (paraphrase_prompts(kb, s, r, n_paraphrases, use_aliases) if _known(kb, s)
                  else [t.format(s) for t in kb.templates(r)][:max(1, n_paraphrases)])
            keys.append((s, r))
            spans.append((len(prompts), len(prompts) + len(ps)))
            prompts += ps
    probs = next_token_logits(model, kb, prompts).softmax(-1)
    cand = {r: object_ids(kb, r) for r in {k[1] for k in keys}}
    return {k: probs[a:b][:, cand[k[1]]] for k, (a, b) in zip(keys, spans)}


def _known(kb, subject: str) -> bool:
    try:
        kb.canonical(subject)
        return True
    except InputError:
        return False


@torch.no_grad()
def query(model, kb, subject: str, relation: str, threshold: float = 0.5, n_paraphrases: int = 2,
          use_aliases: bool = False) -> Answer:
    """Ask the model for (``subject``, ``relation``) through paraphrases; "don't know" below ``threshold``.

    Each candidate's probability (softmax over the whole vocabulary at the last token) is
    averaged over :func:`paraphrase_prompts`; the answer is the best candidate if its mean
    probability is at least ``threshold``, else ``None``.
    """
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold must be a probability in [0, 1], got {threshold}.")
    probs = answer_table(model, kb, [subject], [relation], n_paraphrases, use_aliases)[(subject, relation)]
    idx, conf = paraphrase_answer(probs, threshold)
    cands = kb.objects(relation)
    return Answer(subject, relation, cands[idx] if idx >= 0 else UNKNOWN, conf,
                  {c: float(p) for c, p in zip(cands, probs.mean(0))})


def table_query_fn(kb, table: dict[tuple[str, str], torch.Tensor], threshold: float):
    """A ``query_fn`` for :func:`crawl_graph` that reads answers from an :func:`answer_table`."""
    def query_fn(subject: str, relation: str):
        idx, _ = paraphrase_answer(table[(subject, relation)], threshold)
        return kb.objects(relation)[idx] if idx >= 0 else None
    return query_fn


def relations_of(kb):
    """``relations_of(subject)`` for :func:`crawl_graph`: people have ``kb.relations``, cities
    ``country``, employers ``headquarters``; anything else (countries, jobs, ...) none."""
    def rels(subject: str) -> tuple[str, ...]:
        return _relations_of(kb, subject)
    return rels


def _relations_of(kb, subject: str) -> tuple[str, ...]:
    if subject in kb.cities:
        return ("country",)
    if subject in kb.employers:
        return ("headquarters",)
    if subject in kb.countries or subject in kb.universities or subject in kb.jobs or subject in kb.hobbies:
        return ()
    return kb.relations


def crawl(model, kb, seeds: Sequence[str], threshold: float = 0.5, max_subjects: int | None = None,
          n_paraphrases: int = 2, use_aliases: bool = False) -> dict[tuple[str, str], str]:
    """Crawl ``kb-lm`` from ``seeds`` (people, known or not): :func:`crawl_graph` with the model's
    answers (precomputed for the seeds and every city and employer in one batched pass)."""
    subjects = list(dict.fromkeys(list(seeds) + list(kb.cities) + list(kb.employers)))
    table = answer_table(model, kb, subjects, None, n_paraphrases, use_aliases)
    return crawl_graph(table_query_fn(kb, table, threshold), seeds, relations_of(kb), max_subjects)


def truth_of(kb, subjects: Iterable[str] | None = None) -> dict[tuple[str, str], str]:
    """The true graph ``{(subject, relation): object}``: the facts of ``subjects`` (default: all),
    plus the table facts of every city and employer."""
    subjects = set(kb.subjects if subjects is None else [kb.canonical(s) for s in subjects if _known(kb, s)])
    out = {(f.subject, f.relation): f.object for f in kb.facts if f.subject in subjects}
    out.update({(f.subject, f.relation): f.object for f in kb.table_facts})
    return out


def score_graph(graph: dict[tuple[str, str], str], kb, truth: dict | None = None) -> dict[str, dict]:
    """Precision, recall and F1 of a crawled graph per relation (and ``"all"``).

    ``truth`` defaults to :func:`truth_of` the people in the graph. Edges about subjects the
    truth does not know (made-up people) count as wrong. Returns ``{relation: {"precision",
    "recall", "f1", "n_pred", "n_true"}}``.
    """
    if truth is None:
        truth = truth_of(kb, [s for s, _ in graph])
    rels = list(kb.relations) + list(kb.table_relations)
    out = {}
    for r in rels + ["all"]:
        g = {k: o for k, o in graph.items() if r in ("all", k[1])}
        t = {k: o for k, o in truth.items() if r in ("all", k[1])}
        if not g and not t:
            continue
        p, rc = precision_recall(g, t)
        out[r] = {"precision": p, "recall": rc, "f1": 2 * p * rc / (p + rc) if p + rc > 0 else 0.0,
                  "n_pred": len(g), "n_true": len(t)}
    return out


@torch.no_grad()
def fact_hits(model, kb, split: str = "heldout", relations: Iterable[str] | None = None) -> list[dict]:
    """One row per person fact and prompt: subject, relation, template, prompt, object, predicted
    word, hit, p(object). For error analysis (by person, exposure tier, template)."""
    relations = list(relations) if relations is not None else list(kb.relations)
    rows, prompts = [], []
    for rel in relations:
        for s in kb.subjects:
            for t in kb.split_templates(s, rel, split):
                rows.append({"subject": s, "relation": rel, "template": t, "prompt": t.format(s),
                             "object": kb.object_of(s, rel), "tier": kb.person(s).tier})
                prompts.append(t.format(s))
    logits = next_token_logits(model, kb, prompts)
    probs = logits.softmax(-1)
    top = logits.argmax(-1).tolist()
    for row, t, pr in zip(rows, top, probs):
        row["predicted"] = kb.vocabulary[t]
        row["hit"] = row["predicted"] == row["object"]
        row["p_object"] = float(pr[kb.token_id(row["object"])])
    return rows
