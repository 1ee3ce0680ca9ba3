"""Week 09's ripple-effect table on the shipped ``kb-lm`` (``measured_week09_ripple.json``, written by
``benchmarks/kb_ripple_figures.py --write``): its shape, and the no-edit and GRACE rows re-measured."""

import pytest

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import grace
from mi_course.methods import ripple_effects as rip

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo yet")


@pytest.fixture(scope="module")
def fig():
    try:
        return zoo.card("kb-lm").measured("week09_ripple")
    except FileNotFoundError:
        pytest.skip("no measured_week09_ripple.json yet (benchmarks/kb_ripple_figures.py --write)")


@pytest.fixture(scope="module")
def model():
    return zoo.load("kb-lm")


def _same(got: dict, want: dict, tol: float = 0.0):
    for c in rip.CRITERIA:
        a, b = got[c], want[c]
        if b is None:
            assert a != a, c
        else:
            assert a == pytest.approx(b, abs=tol), c
    assert got["counts"] == want["counts"]


def test_file_shape(fig):
    rows = fig["rows"]
    assert set(rows) >= {"no edit", "ROME", "FT", "FT-L", "GRACE", "MEMIT"}
    for name, row in rows.items():
        if isinstance(row, str):
            assert name == "MEMIT" and row.startswith("missing")
            continue
        assert set(row) >= set(rip.CRITERIA) | {"counts", "n_edits"}
        assert row["counts"] == rows["no edit"]["counts"]  # the same tests pass the same filter
    assert rows["no edit"]["efficacy"] == 0.0 and rows["no edit"]["relation_specificity"] == 1.0
    # GRACE changes nothing but its own prompt: no ripple, no damage
    g = rows["GRACE"]
    assert g["efficacy"] == 1.0 and g["relation_specificity"] == 1.0 and g["preservation"] >= 0.95
    assert g["compositionality_I"] == 0.0 and g["subject_aliasing"] == 0.0
    # a paraphrase-wide radius (5.0) generalises over wordings but reaches other cities' keys (table edits)
    assert rows["GRACE eps 5"]["logical_generalisation"] == 1.0 and rows["GRACE eps 5"]["preservation"] < 0.9
    # weight edits at the subject reach the composed facts (CI) and hurt the subject's other relations (RS)
    for name in ("ROME", "MEMIT"):
        if isinstance(rows[name], dict):
            assert rows[name]["compositionality_I_stored"] > 0.5 and rows[name]["relation_specificity"] < 0.7


def test_no_edit_row_re_measured(fig, model):
    got = rip.ripple_table(model, load_kb(), ev.no_edit, fig["settings"]["n_edits"], fig["settings"]["seed"],
                           progress=False)
    _same(got, fig["rows"]["no edit"])


@pytest.mark.slow
def test_grace_row_re_measured(fig, model):
    got = rip.ripple_table(model, load_kb(), grace.grace_editor(), fig["settings"]["n_edits"],
                           fig["settings"]["seed"], progress=False)
    _same(got, fig["rows"]["GRACE"], tol=0.02)
