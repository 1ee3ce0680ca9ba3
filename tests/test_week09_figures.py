"""The numbers week 09's notebook prose and deck quote, read from the measured files beside ``kb-lm``'s card
(``course/figures/week09.py``); the files themselves are re-measured by ``test_kb_editing_scaling.py``,
``test_kb_grace_figures.py`` and ``test_kb_ripple_figures.py``."""

import json
from pathlib import Path

import pytest

from mi_course import zoo

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo")
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "solutions" / "09_memit_grace_ripple" / "09_memit_grace_ripple.ipynb"
SLIDES = REPO / "slides" / "09_memit_grace_ripple" / "slides.md"

RIPPLE = {  # section 8's "What the model shows" and the ours-vs-paper table (percent, rounded)
    ("ROME", "compositionality_I"): 68, ("MEMIT", "compositionality_I"): 63,
    ("ROME", "subject_aliasing"): 78, ("MEMIT", "subject_aliasing"): 76,
    ("ROME", "compositionality_II"): 0, ("MEMIT", "compositionality_II"): 3,
    ("ROME", "relation_specificity"): 54, ("MEMIT", "relation_specificity"): 38,
    ("ROME", "logical_generalisation"): 98, ("MEMIT", "logical_generalisation"): 96,
    ("ROME", "preservation"): 95, ("MEMIT", "preservation"): 94,
    ("GRACE", "efficacy"): 100, ("GRACE", "logical_generalisation"): 0, ("GRACE", "compositionality_I"): 0,
    ("GRACE eps 5", "logical_generalisation"): 100, ("GRACE eps 5", "preservation"): 80,
    ("FT", "compositionality_II"): 84, ("FT", "preservation"): 4, ("FT", "relation_specificity"): 9,
}


def _prose() -> str:
    nb = json.loads(NOTEBOOK.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_ripple_numbers_in_the_prose():
    from mi_course.course.figures import week09

    rows = week09.ripple_table()
    for (name, crit), pct in RIPPLE.items():
        assert round(100 * rows[name][crit]) == pct, (name, crit, rows[name][crit], pct)
    text = _prose()
    for pct in (68, 63, 78, 76, 54, 38, 84):
        assert f"{pct}%" in text


def test_memit_settings_in_the_prose():
    from mi_course.methods import memit

    model = zoo.load("kb-lm")
    assert round(memit.default_mom2_update_weight(model)) == 469 and memit.default_layers(model) == [0, 1]
    assert memit.MemitHparams().clamp_norm_factor == 4.0
    text = _prose()
    assert "λ 469" in text and "layers 0-1" in text and "4 ‖h‖" in text


def test_grace_numbers_in_the_prose():
    fig = zoo.card("kb-lm").measured("week09_grace")
    rows = {name: {r["edits"]: r for r in rs} for name, rs in fig["rows"].items()}
    assert round(fig["unedited_TRR"], 2) == 0.99
    g, w = rows["GRACE"][1000], rows["GRACE eps 5.0"][1000]
    assert (round(g["TRR"], 2), round(g["ERR"], 2), g["keys"], round(g["paraphrase"], 2)) == (0.99, 1.0, 1000, 0.0)
    assert (round(w["paraphrase"], 2), w["keys"], round(w["ERR"], 2)) == (0.90, 949, 0.96)
    assert (round(rows["ROME"][100]["ERR"], 2), round(rows["ROME"][100]["TRR"], 2)) == (0.0, 0.02)
    assert round(rows["FT"][10]["TRR"], 2) == 0.07
    text = _prose()
    for quoted in ("TRR 0.99 and ERR 1.00", "1,000 keys", "0.90 after 1,000 edits (949 keys", "TRR to 0.02", "0.07 by 10"):
        assert quoted in text, quoted


def test_scaling_numbers_in_the_prose():
    """Section 6's paragraph quotes every point of the scaling file (ES at each size, NS beside it)."""
    from mi_course.course.figures import week09

    rows = week09.scaling()["rows"]
    rome, mem = rows["ROME (sequential)"], rows["MEMIT (batch)"]
    text = " ".join(_prose().split())
    for n in sorted(rome)[1:]:
        assert f"{rome[n]['ES']:.2f} after {n:,}" in text, n
    for n in sorted(mem)[1:]:
        assert f"{mem[n]['ES']:.2f} at {n:,}" in text, n
    assert "(" + ", ".join(f"{rome[n]['NS']:.2f}" for n in sorted(rome)[1:]) + ")" in text
    assert "(NS " + ", ".join(f"{mem[n]['NS']:.2f}" for n in sorted(mem)[1:]) + ")" in text
    assert f"ES {rome[1]['ES']:.2f} and PS {rome[1]['PS']:.2f}" in text and mem[1]["ES"] == rome[1]["ES"]
    # "Its S is above sequential ROME's up to 316 edits ... at 1,000 both are near 0.5"
    assert all(mem[n]["S"] > rome[n]["S"] for n in (10, 32, 100, 316))
    assert abs(mem[1000]["S"] - 0.5) < 0.05 and abs(rome[1000]["S"] - 0.5) < 0.05 and mem[1000]["ES"] < rome[1000]["ES"]
    for quoted in (f"S {mem[316]['S']:.2f}\nvs {rome[316]['S']:.2f} at 316".replace("\n", " "),
                   f"(S {mem[1000]['S']:.2f} vs {rome[1000]['S']:.2f};", f"NS {mem[1000]['NS']:.2f} vs {rome[1000]['NS']:.2f}",
                   f"S at 316 edits: sequential ROME (layer 1) {rome[316]['S']:.2f}, MEMIT (layers 0-1) {mem[316]['S']:.2f}"):
        assert quoted in text, quoted
    quotes = week09.scaling_quotes()
    assert quotes[f"ROME ES {max(rome)}"] in text


def test_deck_numbers():
    """The deck quotes the scaling file's points, and the GRACE / ripple numbers of the notebook's prose."""
    from mi_course.course.figures import week09

    rows = week09.scaling()["rows"]
    deck = SLIDES.read_text()
    for name, label in (("ROME (sequential)", "sequential ROME (layer 1), ES: "), ("MEMIT (batch)", "MEMIT (layers 0-1, one batch), ES: ")):
        r = rows[name]
        assert label + ", ".join(f"{r[n]['ES']:.2f} ({n:,})" for n in sorted(r)) in deck
    for quoted in ("TRR 0.99, ERR 1.00, 1,000 keys", "paraphrases 0.90 (949 keys)", "ROME CI 68%, RS 54%",
                   "MEMIT CI 63%, RS 38%", "0% and 3%", "λ = 15,000 · 512 / 16,384 ≈ 469"):
        assert quoted in deck, quoted
