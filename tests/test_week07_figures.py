"""Every number the week 07 notebook and deck quote, re-measured on the shipped ``kb-lm``."""

import pytest

from mi_course import zoo

W = pytest.importorskip("mi_course.course.figures.week07")


@pytest.fixture(scope="module")
def n():
    return W.numbers()


def test_card_numbers_in_the_prose():
    f = {k: v["value"] for k, v in zoo.card("kb-lm").figures.items()}
    assert f["recall_heldout"] == pytest.approx(0.981, abs=5e-4)
    assert f["recall_train"] == pytest.approx(0.988, abs=5e-4)
    per = [f[f"recall_heldout_{r}"] for r in ("birth_city", "employer", "university", "job", "hobby", "birth_country", "work_city")]
    assert min(per) == pytest.approx(0.970, abs=5e-4) and max(per) == pytest.approx(0.993, abs=5e-4)
    assert f["recall_two_hop_wording"] == pytest.approx(0.46, abs=5e-3)
    assert f["recall_heldout_rare"] == pytest.approx(0.944, abs=5e-4) and f["recall_heldout_famous"] == 1.0


def test_confidence_of_real_and_made_up_people(n):
    c = n["crawl"]
    assert c["median_conf_known"] == pytest.approx(0.96, abs=5e-3)
    assert c["median_conf_unknown"] == pytest.approx(0.61, abs=5e-3)
    assert c["share_confident_known"] == pytest.approx(0.99, abs=5e-3)
    assert c["share_confident_unknown"] == pytest.approx(0.67, abs=5e-3)


def test_crawl_precision_and_recall(n):
    c = n["crawl"]
    assert c["known_only"][0] == pytest.approx(0.996, abs=5e-4) and c["known_only"][1] == pytest.approx(0.983, abs=5e-4)
    assert c["per_relation"]["all"][0] == pytest.approx(0.61, abs=5e-3)
    assert c["per_relation"]["all"][1] == pytest.approx(0.983, abs=5e-4)
    assert c["per_relation"]["country"] == (1.0, 1.0) and c["per_relation"]["headquarters"] == (1.0, 1.0)
    p9, r9 = c["curve"][W.THRESHOLDS.index(0.9)]
    assert p9 == pytest.approx(0.86, abs=5e-3) and r9 == pytest.approx(0.80, abs=5e-3)
    precisions = [p for p, _ in c["curve"]]
    recalls = [r for _, r in c["curve"]]
    assert precisions == sorted(precisions) and recalls == sorted(recalls, reverse=True)


def test_errors_by_frequency_and_template(n):
    e = n["errors"]
    assert e["n_wrong"] == 40 and e["n"] == 2100
    assert e["bin_counts"][0] == pytest.approx(38, abs=1) and e["bin_recall"][0] == pytest.approx(0.937, abs=5e-4)
    assert e["bin_counts"][-1] == pytest.approx(143, abs=1) and e["bin_recall"][-1] == 1.0
    worst = min(e["template_recall"].items(), key=lambda kv: kv[1])
    assert worst[0] == ("employer", "As far as we know, {} works for") and worst[1] == pytest.approx(0.923, abs=5e-4)


def test_probes_beat_their_baselines(n):
    p = n["probes"]
    g, bc, h = p["gender"], p["birth_country"], p["hobby"]
    assert g["probe"][1] == pytest.approx(0.97, abs=0.02)
    assert bc["probe"][3] == pytest.approx(0.6, abs=0.03) and max(bc["probe"]) == bc["probe"][3]
    assert bc["probe"][-1] == pytest.approx(0.43, abs=0.03)
    assert max(bc["shuffled"]) <= 0.112 and bc["majority"] == pytest.approx(0.10, abs=5e-3)
    assert max(h["probe"]) == pytest.approx(0.20, abs=0.01) and max(h["shuffled"]) <= 0.112
