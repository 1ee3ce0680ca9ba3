"""Automated interpretability, the scoring half, offline: how well does an explanation predict a latent?

Bills et al. (2023), *Language models can explain neurons in language models*, score an
explanation by simulating the neuron from it; Paulo et al. (2024, EleutherAI), *Automatically
interpreting millions of features in large language models*, replace simulation by two cheaper
classification scores, which this module implements with a rule in place of the scoring LLM:

=============  ==========================================================================
score          definition (balanced accuracy: mean of the true-positive and true-negative rates)
=============  ==========================================================================
detection      given held-out contexts, half activating and half not, can the explanation tell
               which ones contain the feature? A context is predicted activating when the
               explanation marks any of its tokens.
fuzzing        given activating contexts with some tokens highlighted, either the truly active
               ones or as many others chosen at random, can the explanation tell which
               highlightings are right? A highlighting is accepted when at least half of the
               highlighted tokens are tokens the explanation marks.
=============  ==========================================================================

An *explanation* here is anything that marks tokens: a callable ``tokens: list[str] -> list[bool]``
(which tokens it says the feature is active on). Build one from a keyword list
(:func:`keyword_rule`), a regex (:func:`regex_rule`), your own predicate (:func:`predicate_rule`), or
let :func:`explain_by_tokens` (a simple rule-based explainer) read a latent's top contexts and
return a keyword rule. Baselines: :func:`random_rule` (marks tokens at random: 0.5 on both scores
in expectation) and another latent's explanation (a *shuffled* latent).

An LLM explainer is an online option: :func:`llm_explanation` takes your own ``complete(prompt) -> str``
function (any LLM API) and fails at once without one.

>>> rule = explain_by_tokens(top_contexts)                  # e.g. tokens ' in'
>>> detection_score(rule, activating, non_activating)      # 0.5 = chance, 1 = perfect
>>> fuzzing_score(rule, contexts, true_marks, fuzz_marks(true_marks, seed=0))
"""

from __future__ import annotations

import os
import random
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from mi_course.errors import InputError, OfflineError

__all__ = ["Rule", "keyword_rule", "regex_rule", "predicate_rule", "random_rule", "explain_by_tokens",
           "detection_score", "fuzzing_score", "fuzz_marks", "accepts", "active_marks", "score_latent",
           "score_latents", "llm_explanation", "balanced_accuracy", "context_strings"]


# ------------------------------------------------------------------------------- explanations
@dataclass
class Rule:
    """An explanation that marks tokens: ``rule(tokens) -> list[bool]``; ``text`` says it in words."""

    text: str
    fn: Callable[[list[str]], list[bool]]

    def __call__(self, tokens: Sequence[str]) -> list[bool]:
        marks = list(self.fn(list(tokens)))
        if len(marks) != len(tokens):
            raise InputError(f"the rule {self.text!r} returned {len(marks)} marks for {len(tokens)} tokens")
        return [bool(m) for m in marks]

    def __repr__(self) -> str:
        return f"Rule({self.text!r})"


def _marks(explanation, tokens: Sequence[str]) -> list[bool]:
    if not callable(explanation):
        raise InputError("an explanation must be callable: tokens (list of str) -> list of bool, one per token")
    marks = list(explanation(list(tokens)))
    if len(marks) != len(tokens):
        raise InputError(f"the explanation returned {len(marks)} marks for {len(tokens)} tokens")
    return [bool(m) for m in marks]


def keyword_rule(keywords: Sequence[str], offset: int = 0, strip: bool = False) -> Rule:
    """Marks token ``i`` when token ``i + offset`` is one of ``keywords`` (``offset=-1``: the previous
    token). ``strip=True`` compares tokens with surrounding whitespace removed."""
    if isinstance(keywords, str) or not keywords or not all(isinstance(k, str) for k in keywords):
        raise InputError("keywords must be a non-empty list of strings")
    norm = (lambda t: t.strip() or t) if strip else (lambda t: t)
    keys = {norm(k) for k in keywords}

    def fn(tokens):
        return [0 <= i + offset < len(tokens) and norm(tokens[i + offset]) in keys for i in range(len(tokens))]

    where = "" if offset == 0 else (" (previous token)" if offset == -1 else f" (token at offset {offset})")
    return Rule("tokens " + ", ".join(repr(k) for k in sorted(keys)) + where, fn)


