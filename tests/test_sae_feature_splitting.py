"""benchmarks/sae_feature_splitting.py: the measurement runs end to end on a tiny model (the real run,
on text-lm-v2, is minutes), and a shipped ``measured_week12_splitting.json`` is self-consistent."""

import importlib.util
from pathlib import Path

import pytest
import torch

from mi_course import zoo

REPO = Path(__file__).resolve().parents[1]
TOPIC = "week12_splitting"


def _bench():
    spec = importlib.util.spec_from_file_location("sae_feature_splitting", REPO / "benchmarks" / "sae_feature_splitting.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _check_consistent(out: dict) -> None:
    st = out["settings"]
    sizes = st["sizes"]
    assert sizes == sorted(sizes) and set(out["saes"]) == {str(s) for s in sizes}
    assert [r["sizes"] for r in out["pairs"]][: len(sizes) - 1] == [[a, b] for a, b in zip(sizes, sizes[1:])]
    for r in out["pairs"]:
        for part in ("trained", "random"):
            assert 0 <= r[part]["close_share"] <= 1 and r[part]["sizes"] == r["sizes"]
        assert r["sharing"]["n_families"] == r["trained"]["n_splits"]
        assert len(r["examples"]) <= r["trained"]["n_splits"]
        for e in r["examples"]:
            assert len(e["children"]) >= 2 and 0 <= e["parent"] < r["sizes"][0]
            assert all(c["cos"] >= st["threshold"] and 0 <= c["latent"] < r["sizes"][1] for c in e["children"])
            assert [c["cos"] for c in e["children"]] == sorted((c["cos"] for c in e["children"]), reverse=True)
        n = [len(e["children"]) for e in r["examples"]]
        assert n == sorted(n, reverse=True)           # the splits with most children, chosen by rule


def test_the_benchmark_runs_on_a_tiny_model(kb_tiny_model):
    """Three tiny SAEs, 15 steps each (well under a second)."""
    B = _bench()
    g = torch.Generator().manual_seed(0)
    vocab = kb_tiny_model.cfg.d_vocab
    train, held = torch.randint(0, vocab, (64, 32), generator=g), torch.randint(0, vocab, (8, 32), generator=g)
    out = B.measure(kb_tiny_model, "blocks.1.hook_resid_post", train, held, sizes=(16, 32, 64), k=4, steps=15,
                    batch=128, threshold=0.5, progress=False)
    assert out["settings"]["train_tokens"] == 15 * 128 and out["settings"]["heldout_tokens"] == 8 * 31
    assert [r["sizes"] for r in out["pairs"]] == [[16, 32], [32, 64], [16, 64]]
    _check_consistent(out)
    for r in out["pairs"]:
        assert r["random"]["mean_max_cos"] < r["trained"]["mean_max_cos"] + 0.5
    lat = torch.tensor([[0.0, 1.0], [2.0, 0.5], [3.0, 0.0], [1.0, 0.0]])
    assert B.top_tokens(lat, torch.tensor([7, 8, 7, 9]), 0, None, n_top=2) == [["7", 1], ["8", 1]]
    assert B.top_tokens(lat, torch.tensor([7, 7, 7, 9]), 0, None, n_top=3) == [["7", 2], ["9", 1]]
    assert B.top_tokens(torch.zeros(4, 2), torch.tensor([7, 7, 7, 9]), 1, None) == []


def test_the_shipped_measurement_is_consistent():
    if "text-lm-v2" not in zoo.names():
        pytest.skip("text-lm-v2 is not in the zoo yet")
    try:
        out = zoo.card("text-lm-v2").measured(TOPIC)
    except FileNotFoundError:
        pytest.skip("run benchmarks/sae_feature_splitting.py --write on text-lm-v2")
    _check_consistent(out)
    assert out["settings"]["model_sha256"] == zoo.card("text-lm-v2").sha256, "re-run the benchmark on the shipped model"
    for r in out["pairs"]:                            # beside the baseline, the trained dictionaries nest
        assert r["trained"]["close_share"] > r["random"]["close_share"]
        assert r["trained"]["mean_max_cos"] > r["random"]["mean_max_cos"]
