"""Checkers for week 07: Crawling the Internal Knowledge-Base of Language Models (Cohen et al. 2023).

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

import random

import torch

from mi_course.checking import kb_lm
from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.methods import knowledge_crawl as kc
from mi_course.methods import probing


_model = kb_lm.model  # kb-lm and its KB, loaded once for all of block 2's checkers
_kb = kb_lm.knowledge_base


# -- 1. logits at each prompt's last token ----------------------------------------------------
def _logit_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, n, v in [(3, 6, 11), (5, 9, 17), (4, 12, 7)]:
        logits = torch.randn(b, n, v, generator=g)
        last = torch.randint(1, n, (b,), generator=g)
        last[0] = n - 1
        out.append(Case(f"seed {seed}, batch={b} pos={n} vocab={v}", {"logits": logits, "last": last}))
    return out


LAST_TOKEN_LOGITS = Exercise(
    id="w07_last_token_logits",
    title="last_token_logits",
    reference=kc.last_token_logits,
    cases=_logit_cases,
    mistakes=[
        Mistake("padded end", lambda logits, last: logits[:, -1],
                "you took the logits at the last *column*. Prompts are right-padded: a short prompt ends at "
                "`last[i]`, and the columns after it are padding."),
        Mistake("one before", lambda logits, last: logits[torch.arange(len(last)), last - 1],
                "you are one position early: `last[i]` is already the index of the prompt's last token."),
    ],
    hint="you need one position per row, last[i] for row i: index the batch and position dimensions together "
         "(advanced indexing), not with a slice.",
)


def check_last_token_logits(fn, seed: int | None = None) -> bool:
    """Check ``last_token_logits(logits [batch, pos, vocab], last [batch]) -> [batch, vocab]``."""
    return check(LAST_TOKEN_LOGITS, fn, seed)


# -- 2. candidate probabilities ----------------------------------------------------------------
def _cand_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, v, k in [(4, 20, 5), (6, 30, 8)]:
        logits = torch.randn(n, v, generator=g) * 3
        ids = torch.randperm(v, generator=g)[:k]
        out.append(Case(f"seed {seed}, n={n} vocab={v} candidates={k}", {"last_logits": logits, "candidate_ids": ids}))
    return out


CANDIDATE_PROBS = Exercise(
    id="w07_candidate_probs",
    title="candidate_probs",
    reference=kc.candidate_probs,
    cases=_cand_cases,
    mistakes=[
        Mistake("softmax over candidates only", lambda last_logits, candidate_ids: last_logits[:, candidate_ids].softmax(-1),
                "you renormalised over the candidates only: then every prompt looks confident. Take the softmax "
                "over the whole vocabulary first, then pick the candidates' columns."),
        Mistake("raw logits", lambda last_logits, candidate_ids: last_logits[:, candidate_ids],
                "these are logits, not probabilities: apply a softmax over the vocabulary dimension."),
        Mistake("log-probabilities", lambda last_logits, candidate_ids: last_logits.log_softmax(-1)[:, candidate_ids],
                "these are log-probabilities: use softmax, not log_softmax."),
    ],
    hint="all words compete for the next position, not only the candidates: normalise over the whole vocabulary "
         "before you select. Self-check: with every word as a candidate, each row sums to 1.",
)


def check_candidate_probs(fn, seed: int | None = None) -> bool:
    """Check ``candidate_probs(last_logits [n, vocab], candidate_ids [k]) -> [n, k]``."""
    return check(CANDIDATE_PROBS, fn, seed)


# -- 3. pooling paraphrases, with "don't know" -------------------------------------------------
def _para_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    # max over paraphrases and mean disagree: one paraphrase is very sure of candidate 0
    p = torch.tensor([[0.9, 0.05, 0.0], [0.0, 0.6, 0.1], [0.05, 0.6, 0.1]])
    out.append(Case("one confident paraphrase vs two agreeing ones", {"probs": p, "threshold": 0.3}))
    # majority vote and mean disagree
    p = torch.tensor([[0.40, 0.45, 0.1], [0.40, 0.45, 0.1], [0.95, 0.0, 0.0]])
    out.append(Case("majority vote vs mean", {"probs": p, "threshold": 0.2}))
    for n, k in [(4, 6), (2, 9)]:
        raw = torch.rand(n, k, generator=g) ** 3
        probs = raw / raw.sum(-1, keepdim=True) * 0.9
        conf = float(probs.mean(0).max())
        out.append(Case(f"seed {seed}, below the threshold", {"probs": probs, "threshold": conf + 0.05}))
        out.append(Case(f"seed {seed}, exactly at the threshold", {"probs": probs, "threshold": conf}))
        out.append(Case(f"seed {seed}, n_paraphrases={n}", {"probs": probs, "threshold": 0.0}))
    return out


def _max_pool(probs, threshold):
    conf, idx = probs.max(0).values.max(0)
    return (int(idx) if float(conf) >= threshold else -1), float(conf)


def _vote(probs, threshold):
    idx = int(torch.mode(probs.argmax(-1)).values)
    conf = float(probs.mean(0)[idx])
    return (idx if conf >= threshold else -1), conf


def _strict(probs, threshold):
    conf, idx = probs.mean(0).max(0)
    return (int(idx) if float(conf) > threshold else -1), float(conf)


def _no_threshold(probs, threshold):
    conf, idx = probs.mean(0).max(0)
    return int(idx), float(conf)


PARAPHRASE_ANSWER = Exercise(
    id="w07_paraphrase_answer",
    title="paraphrase_answer",
    reference=kc.paraphrase_answer,
    cases=_para_cases,
    mistakes=[
        Mistake("max over paraphrases", _max_pool,
                "you trusted the single most confident paraphrase. Average each candidate's probability over "
                "the paraphrases first, then take the best candidate."),
        Mistake("majority vote", _vote,
                "you took a vote of the paraphrases' top answers. Pool probabilities instead: the mean over "
                "paraphrases, then the argmax."),
        Mistake("strict threshold", _strict,
                "a confidence exactly equal to the threshold counts as an answer (>=, not >)."),
        Mistake("no don't-know", _no_threshold,
                "below the threshold the crawler must say \"don't know\": return -1 as the index "
                "(still with the confidence)."),
    ],
    hint="pool the paraphrases first, then pick the best candidate; abstain (-1) only when its pooled "
         "probability is below the threshold (equal to it is an answer).",
)


def check_paraphrase_answer(fn, seed: int | None = None) -> bool:
    """Check ``paraphrase_answer(probs [n_paraphrases, n_candidates], threshold) -> (index, confidence)``."""
    return check(PARAPHRASE_ANSWER, fn, seed)


# -- 4. precision and recall of a graph ---------------------------------------------------------
def _graph_cases(seed: int) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for n_true, n_unknown in [(12, 0), (20, 4), (7, 3)]:
        truth = {(f"s{i}", rng.choice("ab")): rng.choice("xyz") for i in range(n_true)}
        graph = {}
        for k, o in truth.items():
            u = rng.random()
            if u < 0.55:
                graph[k] = o
            elif u < 0.8:
                graph[k] = rng.choice([c for c in "xyz" if c != o])
        for j in range(n_unknown):  # edges about subjects the truth does not have (made-up people)
            graph[(f"fake{j}", "a")] = rng.choice("xyz")
        out.append(Case(f"seed {seed}, {len(truth)} true facts, {len(graph)} edges", {"graph": graph, "truth": truth}))
    out.append(Case("empty graph", {"graph": {}, "truth": {("s", "a"): "x"}}))
    return out


def _swapped(graph, truth):
    p, r = kc.precision_recall(graph, truth)
    return r, p


def _ignore_unknown(graph, truth):
    g = {k: o for k, o in graph.items() if k in truth}
    return kc.precision_recall(g, truth)


def _keys_only(graph, truth):
    hit = sum(1 for k in graph if k in truth)
    return (hit / len(graph) if graph else 0.0), (hit / len(truth) if truth else 0.0)


PRECISION_RECALL = Exercise(
    id="w07_precision_recall",
    title="precision_recall",
    reference=kc.precision_recall,
    cases=_graph_cases,
    mistakes=[
        Mistake("swapped", _swapped,
                "precision and recall are swapped: precision divides by the edges the crawler *output*, "
                "recall by the *true* facts."),
        Mistake("edges about unknown subjects left out", _ignore_unknown,
                "an edge about a subject that the truth does not contain (a made-up person) is a wrong fact: "
                "it must count in precision's denominator."),
        Mistake("keys only", _keys_only,
                "an edge is correct only if its object matches the true object, not just because the "
                "(subject, relation) pair exists."),
    ],
    hint="an edge is correct only when the truth has the same (subject, relation) with the same object; an edge "
         "about someone the truth does not know is wrong. Guard against empty graphs and truths.",
)


def check_precision_recall(fn, seed: int | None = None) -> bool:
    """Check ``precision_recall(graph, truth) -> (precision, recall)``."""
    return check(PRECISION_RECALL, fn, seed)


# -- 5. the crawler -----------------------------------------------------------------------------
class _World:
    """A small synthetic knowledge graph with "don't know" answers and cycles; counts questions."""

    def __init__(self, seed: int, n_people: int, limit: int):
        rng = random.Random(seed)
        self.places = [f"P{i}" for i in range(5)]
        self.rel = {f"person{i}": ("born", "works") for i in range(n_people)}
        self.rel.update({p: ("near",) for p in self.places})
        self.answers = {}
        for s, rels in self.rel.items():
            for r in rels:
                u = rng.random()
                self.answers[(s, r)] = None if u < 0.2 else (rng.choice(self.places) if u < 0.8 else f"thing{rng.randrange(3)}")
        self.asked = 0
        self.limit = limit

    def query_fn(self, subject, relation):
        self.asked += 1
        if self.asked > self.limit:
            raise RuntimeError(f"your crawler asked more than {self.limit} questions: does it visit a subject "
                               "more than once (keep a set of visited subjects)?")
        return self.answers[(subject, relation)]

    def relations_of(self, subject):
        return self.rel.get(subject, ())


def _crawl_cases(seed: int) -> list[Case]:
    out = []
    for i, (n_people, seeds, max_subjects) in enumerate([(4, ["person0"], None), (6, ["person1", "person2", "person1"], None),
                                                         (8, ["person3", "person4", "person5"], 4), (5, ["P2"], 3)]):
        w = _World(1000 * seed + i, n_people, limit=400)
        out.append(Case(f"seed {seed}, seeds {seeds}, max_subjects={max_subjects}",
                        {"query_fn": w.query_fn, "seeds": list(seeds), "relations_of": w.relations_of,
                         "max_subjects": max_subjects}))
    return out


def _dfs(query_fn, seeds, relations_of, max_subjects):
    stack, seen, graph = list(reversed(seeds)), set(), {}
    while stack and (max_subjects is None or len(seen) < max_subjects):
        s = stack.pop()
        if s in seen:
            continue
        seen.add(s)
        for r in relations_of(s):
            o = query_fn(s, r)
            if o is not None:
                graph[(s, r)] = o
                stack.append(o)
    return graph


def _no_expand(query_fn, seeds, relations_of, max_subjects):
    graph = {}
    for s in list(dict.fromkeys(seeds))[:max_subjects]:
        for r in relations_of(s):
            o = query_fn(s, r)
            if o is not None:
                graph[(s, r)] = o
    return graph


def _keeps_none(query_fn, seeds, relations_of, max_subjects):
    queue, seen, graph = list(seeds), set(), {}
    while queue and (max_subjects is None or len(seen) < max_subjects):
        s = queue.pop(0)
        if s in seen:
            continue
        seen.add(s)
        for r in relations_of(s):
            o = query_fn(s, r)
            graph[(s, r)] = o
            if o is not None:
                queue.append(o)
    return graph


CRAWL = Exercise(
    id="w07_crawl_graph",
    title="crawl_graph",
    reference=kc.crawl_graph,
    cases=_crawl_cases,
    mistakes=[
        Mistake("depth first", _dfs,
                "your crawler goes depth-first. Use a first-in-first-out queue (collections.deque, popleft) so "
                "that with max_subjects the crawl stays close to the seeds."),
        Mistake("no expansion", _no_expand,
                "you only asked about the seeds: every object you find is a new subject to crawl (append it "
                "to the queue)."),
        Mistake("keeps don't-know", _keeps_none,
                "a None answer means \"don't know\": it is not an edge of the graph."),
    ],
    hint="breadth-first: a first-in-first-out queue of subjects, a set of those already visited (seeds may repeat), "
         "and the dict you return; max_subjects counts visits, and every object found is a subject to visit.",
)


def check_crawl_graph(fn, seed: int | None = None) -> bool:
    """Check ``crawl_graph(query_fn, seeds, relations_of, max_subjects) -> {(subject, relation): object}``."""
    return check(CRAWL, fn, seed)


# -- 6. recall by training frequency ------------------------------------------------------------
def _bin_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, bins in [(40, 4), (103, 5), (30, 3)]:
        counts = (torch.rand(n, generator=g) ** 3 * 300).long() + 5  # skewed: a few frequent facts
        hits = (torch.rand(n, generator=g) < (counts.float() / 120).clamp(0.1, 0.95))
        out.append(Case(f"seed {seed}, {n} facts, {bins} bins", {"hits": hits, "counts": counts, "n_bins": bins}))
    return out


def _equal_width(hits, counts, n_bins):
    edges = torch.linspace(float(counts.min()), float(counts.max()) + 1e-6, n_bins + 1)
    idx = torch.bucketize(counts.float(), edges[1:-1], right=True)
    mc, rc = [], []
    for b in range(n_bins):
        m = idx == b
        mc.append(counts[m].float().mean() if m.any() else torch.tensor(float("nan")))
        rc.append(hits[m].float().mean() if m.any() else torch.tensor(float("nan")))
    return torch.stack(mc), torch.stack(rc)


def _unsorted(hits, counts, n_bins):
    bins = torch.tensor_split(torch.arange(len(counts)), n_bins)
    return torch.stack([counts[b].float().mean() for b in bins]), torch.stack([hits[b].float().mean() for b in bins])


RECALL_BY_BINS = Exercise(
    id="w07_recall_by_bins",
    title="recall_by_bins",
    reference=kc.recall_by_bins,
    cases=_bin_cases,
    mistakes=[
        Mistake("equal-width bins", _equal_width,
                "you cut the count range into equal widths: with skewed counts most facts land in the first "
                "bin. Sort the facts by count and split them into n_bins groups of (nearly) equal size."),
        Mistake("not sorted", _unsorted,
                "your bins follow the order of the facts, not their counts: argsort the counts first."),
    ],
    hint="cut by rank, not into equal-width count ranges: order the facts by count (stably) and split them into "
         "n_bins nearly equal groups (look up torch.tensor_split); report each group's mean count and mean hit.",
)


def check_recall_by_bins(fn, seed: int | None = None) -> bool:
    """Check ``recall_by_bins(hits [n], counts [n], n_bins) -> (mean count [n_bins], recall [n_bins])``."""
    return check(RECALL_BY_BINS, fn, seed)


# -- 7. activations at the subject's last token -------------------------------------------------
def _act_cases(seed: int) -> list[Case]:
    kb, model = _kb(), _model()
    rng = random.Random(seed)
    out = []
    for layer in ([2, model.cfg.n_layers] if seed == 0 else [rng.randrange(1, model.cfg.n_layers + 1)]):
        people = rng.sample(kb.subjects, 4)
        aliased = [p.alias for p in kb.people if p.alias]
        prompts, subjects = [], []
        for s in people + [rng.choice(aliased)]:
            rel = rng.choice(kb.relations)
            prompts.append(rng.choice(kb.prompts(s, rel, "train") + kb.prompts(s, rel, "heldout")))
            subjects.append(s)
        prompts.append(people[0])
        subjects.append(people[0])  # the bare name: its last token is also the prompt's last token
        out.append(Case(f"seed {seed}, layer {layer}, {len(prompts)} prompts",
                        {"model": model, "kb": kb, "prompts": prompts, "subjects": subjects, "layer": layer}))
    return out


def _last_prompt_token(model, kb, prompts, subjects, layer):
    n = model.cfg.n_layers
    name = f"blocks.{layer}.hook_resid_pre" if layer < n else f"blocks.{n - 1}.hook_resid_post"
    out = []
    for p in prompts:
        _, cache = model.run_with_cache(torch.tensor([kb.encode(p)]), names_filter=lambda x: x == name)
        out.append(cache[name][0, -1])
    return torch.stack(out)


def _first_subject_token(model, kb, prompts, subjects, layer):
    n = model.cfg.n_layers
    name = f"blocks.{layer}.hook_resid_pre" if layer < n else f"blocks.{n - 1}.hook_resid_post"
    out = []
    for p, s in zip(prompts, subjects):
        _, cache = model.run_with_cache(torch.tensor([kb.encode(p)]), names_filter=lambda x: x == name)
        out.append(cache[name][0, kb.subject_token_span(p, s)[0]])
    return torch.stack(out)


def _resid_post(model, kb, prompts, subjects, layer):
    return probing.subject_last_token_acts(model, kb, prompts, subjects, min(layer + 1, model.cfg.n_layers))


SUBJECT_ACTS = Exercise(
    id="w07_subject_last_token_acts",
    title="subject_last_token_acts",
    reference=probing.subject_last_token_acts,
    cases=_act_cases,
    mistakes=[
        Mistake("last token of the prompt", _last_prompt_token,
                "you read the prompt's last token. The probe asks what the model knows at the *subject*: "
                "use kb.subject_token_span(prompt, subject) and take its last position (end - 1)."),
        Mistake("first subject token", _first_subject_token,
                "that is the *first* token of the name; the attribute can only be known once the whole name "
                "is read: take the last subject token (end - 1)."),
        Mistake("one layer late", _resid_post,
                "you read the output of block `layer`; the exercise asks for the input of block `layer` "
                "(blocks.{layer}.hook_resid_pre), and for layer == n_layers the final residual stream."),
    ],
    hint="you want each prompt's residual stream at its subject's last token; kb.subject_token_span gives the "
         "subject's (start, end) in token positions, counting <|endoftext|>, with end exclusive.",
    atol=1e-4,
)


def check_subject_last_token_acts(fn, seed: int | None = None) -> bool:
    """Check ``subject_last_token_acts(model, kb, prompts, subjects, layer) -> [n, d_model]``."""
    return check(SUBJECT_ACTS, fn, seed)


# -- 8. a linear probe --------------------------------------------------------------------------
def _probe_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    # (a) three well-separated classes: any working probe is near-perfect
    centres = torch.randn(3, 8, generator=g) * 3
    y = torch.randint(0, 3, (360,), generator=g)
    x = centres[y] + torch.randn(360, 8, generator=g)
    out.append(Case(f"seed {seed}, 3 classes, d=8", {"train_x": x[:240], "train_y": y[:240], "test_x": x[240:],
                                                    "test_y": y[240:], "n_classes": 3}))
    # (b) more dimensions than training points: the training set is fit perfectly, unseen points are not
    d = 60
    w = torch.zeros(d)
    w[:3] = 1.0
    x = torch.randn(440, d, generator=g)
    y = ((x @ w + torch.randn(440, generator=g) * 1.2) > 0).long()
    out.append(Case(f"seed {seed}, 2 classes, d={d}, 40 training points", {"train_x": x[:40], "train_y": y[:40],
                                                                           "test_x": x[40:], "test_y": y[40:], "n_classes": 2}))
    # (c) an offset and scaled feature: needs a bias (or standardisation)
    y = torch.randint(0, 2, (300,), generator=g)
    x = torch.randn(300, 4, generator=g)
    x[:, 0] = 50 + 0.2 * x[:, 0] + 0.6 * y
    out.append(Case(f"seed {seed}, 2 classes, offset feature", {"train_x": x[:200], "train_y": y[:200],
                                                               "test_x": x[200:], "test_y": y[200:], "n_classes": 2}))
    return out


def _train_accuracy(train_x, train_y, test_x, test_y, n_classes):
    return probing.probe_accuracy(train_x, train_y, train_x, train_y, n_classes)


def _majority(train_x, train_y, test_x, test_y, n_classes):
    return (test_y == torch.bincount(train_y, minlength=n_classes).argmax()).float().mean().item()


def _probe_ref(train_x, train_y, test_x, test_y, n_classes):
    return probing.probe_accuracy(train_x, train_y, test_x, test_y, n_classes)


PROBE = Exercise(
    id="w07_probe_accuracy",
    title="probe_accuracy",
    reference=_probe_ref,
    cases=_probe_cases,
    mistakes=[
        Mistake("accuracy on the training set", _train_accuracy,
                "you measured accuracy on the probe's own training points: with more dimensions than points a "
                "linear probe fits them all. Report accuracy on the test points (other people)."),
        Mistake("majority class", _majority,
                "your probe predicts one class for everything (did it train? check the loss goes down, the "
                "learning rate, and that you standardise the features)."),
    ],
    hint="a linear probe is a logistic regression fitted on the training set only; standardise the features with "
         "the training mean and std (the residual stream has a few huge directions), then score the test set.",
    atol=0.1,
    rtol=0.0,
)


def check_probe_accuracy(fn, seed: int | None = None) -> bool:
    """Check ``probe_accuracy(train_x, train_y, test_x, test_y, n_classes) -> float`` (within 0.1 of ours)."""
    return check(PROBE, fn, seed)


EXERCISES = {ex.id: ex for ex in [LAST_TOKEN_LOGITS, CANDIDATE_PROBS, PARAPHRASE_ANSWER, PRECISION_RECALL, CRAWL,
                                  RECALL_BY_BINS, SUBJECT_ACTS, PROBE]}