def regex_rule(pattern: str) -> Rule:
    """Marks the tokens that ``re.search(pattern, token)`` matches."""
    try:
        rx = re.compile(pattern)
    except (re.error, TypeError) as err:
        raise InputError(f"not a valid regular expression: {pattern!r} ({err})") from None
    return Rule(f"tokens matching /{pattern}/", lambda tokens: [bool(rx.search(t)) for t in tokens])


def predicate_rule(fn: Callable[[list[str], int], bool], text: str = "a rule") -> Rule:
    """Your own rule: ``fn(tokens, i) -> bool`` says whether the feature is active on token ``i``."""
    if not callable(fn):
        raise InputError("fn must be callable: fn(tokens, i) -> bool")
    return Rule(text, lambda tokens: [bool(fn(tokens, i)) for i in range(len(tokens))])


def random_rule(rate: float = 0.1, seed: int = 0) -> Rule:
    """The baseline: marks each token with probability ``rate``, at random but reproducibly
    (a hash of the seed, the context and the position), whatever the token."""
    if not 0 <= rate <= 1:
        raise InputError(f"rate must be in [0, 1], got {rate}")

    def fn(tokens):
        key = zlib.crc32(("\x00".join(tokens) + f"\x01{seed}").encode())
        r = random.Random(key)
        return [r.random() < rate for _ in tokens]

    return Rule(f"random tokens (rate {rate:g})", fn)


def explain_by_tokens(contexts: Sequence, tokenizer=None, n_keywords: int = 3, offsets: Sequence[int] = (0, -1),
                      min_count: int = 2) -> Rule:
    """A simple rule-based explainer: the tokens at (or just before) the latent's strongest positions.

    ``contexts``: the latent's top contexts, each with ``tokens`` and ``center`` (a
    :class:`~mi_course.methods.feature_stats.Context`; ``tokens`` as strings, or ids with
    ``tokenizer``). For each offset in ``offsets`` (0: the token itself, -1: the one before), count
    the tokens at ``center + offset``; keep the ``n_keywords`` most frequent (those seen at least
    ``min_count`` times, and always the most frequent); pick the offset whose keywords cover the most
    contexts. Returns a :func:`keyword_rule`.
    """
    if not contexts:
        raise InputError("explain_by_tokens needs at least one context")
    best = None
    for off in offsets:
        counts: Counter = Counter()
        seen = []
        for c in contexts:
            toks = _strings(c.tokens, tokenizer)
            j = c.center + off
            if 0 <= j < len(toks):
                counts[toks[j]] += 1
                seen.append(toks[j])
        if not counts:
            continue
        common = counts.most_common(n_keywords)
        keys = [t for t, n in common if n >= min_count] or [common[0][0]]
        cover = sum(t in keys for t in seen)
        if best is None or cover > best[0]:
            best = (cover, keys, off)
    if best is None:
        raise InputError("no token found at the contexts' centres")
    return keyword_rule(best[1], offset=best[2])


def context_strings(contexts: Sequence, tokenizer=None) -> list[list[str]]:
    """Each context's tokens as strings (decoded one by one with ``tokenizer`` when they are ids)."""
    return [_strings(c.tokens, tokenizer) for c in contexts]


def _strings(tokens, tokenizer) -> list[str]:
    if tokens and not isinstance(tokens[0], str):
        if tokenizer is None:
            raise InputError("contexts hold token ids: pass the tokenizer to turn them into strings")
        return [tokenizer.decode([int(t)]) for t in tokens]
    return list(tokens)


