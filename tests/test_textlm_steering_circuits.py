"""benchmarks/textlm_steering_circuits.py: its helpers on planted cases, and (once text-lm-v2 ships with
its measured_week13_*.json) the shipped figures' shape and the claims week 13 makes from them."""

import importlib.util
from pathlib import Path

import pytest
import torch

from mi_course import zoo


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "textlm_steering_circuits.py"
    spec = importlib.util.spec_from_file_location("textlm_steering_circuits", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pick_latent_finds_the_planted_contrast():
    B = _bench()
    g = torch.Generator().manual_seed(0)
    f = torch.relu(torch.randn(400, 32, generator=g))
    is_t = torch.rand(400, generator=g) < 0.1
    f[is_t, 17] += 3.0
    f[:, 5] += 10.0 * torch.rand(400, generator=g)  # large but unrelated
    assert B.pick_latent(f, is_t)[0] == 17


def test_node_order_and_random_circuits():
    B = _bench()
    saes = {"a": type("S", (), {"d_sae": 4})(), "b": type("S", (), {"d_sae": 3})()}
    pos = 2
    names = [B._node_name(saes, pos, k) for k in range(pos * 4 + pos + pos * 3 + pos)]
    assert names[0] == {"hook": "a", "position": -2, "latent": 0}
    assert names[pos * 4] == {"hook": "a", "position": -2, "latent": "error"}
    assert names[pos * 4 + pos] == {"hook": "b", "position": -2, "latent": 0}
    assert names[-1] == {"hook": "b", "position": -1, "latent": "error"}
    circuit = {"a": {"latents": torch.eye(3, 5, dtype=torch.bool), "error": torch.tensor([True, False, False])}}
    r = B._random_like(circuit, torch.Generator().manual_seed(0))
    assert r["a"]["latents"].shape == (3, 5) and int(r["a"]["latents"].sum()) == 3 and int(r["a"]["error"].sum()) == 1


V2 = "text-lm-v2"


def _measured(topic: str) -> dict:
    if V2 not in zoo.names():
        pytest.skip("text-lm-v2 is not in this checkout")
    try:
        return zoo.card(V2).measured(topic)
    except Exception:
        pytest.skip(f"measured_{topic}.json not written yet (python benchmarks/textlm_steering_circuits.py --write)")


def test_shipped_steering_figures():
    s = _measured("week13_steering")
    assert s["model_sha256"] == zoo.card(V2).sha256, "text-lm-v2 changed: rerun the benchmark with --write"
    done = [t for t in s["targets"].values() if "skipped" not in t]
    assert len(done) >= 2
    for t in done:
        assert set(t["methods"]) == {"feature", "diff_of_means", "random"}
        assert len(t["methods"]["feature"]["sweep"]) == len(s["strengths"])
        # beside the log-probability, how often the target is the top prediction (flattening cannot fake it)
        assert 0 <= t["baseline_top1"] < 0.05
        assert all(0 <= r["top1"] <= 1 for m in t["methods"].values() for r in m["sweep"])
        assert set(t["methods"]["random"]["top1_at_damage"]) == {str(d) for d in s["damages"]}
        # the random baseline is several directions; the first is the one in "methods"
        rd = t["random_directions"]
        assert rd["n"] == _bench().N_RANDOM >= 8 and all(len(v) == rd["n"] for v in rd["at_damage"].values())
        assert rd["at_damage"]["0.1"][0] == t["methods"]["random"]["at_damage"]["0.1"]


def test_shipped_circuit_figures():
    c = _measured("week13_circuit")
    assert c["model_sha256"] == zoo.card(V2).sha256, "text-lm-v2 changed: rerun the benchmark with --write"
    assert c["metric_clean"] > c["metric_patch"]
    biggest = c["curve"][-1]
    assert biggest["faithfulness"] > biggest["random_faithfulness"]


class _CharTokenizer:
    """One token per character of a small alphabet (id 0 is <|endoftext|>)."""

    chars = "\x00abcxyz()[]{} =,\n"

    def get_vocab(self):
        return {ch: i for i, ch in enumerate(self.chars)}

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)

    def encode_text(self, text):
        return torch.tensor([self.chars.index(ch) for ch in text])


def test_bracket_prompts_find_aligned_pairs_and_swap_the_opening_bracket():
    B = _bench()
    tok = _CharTokenizer()
    text = "x = ab(a, b) + (c) and f(xyz) = [a] " * 6 + "a(b, c)"
    held = tok.encode_text(text.replace("+", " ").replace("and", "a z").replace("f", "c"))
    d = B.bracket_prompts(tok, held, n=50, length=8)
    assert d["gap"] in range(2, 7) and d["clean"].shape[1] == 8 and d["clean"].shape[0] == d["n_found"] > 0
    o, sq = tok.chars.index("("), tok.chars.index("[")
    assert (d["clean"][:, 8 - d["gap"]] == o).all() and (d["patch"][:, 8 - d["gap"]] == sq).all()
    diff = d["clean"] != d["patch"]
    assert diff.sum() == d["clean"].shape[0]  # only the bracket changes
    assert d["close"] == tok.chars.index(")") and d["close_square"] == tok.chars.index("]")
