"""Week 10's bias study as shipped (``measured_week10_bias.json``, written by
``benchmarks/kb_bias_figures.py --write``): a cheap subset re-measured on the checkpoint, and the
shape of the claims the notebook makes from the file."""

import pytest

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.methods import bias_components as bc


@pytest.fixture(scope="module")
def fig():
    return zoo.card("kb-lm").measured("week10_bias")


@pytest.fixture(scope="module")
def model_kb():
    return zoo.load("kb-lm"), load_kb()


def test_bias_before_and_the_references_remeasured(fig, model_kb):
    model, kb = model_kb
    prompts = bc.bias_prompts(kb, fig["settings"]["n_pairs"], "eval")
    assert bc.bias_score(model, kb, prompts) == pytest.approx(fig["bias_before"], abs=2e-3)
    assert bc.kb_bias(kb) == pytest.approx(fig["kb_bias"], abs=1e-3)
    assert fig["balanced_bias"] == 0
    # the model amplifies the data's skew on names it never read
    assert fig["bias_before"] > fig["kb_bias"] > 0


def test_top_components_remeasured(fig, model_kb):
    """The effects of the three strongest components and of the weakest, re-measured on the same prompts:
    the values, and that the top two stay ahead of the rest."""
    model, kb = model_kb
    prompts = bc.bias_prompts(kb, fig["settings"]["n_pairs"], "eval")
    rows = fig["components"][:3] + fig["components"][-1:]
    got = {r["component"]: r["effect"] for r in bc.mediation_effects(model, kb, prompts, components=[r["component"] for r in rows])}
    for r in rows:
        assert got[r["component"]] == pytest.approx(r["effect"], abs=2e-3)
    top2 = min(got[r["component"]] for r in rows[:2])
    assert all(got[r["component"]] < top2 for r in rows[2:])


def test_the_rows_the_notebook_reads(fig):
    rows = {r["name"]: r for r in fig["rows"]}  # the last row of each name
    names = set(rows)
    assert {"located top-2", "located top-4", "all heads and MLPs"} <= names
    assert {"whole model", "random like top-2", "random like top-4"} <= names
    for r in fig["rows"]:
        for key in ("bias_after", "bias_removed", "recall_heldout", "recall_heldout_job", "loss", "n_trainable", "seconds"):
            assert key in r, (r["name"], key)
        assert r["bias_removed"] == pytest.approx(1 - r["bias_after"] / fig["bias_before"], abs=2e-3)
    ranked = [c["component"] for c in fig["components"]]
    assert rows["located top-2"]["components"] == ranked[:2]
    assert len(ranked) == 30 and ranked == sorted(ranked, key=lambda c: -next(x["effect"] for x in fig["components"] if x["component"] == c))