def llm_explanation(contexts: Sequence, complete: Callable[[str], str] | None = None, tokenizer=None) -> Rule:
    """Online option: ask a language model for an explanation (Bills et al. 2023), as a keyword rule.

    ``complete(prompt) -> str`` is your function calling an LLM API. The prompt shows the top
    contexts with the strongest token in ``<< >>`` and asks for up to five tokens, one per line.
    Without ``complete`` (or with ``HF_HUB_OFFLINE=1`` and no function) it fails at once: use
    :func:`explain_by_tokens` or write your own rule offline.
    """
    if complete is None:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
        raise OfflineError("llm_explanation needs complete=your_function(prompt) -> str that calls a language model"
                           + (" (and this machine is offline: HF_HUB_OFFLINE=1)" if offline else "")
                           + "; offline, use autointerp.explain_by_tokens(contexts) or your own keyword_rule / "
                             "predicate_rule.")
    lines = []
    for c in contexts:
        toks = _strings(c.tokens, tokenizer)
        lines.append("".join(f"<<{t}>>" if j == c.center else t for j, t in enumerate(toks)))
    prompt = ("Here are text excerpts where one feature of a language model fires most strongly on the token "
              "in << >>.\n\n" + "\n".join(lines) + "\n\nList up to five tokens (exactly as they appear) the feature "
              "fires on, one per line, nothing else.")
    answer = complete(prompt)
    words = [w for w in (answer or "").splitlines() if w.strip()][:5]
    if not words:
        raise InputError("the language model returned no tokens")
    return keyword_rule(words, strip=True)


# ------------------------------------------------------------------------------------ scoring
def balanced_accuracy(pred_pos: Sequence[bool], pred_neg: Sequence[bool]) -> float:
    """Mean of the true-positive rate (over positives) and true-negative rate (over negatives).
    ``pred_pos``: predictions on the positives; ``pred_neg``: predictions on the negatives."""
    if not pred_pos or not pred_neg:
        raise InputError("balanced accuracy needs at least one positive and one negative example")
    tpr = sum(bool(p) for p in pred_pos) / len(pred_pos)
    tnr = sum(not p for p in pred_neg) / len(pred_neg)
    return (tpr + tnr) / 2


def detection_score(explanation, activating: Sequence[Sequence[str]], non_activating: Sequence[Sequence[str]]) -> float:
    """Balanced accuracy of telling ``activating`` from ``non_activating`` contexts (lists of token
    strings): a context is predicted activating when the explanation marks any of its tokens."""
    pos = [any(_marks(explanation, c)) for c in activating]
    neg = [any(_marks(explanation, c)) for c in non_activating]
    return balanced_accuracy(pos, neg)


def accepts(explanation, tokens: Sequence[str], highlighted: Sequence[bool]) -> bool:
    """Does the explanation accept this highlighting? Yes when at least half of the highlighted tokens
    are tokens it marks (no highlighted token: no)."""
    if len(highlighted) != len(tokens):
        raise InputError(f"{len(highlighted)} highlight flags for {len(tokens)} tokens")
    marks = _marks(explanation, tokens)
    hl = [i for i, h in enumerate(highlighted) if h]
    return bool(hl) and sum(marks[i] for i in hl) >= len(hl) / 2


def fuzzing_score(explanation, contexts: Sequence[Sequence[str]], true_marks: Sequence[Sequence[bool]],
                  false_marks: Sequence[Sequence[bool]]) -> float:
    """Balanced accuracy of accepting each context with its truly active tokens highlighted
    (``true_marks``) and rejecting it with other tokens highlighted (``false_marks``, e.g. from
    :func:`fuzz_marks`); see :func:`accepts`."""
    if not (len(contexts) == len(true_marks) == len(false_marks)):
        raise InputError(f"contexts ({len(contexts)}), true_marks ({len(true_marks)}) and false_marks "
                         f"({len(false_marks)}) must have the same length")
    pos = [accepts(explanation, c, m) for c, m in zip(contexts, true_marks)]
    neg = [accepts(explanation, c, m) for c, m in zip(contexts, false_marks)]
    return balanced_accuracy(pos, neg)


def active_marks(acts: Sequence[float], min_frac: float = 0.0) -> list[bool]:
    """The tokens a latent is active on: activation above ``min_frac`` times the context's maximum (and > 0)."""
    vals = [0.0 if a != a else float(a) for a in acts]  # NaN (off the window) -> 0
    top = max(vals) if vals else 0.0
    return [a > 0 and a >= min_frac * top for a in vals]


