"""RippleEdits' criteria on the KB: the tests an edit gets, the precondition filter, the table's shape.
The measured table is held by ``tests/test_kb_ripple_figures.py``."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import grace
from mi_course.methods import ripple_effects as rip

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo yet")


@pytest.fixture(scope="module")
def model():
    return zoo.load("kb-lm")


@pytest.fixture(scope="module")
def kb():
    from mi_course.data.knowledge_base import load_kb

    return load_kb()


def test_person_edit_tests_follow_the_kb(model, kb):
    person = next(p for p in kb.people if p.alias)
    s = person.name
    old = kb.object_of(s, "birth_city")
    new = next(c for c in kb.objects("birth_city") if kb.object_of(c, "country") != kb.object_of(old, "country"))
    e = rip.person_edit(model, kb, s, "birth_city", new)
    by = {c: [t for t in e.tests if t.criterion == c] for c in rip.CRITERIA}
    tok = kb.token_id
    assert [t.expected for t in by["compositionality_I"]] == [tok(kb.object_of(new, "country"))] * 2
    assert all(t.preconditions[1][1] == tok(kb.object_of(s, "birth_country")) for t in by["compositionality_I"])
    assert all(person.alias in t.prompt and t.expected == tok(new) for t in by["subject_aliasing"])
    assert {t.expected for t in by["relation_specificity"]} <= {tok(kb.object_of(s, r)) for r in kb.relations}
    assert len(by["relation_specificity"]) == 5  # 7 relations less birth_city and birth_country
    assert all(t.negate and t.expected == tok(old) for t in by["logical_generalisation"])
    assert all(t.expected == tok(old) for t in by["preservation"]) and len(by["preservation"]) <= rip.MAX_NEIGHBOURS


def test_table_edit_reaches_the_people(model, kb):
    city = kb.facts_of("birth_city")[0].object
    new = next(c for c in kb.objects("country") if c != kb.object_of(city, "country"))
    e = rip.table_edit(model, kb, city, "country", new)
    ci2 = [t for t in e.tests if t.criterion == "compositionality_II"]
    assert ci2 and all(t.expected == kb.token_id(new) for t in ci2)
    assert all(t.preconditions[0][1] == kb.token_id(city) for t in ci2)


def test_precondition_filter_and_ci_score():
    ok = torch.tensor([True, False, True, True])
    assert rip.filtered_accuracy(ok, torch.tensor([True, True, False, True])) == (pytest.approx(2 / 3), 3)
    acc, n = rip.filtered_accuracy(torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool))
    assert n == 0 and acc != acc
    t = torch.tensor
    # test 0 scored and passes; 1 fails the table precondition; 2 same value; 3 scored and fails
    assert rip.compositionality_i(t([5, 9, 4, 6]), t([5, 6, 4, 6]), t([1, 2, 4, 3]), t([1, 2, 4, 3]),
                                  t([5, 6, 4, 3])) == 0.5


def test_ripple_table_no_edit_and_grace(model, kb):
    edits = rip.ripple_edits(model, kb, 4, seed=0)
    assert [e.kind for e in edits] == ["person", "person", "table", "table"]
    none = rip.ripple_table(model, kb, ev.no_edit, edits=edits, progress=False)
    assert none["efficacy"] == 0.0 and none["relation_specificity"] == 1.0 and none["preservation"] == 1.0
    assert none["compositionality_I_stored"] == 0.0 and none["n_edits"] == {"person": 2, "table": 2}
    assert set(none["counts"]) == set(rip.CRITERIA)
    g = rip.ripple_table(model, kb, grace.grace_editor(), edits=edits, progress=False)
    assert g["efficacy"] == 1.0 and g["relation_specificity"] == 1.0
    assert g["counts"] == none["counts"]  # the filter depends on the unedited model only


def test_bad_input(model, kb):
    with pytest.raises(InputError, match="ripple edits of a person change"):
        rip.person_edit(model, kb, kb.subjects[0], "job", "pilot")
    with pytest.raises(InputError, match="editor must be a function"):
        rip.ripple_table(model, kb, "rome", 2)
    with pytest.raises(InputError, match="n_edits must be a positive int"):
        rip.ripple_edits(model, kb, 0)
