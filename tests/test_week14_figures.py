"""Week 14's deck figures draw the numbers of the measured files.

``tests/data/week14_measured_smoke.json`` holds both files as the benchmark returns them on the zoo's
``text-lm`` with its smoke settings (``main("text-lm", SMOKE, write=False)``, i.e.
``benchmarks/textlm_transcoder_circuits.py --model text-lm --smoke`` without ``--write``; about 25 s), so
these tests run on any checkout. To regenerate it, dump that ``main``'s return value (keys ``transcoders``,
``circuit``) there; ``test_textlm_transcoder_circuits.py::test_smoke_run_on_text_lm`` fails when the benchmark's keys drift
from it."""

import copy
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from mi_course import zoo
from mi_course.course.figures import week14 as F

FIXTURE = Path(__file__).parent / "data" / "week14_measured_smoke.json"


@pytest.fixture
def files(monkeypatch):
    d = json.loads(FIXTURE.read_text())
    monkeypatch.setattr(F, "transcoder_figures", lambda: d["transcoders"])
    monkeypatch.setattr(F, "circuit_figures", lambda: d["circuit"])
    return d


def test_tc_vs_sae_bars_hold_the_files_numbers(files):
    v = files["transcoders"]["vs_sae_equal_l0"]
    fig = F.tc_vs_sae()
    ax = fig.axes[0]
    heights = [round(p.get_height(), 4) for p in ax.patches]
    want = [v[kind][k] for kind in ("transcoder", "sae") for k in ("explained_variance", "ce_loss_recovered")]
    assert heights == [round(x, 4) for x in want]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["explained variance\n(MLP output)", "loss recovered"]
    labels = [t.get_text() for t in ax.texts]
    assert labels == [f"{x:.3f}" for x in want]
    assert f"k = {v['k']}" in ax.get_title() and f"{v['d_sae']} latents" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["transcoder", "SAE on the MLP output"]
    plt.close(fig)


def test_attribution_vs_ablation_scatters_hold_the_pairs_and_r(files):
    c = files["circuit"]
    fig = F.attribution_vs_ablation()
    assert len(fig.axes) == 2
    for ax, where in zip(fig.axes, ("here", "everywhere")):
        assert len(ax.collections) == 2                     # circuit, then baseline
        for coll, kind in zip(ax.collections, ("circuit", "baseline")):
            rows = [q for q in c["pairs"] if q["kind"] == kind]
            pts = coll.get_offsets().tolist()
            assert len(pts) == len(rows) == c["agreement"][kind]["n_pairs"]
            assert pts == [[pytest.approx(q["attribution"]), pytest.approx(q[f"ablation_{where}"])] for q in rows]
            r = c["agreement"][kind][f"pearson_attribution_vs_ablation_{where}"]
            assert f"{kind} {r:.2f}" in ax.get_title()
    assert fig.axes[0].get_title().startswith("ablated at that position only")
    assert fig.axes[1].get_title().startswith("ablated at every position")
    plt.close(fig)


def test_missing_values_draw_as_na(files, monkeypatch):
    """The benchmark writes a Pearson r of fewer than 3 pairs, or a NaN, as null."""
    c = copy.deepcopy(files["circuit"])
    c["agreement"]["baseline"]["pearson_attribution_vs_ablation_here"] = None
    c["pairs"] = [q for q in c["pairs"] if q["kind"] == "circuit"]
    t = copy.deepcopy(files["transcoders"])
    t["vs_sae_equal_l0"]["sae"]["ce_loss_recovered"] = None
    monkeypatch.setattr(F, "circuit_figures", lambda: c)
    monkeypatch.setattr(F, "transcoder_figures", lambda: t)
    fig = F.attribution_vs_ablation()
    assert "baseline n/a" in fig.axes[0].get_title()
    assert len(fig.axes[0].collections[1].get_offsets()) == 0
    plt.close(fig)
    fig = F.tc_vs_sae()
    assert [t.get_text() for t in fig.axes[0].texts][-1] == "n/a"
    plt.close(fig)


def _keys(d, path=""):
    """Every key path of a nested dict; list elements share one path (``[]``)."""
    if isinstance(d, dict):
        return {p for k, v in d.items() for p in {f"{path}/{k}"} | _keys(v, f"{path}/{k}")}
    if isinstance(d, list):
        return set().union(*(_keys(v, f"{path}[]") for v in d)) if d else set()
    return set()


@pytest.mark.parametrize("name", ["tc_vs_sae", "attribution_vs_ablation"])
def test_text_lm_v2_figures_draw(name):
    if F.MODEL not in zoo.names():
        pytest.skip("text-lm-v2 is not in this checkout")
    try:
        F.transcoder_figures(), F.circuit_figures()
    except FileNotFoundError:
        pytest.skip("measured_week14_*.json not written yet (benchmarks/textlm_transcoder_circuits.py --write)")
    plt.close(getattr(F, name)())
