"""Checkers for week 09's GRACE and ripple-effect exercises on ``kb-lm``.

Each ``check_*`` runs your function against the package's reference (:mod:`mi_course.methods.grace`,
:mod:`mi_course.methods.ripple_effects`) on fixed and random cases, and recognises the common
mistakes listed with each exercise.

===============================  ====  ==========================================================
exercise                         ★     what you write
===============================  ====  ==========================================================
``grace_layer_output``           ★★    the codebook lookup: the nearest key's value if the query
                                       is within its radius, else the layer's own output
``codebook_update``              ★★    the deferral-radius rule for a new edit (add/expand/split)
``compositionality_i``           ★★    one ripple test, scored with RippleEdits' precondition filter
``retention_rates``              ★     TRR and ERR from a results table
===============================  ====  ==========================================================
"""

from __future__ import annotations

import torch

from mi_course.checking import core
from mi_course.checking.core import Case, Exercise, Mistake, yours_or_reference  # noqa: F401
from mi_course.methods import grace
from mi_course.methods import ripple_effects as rip


def _visible(ex: Exercise, fn, seed) -> bool:
    """The visible check (``seed=None``) returns True/False and never raises; a hidden test raises."""
    __tracebackhide__ = True  # noqa: F841
    return core.check(ex, fn, seed)


# -- 1. the codebook lookup ----------------------------------------------------------------------
def grace_layer_output(keys: torch.Tensor, values: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor,
                       layer_out: torch.Tensor) -> torch.Tensor:
    """``[batch, d_value]``: for each query (``[batch, d_key]``), the value of its *nearest* key if the
    query is within that key's radius (``<=``), else the layer's own output (``layer_out [batch, d_value]``).
    keys ``[n, d_key]``, values ``[n, d_value]``, radii ``[n]``."""
    out = layer_out.clone()
    for b in range(queries.shape[0]):
        v = grace.codebook_lookup(keys, values, radii, queries[b])
        if v is not None:
            out[b] = v
    return out


def _lookup_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, dk, dv, b in [(4, 6, 3, 8), (7, 10, 5, 12)]:
        keys = torch.randn(n, dk, generator=g) * 2
        # nearest key small, a farther key with a big radius: only "nearest" decides
        radii = torch.rand(n, generator=g) * 1.5 + 0.8
        radii[0] = 6.0
        queries = []
        for i in range(b):
            k = int(torch.randint(0, n, (1,), generator=g))
            scale = [0.2, 0.5, 0.9, 1.6][i % 4]
            queries.append(keys[k] + torch.randn(dk, generator=g) * scale / dk ** 0.5 * float(radii[k] if k else 1.5))
        out.append(Case(f"seed {seed}, {n} keys of {dk} dims, {b} queries", {
            "keys": keys, "values": torch.randn(n, dv, generator=g), "radii": radii, "queries": torch.stack(queries),
            "layer_out": torch.randn(b, dv, generator=g)}))
    return out


def _lookup_variant(kind: str):
    def fn(keys, values, radii, queries, layer_out):
        out = layer_out.clone()
        d = torch.cdist(queries, keys)
        for b in range(queries.shape[0]):
            if kind == "any":  # the first key whose ball holds the query
                inside = (d[b] <= radii).nonzero()
                if len(inside):
                    out[b] = values[int(inside[0])]
                continue
            i = int(d[b].argmin())
            dist = d[b, i] ** 2 if kind == "squared" else d[b, i]
            if kind == "always" or dist <= radii[i]:
                out[b] = values[i]
        return out
    return fn


LOOKUP = Exercise(
    id="w09_grace_layer_output", title="grace_layer_output", reference=grace_layer_output, cases=_lookup_cases,
    mistakes=[
        Mistake("any key", _lookup_variant("any"),
                "GRACE looks at the *nearest* key only: argmin of the distances, then compare that distance with "
                "that key's radius (a farther key with a large radius does not count)."),
        Mistake("always replace", _lookup_variant("always"),
                "outside the nearest key's radius the layer runs untouched: return its own output for that row."),
        Mistake("squared distance", _lookup_variant("squared"),
                "compare the Euclidean distance ‖q − K‖ (not its square) with the radius."),
    ],
    hint="Only the nearest key decides for each query (Euclidean distance; look up `torch.cdist`): its value when the "
         "query lies within that key's radius (`<=`), else the layer's own output row. The result is [batch, "
         "d_value].",
)


def check_grace_layer_output(fn, seed: int | None = None):
    """Check ``grace_layer_output(keys, values, radii, queries, layer_out) -> [batch, d_value]``."""
    return _visible(LOOKUP, fn, seed)


# -- 2. the deferral-radius rule -------------------------------------------------------------------
def codebook_update(keys: torch.Tensor, radii: torch.Tensor, labels: list[int], query: torch.Tensor, label: int,
                    eps_init: float) -> tuple[torch.Tensor, str]:
    """``(new radii, action)`` (see :func:`mi_course.methods.grace.codebook_update`)."""
    return grace.codebook_update(keys, radii, labels, query, label, eps_init)


