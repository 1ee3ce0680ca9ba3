"""Week 09's sequential-editing figures on the shipped ``kb-lm`` (``measured_week09_grace.json``, written by
``benchmarks/kb_grace_figures.py --write``): the file's shape and claims, and its 10-edit rows re-measured."""

import pytest
import torch

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.methods import grace

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo yet")


@pytest.fixture(scope="module")
def fig():
    try:
        return zoo.card("kb-lm").measured("week09_grace")
    except FileNotFoundError:
        pytest.skip("no measured_week09_grace.json yet (benchmarks/kb_grace_figures.py --write)")


@pytest.fixture(scope="module")
def model():
    return zoo.load("kb-lm")


def _row(rows, n):
    return next(r for r in rows if r["edits"] == n)


def test_file_shape_and_claims(fig):
    g = fig["rows"]["GRACE"]
    assert [r["edits"] for r in g] == [1, 10, 100, 1000]
    assert all(0 <= r[k] <= 1 for r in g for k in ("TRR", "ERR", "paraphrase"))
    # GRACE keeps its edits and leaves untouched facts alone, one key per edit at the default radius ...
    assert _row(g, 1000)["ERR"] >= 0.95 and _row(g, 1000)["TRR"] >= fig["unedited_TRR"] - 0.02
    assert _row(g, 1000)["keys"] == 1000
    # ... but generalises to paraphrases only within its radius
    assert _row(g, 1000)["paraphrase"] <= 0.1
    # a radius spanning the paraphrase distances generalises; past the distance to other people's keys the
    # codebook starts to split and expand into them (fewer keys than edits, edits and test facts lost)
    sweep = {float(e): _row(rows, 100) for e, rows in fig["eps_sweep"].items()}
    small = [sweep[e]["paraphrase"] for e in sorted(sweep) if e <= 5.0]
    assert small == sorted(small) and small[0] == 0.0 and sweep[5.0]["paraphrase"] >= 0.9
    assert sweep[1.0]["keys"] == 100 and sweep[max(sweep)]["keys"] < 100 and sweep[max(sweep)]["ERR"] < 1.0
    for name in ("ROME", "FT", "FT-L"):
        assert [r["edits"] for r in fig["rows"][name]] == [1, 10, 100]
        # weight editors applied one after another forget the untouched facts and the earlier edits
        assert _row(fig["rows"][name], 100)["TRR"] < 0.2 and _row(fig["rows"][name], 100)["ERR"] < 0.6
    assert _row(fig["rows"]["ROME"], 1)["TRR"] >= 0.98
    # a paraphrase-wide radius keeps most of both over 1,000 edits, at the price of some keys and edits
    wide = fig["rows"]["GRACE eps 5.0"]
    assert _row(wide, 1000)["paraphrase"] >= 0.85 and _row(wide, 1000)["TRR"] >= 0.97
    assert 0.9 <= _row(wide, 1000)["ERR"] < 1.0 and _row(wide, 1000)["keys"] < 1000


@pytest.mark.slow
def test_ten_edit_rows_re_measured(fig, model):
    """The first 10 edits of the same stream: GRACE (default and eps 5) and FT-L give the file's rows."""
    kb = load_kb()
    stream = grace.sequential_stream(model, kb, 10, seed=fig["settings"]["stream_seed"])
    got = grace.sequential_editing(model, kb, "grace", 10, (10,), stream=stream, progress=False)[0]
    want = _row(fig["rows"]["GRACE"], 10)
    assert got["keys"] == want["keys"] and got["ERR"] == want["ERR"]
    assert got["TRR"] == pytest.approx(want["TRR"], abs=0.01)
    assert got["paraphrase"] == pytest.approx(want["paraphrase"], abs=0.05)
    got = grace.sequential_editing(model, kb, "grace", 10, (10,), eps_init=5.0, stream=stream, progress=False)[0]
    want = _row(fig["eps_sweep"]["5.0"], 10)
    assert got["paraphrase"] == pytest.approx(want["paraphrase"], abs=0.05) and got["keys"] == want["keys"]
    got = grace.sequential_editing(model, kb, "ft-l", 10, (10,), layer=fig["settings"]["weight_layer"],
                                   stream=stream, progress=False)[0]
    want = _row(fig["rows"]["FT-L"], 10)
    assert got["ERR"] == pytest.approx(want["ERR"], abs=0.1) and got["TRR"] == pytest.approx(want["TRR"], abs=0.03)


def test_key_distances_re_measured(fig, model):
    """Paraphrases of one fact lie closer together than any two people on one template (why a radius
    between the two generalises without touching other facts)."""
    got = grace.key_distances(model, load_kb())
    want = fig["key_distances"]
    q = [0.0, 0.05, 0.5, 0.95, 1.0]
    for k, v in got.items():
        assert [round(float(x), 2) for x in v.quantile(torch.tensor(q))] == pytest.approx(want[k], abs=0.02)
    assert want["paraphrase"][-1] < want["other_people"][0] and want["paraphrase"][-1] < want["other_relations"][0]
