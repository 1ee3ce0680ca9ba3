"""Week 14's benchmark (``benchmarks/textlm_transcoder_circuits.py``): the circuit picker on a planted
scan, a smoke run on the zoo's ``text-lm``, and, once ``text-lm-v2``'s measured files exist, their
consistency and a re-measure of a few attribution/ablation pairs."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from mi_course import zoo


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "textlm_transcoder_circuits.py"
    spec = importlib.util.spec_from_file_location("textlm_transcoder_circuits", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, mod)       # its dataclasses look their module up
    spec.loader.exec_module(sys.modules[spec.name])
    mod = sys.modules[spec.name]
    return mod


def test_the_picker_finds_a_planted_circuit():
    """Later latent 2 is driven by earlier latent 5 through a strong connection; the others by noise."""
    B = _bench()
    g = torch.Generator().manual_seed(0)
    n, de, dl = 400, 12, 6
    early = torch.relu(torch.randn(n, de, generator=g) - 1.0)
    conn = torch.randn(de, dl, generator=g) * 0.1
    conn[5, 2] = 3.0
    scale = torch.rand(n, generator=g) + 0.5
    pre = early @ conn / scale[:, None] + 0.05 * torch.randn(n, dl, generator=g) - 0.2
    sc = {"early": early, "late": torch.relu(pre), "late_pre": pre, "scale": scale,
          "window": torch.zeros(n, dtype=torch.long), "position": torch.arange(n), "token": torch.zeros(n, dtype=torch.long)}
    s = B.Settings(n_candidates=dl, top_contexts=5, n_early=2, n_circuits=1, min_freq=0.0, max_freq=1.0)
    (c,) = B.pick_circuits(sc, conn, s)
    assert c["late_latent"] == 2 and c["early_latents"][0] == 5 and c["share"] > 0.8
    ranks = B.connection_ranks(conn, [c])
    assert ranks["ranks"][0] == 0
    assert B.pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.1]) > 0.99 and B.pearson([1.0], [1.0]) is None


@pytest.mark.slow
def test_smoke_run_on_text_lm():
    B = _bench()
    if "text-lm" not in zoo.names():
        pytest.skip("no text-lm in the zoo")
    out = B.main("text-lm", B.SMOKE, write=False, progress=False)
    circ = out["circuit"]
    assert 1 <= len(circ["circuits"]) <= B.SMOKE.n_circuits
    assert circ["agreement"]["circuit"]["n_pairs"] == sum(len(c["contexts"]) * B.SMOKE.n_early for c in circ["circuits"])
    ev = out["transcoders"]["vs_sae_equal_l0"]
    assert ev["transcoder"]["l0"] == ev["sae"]["l0"] == B.SMOKE.compare_k
    # week 14's figure tests draw from a saved smoke output: it must still have the benchmark's keys
    import json

    sys.path.insert(0, str(Path(__file__).parent))
    from test_week14_figures import FIXTURE, _keys

    fixture = json.loads(FIXTURE.read_text())

    def keys(d):  # per-latent keys (latent ids) aside
        return {k for k in _keys(d) if "early_de_embedding_top_tokens/" not in k}

    for part in ("transcoders", "circuit"):
        assert keys(out[part]) == keys(fixture[part]), f"{part}: regenerate {FIXTURE.name} (see its 'about')"


# ------------------------------------------------------------------------ the measured files (v2)
@pytest.fixture(scope="module")
def measured():
    B = _bench()
    if B.MODEL not in zoo.names():
        pytest.skip(f"{B.MODEL} is not in the zoo")
    try:
        return zoo.card(B.MODEL).measured("week14_circuit"), zoo.card(B.MODEL).measured("week14_transcoders")
    except FileNotFoundError:
        pytest.skip("no measured_week14_*.json yet (benchmarks/textlm_transcoder_circuits.py --write)")


def test_agreement_summary_is_recomputed_from_the_pairs(measured):
    B = _bench()
    circ, _ = measured
    for kind in ("circuit", "baseline"):
        rows = [r for r in circ["pairs"] if r["kind"] == kind]
        want = B.pearson([r["attribution"] for r in rows], [r["ablation_here"] for r in rows])
        got = circ["agreement"][kind]["pearson_attribution_vs_ablation_here"]
        assert (want is None and got is None) or got == pytest.approx(want, abs=2e-3)


def test_equal_l0_comparison_is_at_equal_l0(measured):
    _, ev = measured
    cmp = ev["vs_sae_equal_l0"]
    assert cmp["transcoder"]["l0"] == pytest.approx(cmp["k"]) and cmp["sae"]["l0"] == pytest.approx(cmp["k"])


@pytest.mark.slow
def test_first_pairs_re_measured(measured):
    """Three attribution/ablation pairs of the file, re-measured with the shipped transcoders."""
    from mi_course.methods import transcoders as T

    B = _bench()
    circ, _ = measured
    st = circ["settings"]
    if st["train_steps"]:
        pytest.skip("the file was measured with transcoders trained inside the benchmark")
    model = zoo.load(B.MODEL)
    early, late = (zoo.load_sae(n) for n in st["transcoders"])
    tokens = B.heldout(B.MODEL, st["n_heldout_windows"])
    for r in circ["pairs"][:3]:
        w, p = r["window"], r["position"]
        got = T.ablation_effect(model, early, late, tokens[w:w + 1], r["early"], r["late"], positions=[p])[0, p]
        assert float(got) == pytest.approx(r["ablation_here"], abs=2e-3, rel=1e-2)