def _update_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    n, d = 5, 8
    keys = torch.randn(n, d, generator=g) * 4
    radii = torch.rand(n, generator=g) + 1.0
    labels = [int(x) for x in torch.randint(0, 4, (n,), generator=g)]
    eps = 1.0

    def near(k, dist):
        u = torch.randn(d, generator=g)
        return keys[k] + u / u.norm() * dist
    k = int(torch.randint(0, n, (1,), generator=g))
    r = float(radii[k])
    scenarios = [("far away", near(k, r + eps + 1.5), labels[k]),
                 ("conflicting label, between radius and radius + eps_init", near(k, r + 0.5 * eps), (labels[k] + 1) % 4),
                 ("conflicting label, inside the radius", near(k, 0.6 * r), (labels[k] + 2) % 4),
                 ("same label, beyond the radius", near(k, r + 0.5 * eps), labels[k]),
                 ("same label, inside the radius", near(k, 0.5 * r), labels[k])]
    for name, q, lab in scenarios:
        out.append(Case(f"seed {seed}, {name}", {"keys": keys, "radii": radii, "labels": labels, "query": q,
                                                  "label": lab, "eps_init": eps}))
    return out


def _update_variant(kind: str):
    def fn(keys, radii, labels, query, label, eps_init):
        radii = radii.clone().float()
        dists = (keys - query).norm(dim=-1)
        i = int(dists.argmin())
        dist = float(dists[i])
        reach = float(radii[i]) if kind == "reach is radius" else eps_init + float(radii[i])
        if dist > reach:
            return torch.cat([radii, torch.tensor([float(eps_init)])]), "add"
        if int(labels[i]) == int(label):
            if kind == "expand adds eps":
                radii[i] = dist + eps_init
            elif dist > radii[i]:
                radii[i] = dist
            return radii, "expand"
        if kind == "new key keeps eps":
            radii[i] = dist / 2 - grace.SPLIT_MARGIN
            return torch.cat([radii, torch.tensor([float(eps_init)])]), "split"
        if kind == "split to d":
            radii[i] = dist - grace.SPLIT_MARGIN
            return torch.cat([radii, torch.tensor([dist])]), "split"
        radii[i] = dist / 2 - grace.SPLIT_MARGIN
        return torch.cat([radii, torch.tensor([dist / 2])]), "split"
    return fn


UPDATE = Exercise(
    id="w09_codebook_update", title="codebook_update", reference=codebook_update, cases=_update_cases,
    mistakes=[
        Mistake("new key keeps eps", _update_variant("new key keeps eps"),
                "on a conflict *both* balls shrink: the old radius to d/2 − 1e-5 and the new key's to d/2, so they "
                "touch without overlapping."),
        Mistake("reach is radius", _update_variant("reach is radius"),
                "a new key is in conflict (or can expand) when d <= eps_init + radius of the nearest key (the two "
                "balls would overlap), not only when d <= radius."),
        Mistake("split to d", _update_variant("split to d"),
                "split the distance between the two keys in half (d / 2 each), so that neither ball holds the other key."),
        Mistake("expand adds eps", _update_variant("expand adds eps"),
                "with the same label the nearest radius grows to exactly the distance d (if d was larger), "
                "so the ball just covers the new query."),
    ],
    hint="Find the nearest key and its distance d first, then go through the goal's three cases in order (add, "
         "expand, split), on a copy of `radii`; an empty codebook always adds. Self-check: after a split the two "
         "balls touch without overlapping.",
)


def check_codebook_update(fn, seed: int | None = None):
    """Check ``codebook_update(keys, radii, labels, query, label, eps_init) -> (radii, action)``."""
    return _visible(UPDATE, fn, seed)


# -- 3. one ripple test: compositionality I ----------------------------------------------------------
def compositionality_i(table_answer: torch.Tensor, new_value: torch.Tensor, pre_answer: torch.Tensor,
                       old_value: torch.Tensor, post_answer: torch.Tensor) -> float:
    """Compositionality I accuracy with the precondition filter (see
    :func:`mi_course.methods.ripple_effects.compositionality_i`)."""
    return rip.compositionality_i(table_answer, new_value, pre_answer, old_value, post_answer)


