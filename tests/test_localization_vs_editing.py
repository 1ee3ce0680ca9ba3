"""Hase et al. 2023 on kb-lm: the regression pieces, and the shipped sweep re-measured on a subset."""

import math

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import localization_vs_editing as lve


def test_one_hot_and_r_squared():
    X = lve.one_hot(torch.tensor([0, 2, 1, 2]), 4)
    assert X.shape == (4, 4) and X.dtype == torch.float64 and X[:, 3].sum() == 0
    assert X.argmax(1).tolist() == [0, 2, 1, 2]
    x = torch.linspace(0, 1, 20, dtype=torch.float64)
    assert lve.r_squared(x[:, None], 3 * x + 1) == pytest.approx(1.0)
    # an intercept-only fit explains nothing; a one-hot of group means explains the group structure
    y = torch.tensor([1.0, 1.0, 3.0, 3.0], dtype=torch.float64)
    assert lve.r_squared(lve.one_hot(torch.tensor([0, 0, 1, 1]), 2), y) == pytest.approx(1.0)


def test_regression_table_on_planted_data():
    """Success = a per-layer level + noise: layer explains it, tracing (independent noise) adds ~nothing;
    success = tracing + noise: tracing explains it."""
    g = torch.Generator().manual_seed(0)
    F, L = 200, 6
    level = torch.linspace(1, 0, L, dtype=torch.float64)
    te = torch.rand(F, L, generator=g, dtype=torch.float64)
    es = level + 0.05 * torch.randn(F, L, generator=g, dtype=torch.float64)
    t = lve.regression_table(te, es)
    assert t["layer"] > 0.9 and t["tracing"] < 0.02 and t["both"] - t["layer"] < 0.01
    t2 = lve.regression_table(te, te + 0.01 * torch.randn(F, L, generator=g, dtype=torch.float64))
    assert t2["tracing"] > 0.95 and t2["layer"] < 0.05


def test_correlations_and_choice():
    te = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.8, 0.0], [0.2, 0.1, 0.0]], dtype=torch.float64)
    es = torch.tensor([[1.0, 0.2, 0.0], [0.3, 0.9, 0.1], [0.9, 0.2, 0.0]], dtype=torch.float64)
    assert lve.peak_layers(te).tolist() == [0, 1, 0]
    assert lve.peak_correlation(te, es) == pytest.approx(1.0)
    assert lve.peak_agreement(te, es) == 1.0
    corr = lve.per_layer_correlation(te, es)
    assert math.isnan(float(corr[2])) and corr[0] == pytest.approx(lve.pearson(te[:, 0], es[:, 0]))  # constant column: NaN
    c = lve.layer_choice(te, es)
    assert c["fixed_layer"] == 0 and c["fixed"] == pytest.approx((1.0 + 0.3 + 0.9) / 3)
    assert c["tracing"] == pytest.approx((1.0 + 0.9 + 0.9) / 3) and c["oracle"] == c["tracing"]


def test_rewrite_score():
    assert float(lve.rewrite_score(0.2, 0.6)) == pytest.approx(0.5)
    assert float(lve.rewrite_score(0.0, 1.0)) == 1.0


@pytest.mark.parametrize("call, words", [
    (lambda: lve.rewrite_score(1.0, 0.5), "probabilities"),
    (lambda: lve.rewrite_score(torch.zeros(2), torch.zeros(3)), "same shape"),
    (lambda: lve.one_hot(torch.tensor([0, 4]), 3), "0..2"),
    (lambda: lve.one_hot(torch.tensor([0.0, 1.0]), 3), "integer"),
    (lambda: lve.r_squared(torch.zeros(3, 1), torch.ones(3)), "constant"),
    (lambda: lve.r_squared(torch.zeros(3, 1), torch.ones(4)), "rows"),
    (lambda: lve.regression_table(torch.zeros(3, 2), torch.zeros(3, 3)), "[facts, layers]"),
    (lambda: lve.design_matrix(torch.zeros(3, 2), "depth"), "model must be one of"),
    (lambda: lve.tracing_effects("not a trace"), "TraceResult"),
])
def test_bad_input(call, words):
    with pytest.raises(InputError) as info:
        call()
    assert words in str(info.value)


# -- the shipped sweep --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def measured():
    return zoo.card("kb-lm").measured("week10_localization")


def test_the_table_recomputes_from_the_stored_arrays(measured):
    te, rw = torch.tensor(measured["tracing"]), torch.tensor(measured["rewrite"])
    F, L = te.shape
    assert F == measured["settings"]["n_facts"] == len(measured["facts"]) and L == measured["settings"]["n_layers"]
    for key, arr in (("r2", rw), ("r2_paraphrase", torch.tensor(measured["paraphrase"]))):
        t = lve.regression_table(te, arr)
        assert {k: round(v, 4) for k, v in t.items()} == pytest.approx(measured[key], abs=2e-4)
    assert lve.peak_correlation(te, rw) == pytest.approx(measured["peak_correlation"], abs=2e-4, nan_ok=True)
    assert lve.layer_choice(te, rw)["tracing"] == pytest.approx(measured["layer_choice"]["tracing"], abs=2e-4)
    assert lve.shuffled_baseline(te, rw, measured["settings"]["seed"])["both"] == pytest.approx(
        measured["r2_shuffled_tracing"]["both"], abs=2e-4)
    assert [round(float(x), 4) for x in te.mean(0)] == pytest.approx(measured["mean_tracing"], abs=2e-4)


@pytest.mark.slow
def test_three_facts_re_measured(measured):
    """Three of the stored facts measured again from scratch give the stored rows."""
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import causal_tracing as ct
    from mi_course.methods import edit_evaluation as ev

    torch.set_num_threads(1)
    model, kb = zoo.load("kb-lm"), load_kb()
    S = measured["settings"]
    facts = ev.known_facts(model, kb, S["n_facts"], S["seed"])
    assert [{**f, "target_new": n} for f, n in zip(facts, lve.counterfactual_targets(kb, facts, S["seed"] + 1))] \
        == measured["facts"]
    noise = ct.NOISE_FACTOR * ct.embedding_std(model, kb.subjects)
    assert noise == pytest.approx(S["noise"], abs=1e-4)
    for i in (0, len(facts) // 2, len(facts) - 1):
        f = measured["facts"][i]
        row = lve.measure_fact(model, kb, {k: f[k] for k in ("prompt", "subject", "target", "relation")},
                               f["target_new"], n_samples=S["n_samples"], noise=noise, seed=S["seed"])
        for key in ("tracing", "rewrite", "paraphrase", "neighbourhood"):
            assert row[key] == pytest.approx(measured[key][i], abs=2e-3), (i, key)
