"""The ripple effects of an edit: RippleEdits' criteria (Cohen et al. 2024), computed exactly on the KB.

An edit ``(s, r, o → o*)`` has consequences beyond its own prompt. RippleEdits scores six kinds
of test query; the knowledge base (:mod:`mi_course.data.knowledge_base`) knows every true answer,
so each test here is exact. A test counts only if the **unedited** model passes its preconditions
(RippleEdits does the same: a model that never knew the facts a test builds on cannot be blamed
for not propagating an edit through them). Accuracy = top-1 next token equals the expected object.

==========================  =====================================================  ===========================
criterion (key)             test query after editing (s, r, o → o*)                 preconditions (unedited)
==========================  =====================================================  ===========================
``efficacy`` (reference)    the edit prompt → o*                                    it answers o
``logical_generalisation``  every other wording of (s, r): o is no longer the       each answers o
                            answer (see the note below)
``compositionality_I``      s's composed relation, test-only two-hop wordings       the new object's table fact
                            (``kb.two_hop_prompts``: "s was born in a city in")     (o* → z*) and the prompt's
                            → z* = table(o*) (birth_city → country;                 pre-edit answer z = table(o)
                            employer → headquarters)
``compositionality_I_stored``  the same with the composed relation's own            the same
                            (trained) wordings ("s is a citizen of")
``compositionality_II``     a *table* edit (city c, country, z → z*): people        the person's birth city (or
                            born in c (employer e: people working for e), their     employer) is known, and the
                            two-hop wordings → z*                                   prompt's pre-edit answer is z
``compositionality_II_stored``  the same with the stored wordings                   the same
``subject_aliasing``        s's alias in every wording of r → o*                    each answers o
``preservation``            the old object's other subjects (``kb.neighbours``,     each answers its true object
                            ≤ 5) keep it: the edit template with them → o
``relation_specificity``    s's other relations that do not depend on r keep       each answers its true object
                            their objects (birth_city: employer, university,
                            job, hobby, work_city)
==========================  =====================================================  ===========================

Where the KB differs from RippleEdits' Wikidata, and what is scored instead (say so beside numbers):

* **Logical generalisation**: RippleEdits' LG queries follow from symmetric or inverse relations
  (sibling, spouse). The KB's person relations are all many-to-one with no symmetric or inverse
  relation between editable facts, so the logical consequence scored is the one every functional
  relation implies: after ``(s, r, o*)``, ``(s, r, o)`` no longer holds, on every other wording
  (incl. the held-out one). It is weaker than paraphrase success (o* need not be the answer).
* **Preservation**: RippleEdits' PV asks that a one-to-many relation keep its other objects. The KB
  has no one-to-many person relation; its inverse side has one (the old object o has many subjects),
  so PV here asks that o keep its other subjects (ROME's neighbourhood prompts, top-1).
* **Relation specificity** is RippleEdits' RS (the subject's other relations), as in the paper.
* Compositionality needs edits with a composed consequence, so person edits are of ``birth_city``
  or ``employer``, and the new object is chosen with a table value different from the old one
  (otherwise CI could not tell a propagated edit from none). Half the edited people have an alias.

>>> from mi_course.methods import edit_evaluation as ev
>>> ripple_table(model, kb, ev.rome_editor(), n_edits=20)
{'efficacy': 1.0, 'logical_generalisation': ..., ..., 'counts': {...}, 'n_edits': {...}}

Editors are functions ``(model, request) -> edit`` (:mod:`~mi_course.methods.edit_evaluation`'s, MEMIT's,
:func:`mi_course.methods.grace.grace_editor`); the edit is anything
:func:`mi_course.methods.grace.next_token_logits` runs (a ``rome.Edit``, a ``Grace``, an edited copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.causal_tracing import check_model, target_token
from mi_course.methods.grace import top1

__all__ = ["CRITERIA", "RippleTest", "RippleEdit", "person_edit", "table_edit", "ripple_edits",
           "filtered_accuracy", "compositionality_i", "ripple_table", "PAPER"]

CRITERIA = ("efficacy", "logical_generalisation", "compositionality_I", "compositionality_I_stored",
            "compositionality_II", "compositionality_II_stored", "subject_aliasing", "preservation",
            "relation_specificity")
#: RippleEdits (Cohen et al. 2024), GPT-2 XL on the RECENT subset (accuracy, %): LG, CI, CII, SA, PV, RS.
PAPER = {"ROME": {"logical_generalisation": 20.2, "compositionality_I": 35.6, "compositionality_II": 46.8,
                  "subject_aliasing": 86.8, "preservation": 100.0, "relation_specificity": 55.4},
         "MEMIT": {"logical_generalisation": 21.8, "compositionality_I": 30.3, "compositionality_II": 46.2,
                   "subject_aliasing": 92.9, "preservation": 100.0, "relation_specificity": 56.8}}
#: person relation -> (composed relation, table relation); table relation -> person relation that points to it
_COMPOSE = {"birth_city": ("birth_country", "country"), "employer": ("work_city", "headquarters")}
_POINTS_TO = {"country": "birth_city", "headquarters": "employer"}
MAX_NEIGHBOURS = 5
MAX_PEOPLE = 5


@dataclass
class RippleTest:
    """One test query: ``prompt`` should give ``expected`` after the edit (or, with ``negate``, must not
    give it); it is scored only if the unedited model answers each ``(prompt, token)`` in ``preconditions``."""

    criterion: str
    prompt: str
    expected: int
    preconditions: list[tuple[str, int]]
    negate: bool = False


@dataclass
class RippleEdit:
    """An edit request (ROME's format) and its tests."""

    request: dict
    tests: list[RippleTest] = field(default_factory=list)
    kind: str = "person"


def _tok(model, word: str) -> int:
    return target_token(model, word)


def _first(kb, subject: str, relation: str) -> str:
    return kb.split_templates(subject, relation, "train")[0]


def person_edit(model, kb, subject: str, relation: str, target_new: str) -> RippleEdit:
    """The tests of editing (``subject``, ``relation`` ∈ {birth_city, employer}) to ``target_new``."""
    if relation not in _COMPOSE:
        raise InputError(f"ripple edits of a person change {list(_COMPOSE)} (they have composed consequences), "
                         f"not {relation!r}")
    req = kb.rome_request(subject, relation, target_new)
    old = kb.object_of(subject, relation)
    o, o_new = _tok(model, old), _tok(model, target_new)
    composed, table = _COMPOSE[relation]
    z, z_new = kb.object_of(old, table), kb.object_of(target_new, table)
    tpl = req["prompt"]
    tests = [RippleTest("efficacy", tpl.format(subject), o_new, [(tpl.format(subject), o)])]
    for t in kb.templates(relation):
        if t != tpl:
            p = t.format(subject)
            tests.append(RippleTest("logical_generalisation", p, o, [(p, o)], negate=True))
    if z != z_new:
        know_new = (_first(kb, target_new, table).format(target_new), _tok(model, z_new))
        for crit, prompts in (("compositionality_I", kb.two_hop_prompts(subject, composed)),
                              ("compositionality_I_stored", [t.format(subject) for t in kb.templates(composed)])):
            for p in prompts:
                tests.append(RippleTest(crit, p, _tok(model, z_new), [know_new, (p, _tok(model, z))]))
    for alias in kb.aliases(subject):
        for t in kb.templates(relation):
            p = t.format(alias)
            tests.append(RippleTest("subject_aliasing", p, o_new, [(p, o)]))
    for n in kb.neighbours(subject, relation)[:MAX_NEIGHBOURS]:
        p = tpl.format(n)
        tests.append(RippleTest("preservation", p, o, [(p, o)]))
    for r in kb.relations:
        if r == relation or r == composed:
            continue
        p = _first(kb, subject, r).format(subject)
        tok = _tok(model, kb.object_of(subject, r))
        tests.append(RippleTest("relation_specificity", p, tok, [(p, tok)]))
    return RippleEdit(req, tests, "person")


def table_edit(model, kb, entity: str, relation: str, target_new: str) -> RippleEdit:
    """The tests of editing a table fact (a city's ``country``, an employer's ``headquarters``)."""
    if relation not in _POINTS_TO:
        raise InputError(f"table edits change {list(_POINTS_TO)}, not {relation!r}")
    req = kb.rome_request(entity, relation, target_new)
    old = kb.object_of(entity, relation)
    z, z_new = _tok(model, old), _tok(model, target_new)
    tpl = req["prompt"]
    tests = [RippleTest("efficacy", tpl.format(entity), z_new, [(tpl.format(entity), z)])]
    person_rel = _POINTS_TO[relation]
    composed = _COMPOSE[person_rel][0]
    people = [f.subject for f in kb.facts_of(person_rel) if f.object == entity][:MAX_PEOPLE]
    for s in people:
        knows = (_first(kb, s, person_rel).format(s), _tok(model, entity))
        for crit, prompts in (("compositionality_II", kb.two_hop_prompts(s, composed)),
                              ("compositionality_II_stored", [t.format(s) for t in kb.templates(composed)])):
            for p in prompts:
                tests.append(RippleTest(crit, p, z_new, [knows, (p, z)]))
    for n in kb.neighbours(entity, relation)[:MAX_NEIGHBOURS]:
        p = tpl.format(n)
        tests.append(RippleTest("preservation", p, z, [(p, z)]))
    return RippleEdit(req, tests, "table")


def ripple_edits(model, kb, n_edits: int, seed: int = 0) -> list[RippleEdit]:
    """``n_edits`` seeded edits: ``ceil(n/2)`` person edits (birth_city / employer alternately; half the
    people with an alias; a new object whose table value differs) and ``floor(n/2)`` table edits
    (country / headquarters alternately, of entities someone is linked to)."""
    check_model(model)
    if isinstance(n_edits, bool) or not isinstance(n_edits, int) or n_edits < 1:
        raise InputError(f"n_edits must be a positive int, got {n_edits!r}")
    g = torch.Generator().manual_seed(seed)
    pick = lambda xs: xs[int(torch.randint(len(xs), (1,), generator=g))]  # noqa: E731
    aliased = [p.name for p in kb.people if p.alias]
    plain = [p.name for p in kb.people if not p.alias]
    out: list[RippleEdit] = []
    used = set()
    n_person = (n_edits + 1) // 2
    i = 0
    while len(out) < n_person:
        rel = ("birth_city", "employer")[i % 2]
        s = pick(aliased) if (i // 2) % 2 == 0 and aliased else pick(plain)
        i += 1
        if (s, rel) in used:
            continue
        used.add((s, rel))
        old = kb.object_of(s, rel)
        table = _COMPOSE[rel][1]
        cands = [o for o in kb.objects(rel) if kb.object_of(o, table) != kb.object_of(old, table)]
        out.append(person_edit(model, kb, s, rel, pick(cands)))
    j = 0
    while len(out) < n_edits:
        rel = ("country", "headquarters")[j % 2]
        j += 1
        linked = sorted({f.object for f in kb.facts_of(_POINTS_TO[rel])})
        e = pick(linked)
        if (e, rel) in used:
            continue
        used.add((e, rel))
        old = kb.object_of(e, rel)
        out.append(table_edit(model, kb, e, rel, pick([o for o in kb.objects(rel) if o != old])))
    return out


# -- scoring ---------------------------------------------------------------------------------------
def filtered_accuracy(precondition_ok: torch.Tensor, correct: torch.Tensor) -> tuple[float, int]:
    """``(accuracy over the tests whose preconditions hold, how many those are)``; NaN if none.
    Both ``[n_tests]`` bool."""
    keep = precondition_ok.bool()
    n = int(keep.sum())
    if n == 0:
        return float("nan"), 0
    return float(correct.bool()[keep].float().mean()), n


def compositionality_i(table_answer: torch.Tensor, new_value: torch.Tensor, pre_answer: torch.Tensor,
                       old_value: torch.Tensor, post_answer: torch.Tensor) -> float:
    """Compositionality I with RippleEdits' precondition filter, from top-1 answers (all ``[n]`` token ids).

    Test ``i`` asks the composed relation after the edit (e.g. "s was born in a city in" after
    ``birth_city → c*``); it is scored only if the unedited model knows the new object's table fact
    (``table_answer == new_value``: c* is in country z*) and answered the composed prompt correctly before
    the edit (``pre_answer == old_value``), and only if ``new_value != old_value``. It passes when
    ``post_answer == new_value``. Returns the accuracy over the scored tests (NaN if none).
    """
    ok = (table_answer == new_value) & (pre_answer == old_value) & (new_value != old_value)
    return filtered_accuracy(ok, post_answer == new_value)[0]


def ripple_table(model, kb, editor: Callable, n_edits: int = 20, seed: int = 0, edits: Sequence[RippleEdit] | None = None,
                 progress: bool = True) -> dict:
    """Each criterion's accuracy for ``editor`` over ``n_edits`` seeded edits, each from the original model.

    editor: ``(model, request) -> edit`` (``None`` for the unedited model; see the module docstring).
    Returns ``{criterion: accuracy (NaN if no test was scored), ..., "counts": {criterion: {"scored", "tests"}},
    "n_edits": {"person", "table"}}``.
    """
    check_model(model)
    if not callable(editor):
        raise InputError("editor must be a function (model, request) -> edit, e.g. edit_evaluation.rome_editor()")
    edits = list(edits) if edits is not None else ripple_edits(model, kb, n_edits, seed)
    pre_prompts = sorted({p for e in edits for t in e.tests for p, _ in t.preconditions})
    pre_answer = dict(zip(pre_prompts, top1(model, pre_prompts).tolist()))
    ok: dict[str, list[bool]] = {c: [] for c in CRITERIA}
    cand: dict[str, int] = {c: 0 for c in CRITERIA}
    for e in tqdm(edits, desc="ripple", disable=not progress):
        tests = []
        for t in e.tests:
            cand[t.criterion] += 1
            if all(pre_answer[p] == tok for p, tok in t.preconditions):
                tests.append(t)
        if not tests:
            continue
        edit = editor(model, e.request)
        answers = top1(model, [t.prompt for t in tests], edit).tolist()
        for t, a in zip(tests, answers):
            ok[t.criterion].append((a != t.expected) if t.negate else (a == t.expected))
    out: dict = {}
    for c in CRITERIA:
        acc, n = filtered_accuracy(torch.ones(len(ok[c]), dtype=torch.bool), torch.tensor(ok[c], dtype=torch.bool))
        out[c] = round(acc, 4) if acc == acc else float("nan")
    out["counts"] = {c: {"scored": len(ok[c]), "tests": cand[c]} for c in CRITERIA}
    out["n_edits"] = {"person": sum(e.kind == "person" for e in edits), "table": sum(e.kind == "table" for e in edits)}
    return out
