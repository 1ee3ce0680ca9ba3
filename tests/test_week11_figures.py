"""The numbers week 11's notebook prose and deck quote: each is read from the shipped sweep
(``measured_week11_kn.json``; ``tests/test_kb_kn_figures.py`` re-measures facts of it) and must appear,
as written here, in the solution notebook's prose (and the deck's, where it quotes it)."""

import json
from pathlib import Path

import pytest

from mi_course import zoo

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo")
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "solutions" / "11_knowledge_neurons" / "11_knowledge_neurons.ipynb"
DECK = REPO / "slides" / "11_knowledge_neurons" / "slides.md"


def _s():
    return zoo.card("kb-lm").measured("week11_kn")["summary"]


# (text as the prose writes it, the file's value, tolerance of the rounding)
def _claims(s):
    pct = lambda x: round(100 * x)  # noqa: E731
    ls = s["layer_share"]
    return [
        ("30 facts", s["n_facts"], 0),
        ("10 to 61 knowledge neurons", (s["neurons_per_fact"]["min"], s["neurons_per_fact"]["max"]), None),
        ("(median 23)", s["neurons_per_fact"]["median"], 0),
        ("46% of the 742 found neurons", (pct(ls[0]), sum(s["layer_counts"])), None),
        ("4% in layer 1", pct(ls[1]), 0),
        ("11-15% in each of layers 2-5", (min(map(pct, ls[2:])), max(map(pct, ls[2:]))), None),
        ("by 47% on average (−0.47)", s["suppress_kn_own"], -0.47),
        ("lower it by 0.2% (−0.002)", s["suppress_random_own"], -0.002),
        ("lose 2% (−0.02; random: −0.0003)", (s["suppress_kn_other"], s["suppress_random_other"]), (-0.02, -0.0003)),
        ("by only 4% (+0.04)", s["amplify_kn_own"], 0.04),
        ("mean P before 0.95", s["p_before"], 0.95),
        ("lose 16% (−0.16)", s["suppress_kn_neighbours"], -0.16),
        ("on 34% of the facts' prompts", s["flip"], 0.34),
        ("47% of the facts", s["facts_flipped_by_suppress"], 0.47),
        ("77% of the changed answers", s["flip_to_object"], 0.77),
        ("knowledge neuron of 17 of the 30 facts", (s["most_shared"][0]["neuron"], s["most_shared"][0]["facts"]), None),
        ("(0.228 for 14 facts, 0.297 for 13)", [(m["neuron"], m["facts"]) for m in s["most_shared"][1:3]], None),
        ("(ratio 0.60)", s["activation_unknown_people"], 0.60),
        ("at 23% (0.23)", s["activation_other_relations"], 0.23),
        ("34% of a fact's neurons", s["share_also_other_relation"], 0.34),
        ("(ES 0.23,\nPS 0.26)", (s["kn_edit"]["0.25"]["ES"], s["kn_edit"]["0.25"]["PS"]), (0.23, 0.26)),
        ("(NS 0.93)", s["kn_edit"]["0.25"]["NS"], 0.93),
        ("(ES 1.00, PS 0.91)", (s["kn_edit"]["1.0"]["ES"], s["kn_edit"]["1.0"]["PS"]), (1.0, 0.91)),
        ("(NS 0.19)", s["kn_edit"]["1.0"]["NS"], 0.19),
        ("NS is 0.03", s["kn_edit"]["2.0"]["NS"], 0.03),
        ("(others kept 0.83)", s["kn_edit"]["2.0"]["others_kept"], 0.83),
        ("ES 1.00, PS 0.99, NS 0.98 (others kept 0.98)", tuple(s["rome"]["0"][k] for k in ("ES", "PS", "NS", "others_kept")),
         (1.0, 0.99, 0.98, 0.98)),
        ("ES 0.67,\nPS 0.38, NS 1.00", tuple(s["rome"]["2"][k] for k in ("ES", "PS", "NS")), (0.67, 0.38, 1.0)),
    ]


def test_the_file_holds_the_numbers():
    s = _s()
    assert s["n_facts"] == 30
    assert (s["neurons_per_fact"]["min"], s["neurons_per_fact"]["max"], s["neurons_per_fact"]["median"]) == (10, 61, 23)
    assert sum(s["layer_counts"]) == 742 and round(100 * s["layer_share"][0]) == 46 and round(100 * s["layer_share"][1]) == 4
    assert [round(100 * x) for x in s["layer_share"][2:]] and min(round(100 * x) for x in s["layer_share"][2:]) == 11
    assert max(round(100 * x) for x in s["layer_share"][2:]) == 15
    assert s["most_shared"][0]["neuron"] == [0, 115] and s["most_shared"][0]["facts"] == 17
    assert [(m["neuron"], m["facts"]) for m in s["most_shared"][1:3]] == [([0, 228], 14), ([0, 297], 13)]
    for text, got, want in _claims(s):
        if isinstance(want, tuple):
            assert got == pytest.approx(want, abs=0.006 if abs(want[0]) >= 0.01 else 0.0006), text
        elif isinstance(want, float):
            assert got == pytest.approx(want, abs=0.006 if abs(want) >= 0.01 else 0.0006), text


def _markdown(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_the_notebook_quotes_them():
    text = _markdown(NOTEBOOK)
    for claim, _, _ in _claims(_s()):
        assert claim in text, claim


DECK_CLAIMS = ["10 to 61", "46%", "−0.47", "−0.002", "+0.04", "−0.16", "34%", "77%", "0.60", "0.23", "17 of 30",
               "23 / 26 / 93", "100 / 91 / 19", "100 / 99 / 98", "28.7 / 28.0 / 72.9"]
TABLE_CLAIMS = ["10 to 61, median 23", "46% in layer 0", "−47% (random neurons −0.2%)", "+4%", "−2% (suppress), −2% (amplify)",
                "scale 0.25: 23 / 26 / 93; scale 1: 100 / 91 / 19", "layer 0: 100 / 99 / 98", "60% of the activation",
                "34% of prompts change; 77% of those"]


def test_the_table_and_the_deck_quote_them():
    s = _s()
    assert round(100 * s["amplify_kn_other"]) == -2 and round(100 * s["suppress_kn_other"]) == -2
    text = _markdown(NOTEBOOK)
    for claim in TABLE_CLAIMS:
        assert claim in text, claim
    if DECK.exists():
        deck = DECK.read_text()
        for claim in DECK_CLAIMS:
            assert claim in deck, claim


DOC_CLAIMS = ["10 to 61 knowledge neurons per fact (median 23)", "46% of them in layer 0", "−0.47", "−0.002", "−0.02",
              "−0.16", "+0.04 (P before 0.95)", "34% of prompts, 77%", "keep 0.60", "17 of the 30 facts",
              "0.23 / 0.26 / 0.93", "1.00 / 0.91 / 0.19", "1.00 / 0.99 / 0.98"]


def test_the_docs_quote_them():
    """docs/knowledge.md repeats numbers held above (the same values, the same rounding)."""
    text = (REPO / "docs" / "knowledge.md").read_text()
    for claim in DOC_CLAIMS:
        assert claim in text, claim
