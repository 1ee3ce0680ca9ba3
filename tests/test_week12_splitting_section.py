"""Week 12, section 6 (feature splitting): every number the prose and the closing table state about
``text-lm-v2`` is the shipped measurement's (``measured_week12_splitting.json``, written by
``benchmarks/sae_feature_splitting.py --write``; its consistency is tests/test_sae_feature_splitting.py's),
and the prose says the result is weak when it is."""

import json
from pathlib import Path

import pytest

from mi_course import zoo

NB = Path(__file__).parents[1] / "solutions" / "12_superposition_saes" / "12_superposition_saes.ipynb"
MODEL = "text-lm-v2"


@pytest.fixture(scope="module")
def measured():
    if MODEL not in zoo.names():
        pytest.skip("text-lm-v2 is not in this checkout")
    return zoo.card(MODEL).measured("week12_splitting")


@pytest.fixture(scope="module")
def prose():
    cells = json.loads(NB.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return " ".join(text.split())


def _pairs(measured):
    return {tuple(p["sizes"]): p for p in measured["pairs"]}


def test_direction_figures_are_the_measured_ones(prose, measured):
    P = _pairs(measured)
    steps = [(256, 512), (512, 1024), (1024, 2048)]
    trained = ", ".join(f"{P[s]['trained']['mean_max_cos']:.2f}" for s in steps[:2]) + \
        f" and {P[steps[2]]['trained']['mean_max_cos']:.2f}"
    rand = ", ".join(f"{P[s]['random']['mean_max_cos']:.2f}" for s in steps[:2]) + \
        f" and {P[steps[2]]['random']['mean_max_cos']:.2f}"
    close = ", ".join(f"{100 * P[s]['trained']['close_share']:.1f}%" for s in steps[:2]) + \
        f" and {100 * P[steps[2]]['trained']['close_share']:.1f}%"
    splits = ", ".join(str(P[s]["trained"]["n_splits"]) for s in steps[:2]) + f" and {P[steps[2]]['trained']['n_splits']}"
    for phrase in (f"averages {trained} (256 → 512", f"against {rand} for random decoders",
                   f"Only {close} of the larger SAE's", f"close children: {splits}"):
        assert phrase in prose, phrase
    assert all(P[s]["random"]["close_share"] == 0 for s in steps) and "random decoders have none" in prose


def test_the_prose_calls_it_weak_only_while_it_is(prose, measured):
    P = _pairs(measured)
    assert max(P[s]["trained"]["close_share"] for s in P) < 0.1
    assert sum(P[s]["trained"]["n_splits"] for s in P) < 20
    assert "little splitting" in prose and "splitting is weak" in prose


def test_sharing_figures_and_families_are_the_measured_ones(prose, measured):
    p = _pairs(measured)[(1024, 2048)]
    sh, s = p["sharing"], measured["settings"]
    for phrase in (f"fires on {sh['within_parent']:.2f} of them, against {sh['within_shuffled_parent']:.3f} under a shuffled parent",
                   f"siblings overlap ({sh['sibling_overlap']:.2f}",
                   f"({p['trained']['children_per_split']:.0f} children each at 1,024 → 2,048)",
                   f"saw {s['train_tokens'] / 1e6:.2f}M tokens ({s['steps']} steps)",
                   f"left {measured['saes']['2048']['dead']:.0f} latents dead",
                   f"explained variance ({measured['saes']['2048']['explained_variance']:.2f})",
                   f"256-latent one's ({measured['saes']['256']['explained_variance']:.2f})",
                   f"{100 * p['trained']['close_share']:.1f}% of 2,048 latents have a close parent",
                   f"{p['trained']['n_splits']} splits; children fire inside their parent {sh['within_parent']:.2f}"):
        assert phrase in prose, phrase
    # "in two of the four families printed above both children read the same single token as their parent"
    shown = p["examples"][:4]
    assert len(shown) == 4
    single = [e["parent_tokens"][0][0] for e in shown if len(e["parent_tokens"]) == 1
              and all(c["tokens"][0][0] == e["parent_tokens"][0][0] for c in e["children"])]
    assert single == [" not", "id"] and "(` not`, `id`)" in prose


def test_the_deck_quotes_the_same_splitting_figures(measured):
    deck = " ".join((NB.parents[2] / "slides" / "12_superposition_saes" / "slides.md").read_text().split())
    P = _pairs(measured)
    steps = [(256, 512), (512, 1024), (1024, 2048)]
    sh, c = P[steps[2]]["sharing"], P[steps[2]]["trained"]
    for phrase in (" / ".join(f"{P[s]['trained']['mean_max_cos']:.2f}" for s in steps) + " (random decoders "
                   + " / ".join(f"{P[s]['random']['mean_max_cos']:.2f}" for s in steps) + ")",
                   " / ".join(f"{100 * P[s]['trained']['close_share']:.1f}%" for s in steps) + " of latents (random 0)",
                   "splits: " + ", ".join(str(P[s]["trained"]["n_splits"]) for s in steps[:2])
                   + f", then {c['n_splits']} at 1,024 → 2,048 ({c['children_per_split']:.0f} children each)",
                   f"P(parent on | child on) {sh['within_parent']:.2f} against {sh['within_shuffled_parent']:.3f}",
                   f"siblings overlap {sh['sibling_overlap']:.2f}",
                   f"{measured['settings']['train_tokens'] / 1e6:.2f}M training tokens per SAE",
                   f"weak, {c['n_splits']} splits at 1,024 → 2,048, {100 * c['close_share']:.1f}% of latents with a close parent"):
        assert phrase in deck, phrase
