"""Week 11's figures on the shipped ``kb-lm`` (``measured_week11_kn.json``, written by
``benchmarks/kb_kn_figures.py --write``): a few facts re-measured against the file, and the summary
recomputed from the file's own rows."""

import pytest

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import knowledge_neurons as kn

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo")
TOL = 0.02


@pytest.fixture(scope="module")
def measured():
    try:
        return zoo.card("kb-lm").measured("week11_kn")
    except FileNotFoundError:
        pytest.skip("no measured_week11_kn.json yet (benchmarks/kb_kn_figures.py --write)")


@pytest.fixture(scope="module")
def model():
    return zoo.load("kb-lm")


def test_summary_is_the_mean_of_the_rows(measured, model):
    s = kn.summarize_facts(measured["facts"], model.cfg.n_layers)
    assert s == measured["summary"]
    assert s["n_facts"] == measured["settings"]["n_facts"] == len(measured["facts"])


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 2])
def test_facts_re_measured(measured, model, index):
    """Facts 0-2 of the file, re-measured (ROME only at layer 0 here, to save time): the same neurons,
    the same suppress / amplify effects, flips, activation ratios and edit scores."""
    kb = load_kb()
    st = measured["settings"]
    case = ev.kb_cases(model, kb, index + 1, seed=st["seed"])[index]
    got = kn.measure_fact(model, kb, case, index, st["seed"], scales=st["scales"], rome_layers=(0,) if index == 0 else ())
    want = measured["facts"][index]
    assert got["neurons"] == want["neurons"] and got["layers"] == want["layers"]
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=TOL), key
    for sc, scores in want["kn_edit"].items():
        assert got["kn_edit"][sc] == pytest.approx(scores, abs=TOL), sc
    for L, scores in got["rome"].items():
        assert scores == pytest.approx(want["rome"][L], abs=0.05), L