def fuzz_marks(true_marks: Sequence[Sequence[bool]], seed: int = 0) -> list[list[bool]]:
    """Wrong highlightings: per context, as many tokens as ``true_marks`` highlights, drawn at random
    among the tokens it does not highlight (fewer if there are not enough)."""
    rng = random.Random(seed)
    out = []
    for m in true_marks:
        off = [i for i, v in enumerate(m) if not v]
        pick = set(rng.sample(off, min(sum(bool(v) for v in m), len(off))))
        out.append([i in pick for i in range(len(m))])
    return out


def score_latent(explanation, activating: Sequence, non_activating: Sequence, tokenizer=None, min_frac: float = 0.5,
                 seed: int = 0) -> dict[str, float]:
    """Detection and fuzzing scores of ``explanation`` on one latent's held-out contexts.

    ``activating`` / ``non_activating``: contexts (``tokens``, and ``acts`` for the activating ones,
    e.g. ``stats.contexts(i, "score_activating")``). Fuzzing highlights the tokens above
    ``min_frac`` of each context's maximum activation. Returns ``detection``, ``fuzzing``.
    """
    if not activating or not non_activating:
        raise InputError("score_latent needs activating and non-activating contexts")
    act_toks = [_strings(c.tokens, tokenizer) for c in activating]
    non_toks = [_strings(c.tokens, tokenizer) for c in non_activating]
    true = [active_marks(c.acts, min_frac) for c in activating]
    return {"detection": detection_score(explanation, act_toks, non_toks),
            "fuzzing": fuzzing_score(explanation, act_toks, true, fuzz_marks(true, seed))}


def score_latents(stats, tokenizer, latents: Sequence[int], explainer: Callable | None = None, seed: int = 0,
                  min_frac: float = 0.5) -> list[dict]:
    """For each latent: the explainer's rule (from its top contexts) and its scores on the held-out
    scoring split, beside two baselines: a random rule marking tokens at the rate the explanation
    marks them on the activating contexts, and the next latent's explanation (a shuffled latent).

    ``stats``: :class:`~mi_course.methods.feature_stats.FeatureStats`; ``explainer(contexts,
    tokenizer) -> rule`` (default :func:`explain_by_tokens`). Returns one dict per latent with
    ``latent``, ``explanation``, ``detection``, ``fuzzing``, ``random_detection``, ``random_fuzzing``,
    ``shuffled_detection``, ``shuffled_fuzzing``. Latents without top contexts or without held-out
    contexts of both kinds are left out.
    """
    explainer = explainer or (lambda ctx, tok: explain_by_tokens(ctx, tok))
    latents = [int(i) for i in latents]
    if not latents:
        raise InputError("latents must be a non-empty list of latent indices")
    # latents with top contexts to explain and held-out contexts of both kinds to score on
    latents = [i for i in latents if stats.contexts(i, "top") and stats.contexts(i, "score_activating")
               and stats.contexts(i, "score_non_activating")]
    rules = {i: explainer(stats.contexts(i, "top"), tokenizer) for i in latents}
    rows = []
    for n, i in enumerate(latents):
        act, non = stats.contexts(i, "score_activating"), stats.contexts(i, "score_non_activating")
        toks = [_strings(c.tokens, tokenizer) for c in act]
        marked = [m for t in toks for m in _marks(rules[i], t)]
        rate = max(sum(marked) / max(len(marked), 1), 0.02)
        other = rules[latents[(n + 1) % len(latents)]]
        r = score_latent(rules[i], act, non, tokenizer, min_frac, seed)
        rr = score_latent(random_rule(rate, seed + i), act, non, tokenizer, min_frac, seed)
        rs = score_latent(other, act, non, tokenizer, min_frac, seed)
        rows.append({"latent": i, "explanation": rules[i].text, **r,
                     "random_detection": rr["detection"], "random_fuzzing": rr["fuzzing"],
                     "shuffled_detection": rs["detection"], "shuffled_fuzzing": rs["fuzzing"]})
    return rows