def _ci_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, vocab in [(40, 6), (90, 8)]:
        old = torch.randint(0, vocab, (n,), generator=g)
        new = torch.randint(0, vocab, (n,), generator=g)
        new[: n // 2] = (old[: n // 2] + 1) % vocab  # most tests are informative
        noisy = lambda truth, p: torch.where(torch.rand(n, generator=g) < p, truth,  # noqa: E731
                                             torch.randint(0, vocab, (n,), generator=g))
        out.append(Case(f"seed {seed}, {n} tests, {vocab} countries", {
            "table_answer": noisy(new, 0.7), "new_value": new, "pre_answer": noisy(old, 0.6), "old_value": old,
            "post_answer": torch.where(torch.rand(n, generator=g) < 0.4, new, old)}))
    return out


def _ci_variant(kind: str):
    def fn(table_answer, new_value, pre_answer, old_value, post_answer):
        ok = torch.ones_like(new_value, dtype=torch.bool)
        if kind != "no filter":
            ok &= table_answer == new_value
            if kind != "table only":
                ok &= pre_answer == old_value
            if kind != "same kept":
                ok &= new_value != old_value
        target = old_value if kind == "old value" else new_value
        return float((post_answer == target)[ok].float().mean())
    return fn


CI = Exercise(
    id="w09_compositionality_i", title="compositionality_i", reference=compositionality_i, cases=_ci_cases,
    mistakes=[
        Mistake("no filter", _ci_variant("no filter"),
                "score only the tests whose preconditions the unedited model passes (RippleEdits): it must know the "
                "new object's table fact and answer the composed prompt correctly before the edit."),
        Mistake("table only", _ci_variant("table only"),
                "two preconditions: the table fact of the new object (table_answer == new_value) *and* the composed "
                "prompt answered correctly before the edit (pre_answer == old_value)."),
        Mistake("same kept", _ci_variant("same kept"),
                "leave out tests where the new and old values are equal: an unchanged answer would pass without "
                "the edit propagating at all."),
        Mistake("old value", _ci_variant("old value"),
                "after the edit the composed answer should be the *new* object's value (new_value), not the old one."),
    ],
    hint="Build one boolean mask from the goal's three preconditions, then score the post-edit answers against the "
         "new value on those tests alone.",
)


def check_compositionality_i(fn, seed: int | None = None):
    """Check ``compositionality_i(table_answer, new_value, pre_answer, old_value, post_answer) -> float``."""
    return _visible(CI, fn, seed)


# -- 4. TRR and ERR ----------------------------------------------------------------------------------
def retention_rates(edit_answers: torch.Tensor, edit_targets: torch.Tensor, test_answers: torch.Tensor,
                    test_targets: torch.Tensor, n_done: int) -> torch.Tensor:
    """``tensor([TRR, ERR])`` after the first ``n_done`` edits of a stream.

    edit_answers / edit_targets ``[n_stream]``: the model's top-1 answer on each edit prompt of the whole
    stream (measured now) and its ``target_new``; test_answers / test_targets ``[n_test]``: the same on the
    never-edited test facts. TRR: accuracy on the test facts; ERR: accuracy on the edits made so far."""
    trr, err = grace.retention_rates((edit_answers[:n_done] == edit_targets[:n_done]).tolist(),
                                     (test_answers == test_targets).tolist())
    return torch.tensor([trr, err])


def _rr_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, m, done in [(30, 20, 12), (100, 50, 37)]:
        et = torch.randint(0, 50, (n,), generator=g)
        ea = torch.where(torch.rand(n, generator=g) < torch.linspace(0.95, 0.3, n), et,
                         torch.randint(0, 50, (n,), generator=g))
        tt = torch.randint(0, 50, (m,), generator=g)
        ta = torch.where(torch.rand(m, generator=g) < 0.8, tt, torch.randint(0, 50, (m,), generator=g))
        out.append(Case(f"seed {seed}, stream of {n}, {done} done, {m} test facts", {
            "edit_answers": ea, "edit_targets": et, "test_answers": ta, "test_targets": tt, "n_done": done}))
    return out


RR = Exercise(
    id="w09_retention_rates", title="retention_rates", reference=retention_rates, cases=_rr_cases,
    mistakes=[
        Mistake("whole stream", lambda edit_answers, edit_targets, test_answers, test_targets, n_done: torch.tensor([
            float((test_answers == test_targets).float().mean()), float((edit_answers == edit_targets).float().mean())]),
                "ERR counts only the edits made so far: the first n_done of the stream."),
        Mistake("swapped", lambda edit_answers, edit_targets, test_answers, test_targets, n_done: retention_rates(
            edit_answers, edit_targets, test_answers, test_targets, n_done).flip(0),
                "return [TRR, ERR]: test retention (never-edited facts) first, then edit retention."),
        Mistake("latest edit only", lambda edit_answers, edit_targets, test_answers, test_targets, n_done: torch.tensor([
            float((test_answers == test_targets).float().mean()),
            float(edit_answers[n_done - 1] == edit_targets[n_done - 1])]),
                "ERR averages over *all* earlier edits (does the model still hold each of them?), not the latest one."),
    ],
    hint="Both rates are accuracies (the share of answers equal to their targets): TRR over all the test facts, ERR "
         "over the edits made so far only; return them in the order [TRR, ERR].",
)


def check_retention_rates(fn, seed: int | None = None):
    """Check ``retention_rates(edit_answers, edit_targets, test_answers, test_targets, n_done) -> [TRR, ERR]``."""
    return _visible(RR, fn, seed)


EXERCISES = {ex.id: ex for ex in (LOOKUP, UPDATE, CI, RR)}
