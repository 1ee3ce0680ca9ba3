"""docs/knowledge.md's week 09 and 10 figures are the measured files' (same values, same rounding)."""

from pathlib import Path

import pytest

from mi_course import zoo

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo")
DOC = Path(__file__).resolve().parents[1] / "docs" / "knowledge.md"


def _text() -> str:
    return " ".join(DOC.read_text().split())


def test_week09_figures_in_the_docs():
    card = zoo.card("kb-lm")
    rows = card.measured("week09_scaling")["rows"]
    rome = {int(n): r for n, r in rows["ROME (sequential)"].items()}
    memit = {int(n): r for n, r in rows["MEMIT (batch)"].items()}
    text = _text()
    assert f"100 edits ROME {rome[100]['ES']:.2f} / {rome[100]['NS']:.2f}, MEMIT {memit[100]['ES']:.2f} / {memit[100]['NS']:.2f}" in text
    assert f"1,000 edits ROME {rome[1000]['ES']:.2f} / {rome[1000]['NS']:.2f}, MEMIT {memit[1000]['ES']:.2f} / {memit[1000]['NS']:.2f}" in text
    assert f"1 edit {rome[1]['ES']:.2f} / {rome[1]['NS']:.2f} for both" in text
    assert f"{memit[1]['ES']:.2f} / {memit[1]['NS']:.2f}" == f"{rome[1]['ES']:.2f} / {rome[1]['NS']:.2f}"
    grace = card.measured("week09_grace")
    g = {r["edits"]: r for r in grace["rows"]["GRACE"]}[1000]
    w = {r["edits"]: r for r in grace["rows"]["GRACE eps 5.0"]}[1000]
    assert (f"TRR {g['TRR']:.2f}, ERR {g['ERR']:.2f}, {g['keys']:,} keys, but paraphrases {g['paraphrase']:.2f}"
            in text)
    assert f"paraphrases {w['paraphrase']:.2f} ({w['keys']} keys)" in text
    from mi_course.course.figures import week09

    ripple = week09.ripple_table()
    pct = lambda name, crit: f"{round(100 * ripple[name][crit])}%"  # noqa: E731
    assert (f"compositionality I ROME {pct('ROME', 'compositionality_I')}, MEMIT {pct('MEMIT', 'compositionality_I')}, "
            f"GRACE {pct('GRACE', 'compositionality_I')}") in text
    assert f"compositionality II ROME {pct('ROME', 'compositionality_II')}, MEMIT {pct('MEMIT', 'compositionality_II')}" in text
    assert f"FT's {pct('FT', 'compositionality_II')} there" in text and f"preservation is {pct('FT', 'preservation')}" in text


def test_week10_figures_in_the_docs():
    card = zoo.card("kb-lm")
    loc = card.measured("week10_localization")
    r2, shuffled = loc["r2"], loc["r2_shuffled_tracing"]
    text = _text()
    assert (f"on the layer {r2['layer']:.2f}, on the tracing effect {r2['tracing']:.2f}, on both {r2['both']:.2f}"
            in text)
    assert f"tracing adds {r2['both'] - r2['layer']:.3f}" in text
    assert f"({shuffled['both'] - shuffled['layer']:.3f})" in text
    bias = card.measured("week10_bias")
    assert f"{bias['bias_before']:.2f} nats (s.e. {bias['bias_before_se']:.2f})" in text
    assert f"own {bias['kb_bias']:.2f}" in text
    top = bias["components"][:2]
    assert f"MLP0 ({top[0]['effect']:.2f}) and head 4.3 ({top[1]['effect']:.2f})" in text
    assert [c["component"] for c in top] == ["MLP0", "4.3"]
    located = next(r for r in bias["rows"] if r["name"] == "located top-2")
    assert f"removes {round(100 * located['bias_removed'])}% of the bias" in text
    assert (f"from {bias['damage_before']['recall_heldout']:.2f} to {located['recall_heldout']:.2f}" in text)
    random2 = [r for r in bias["rows"] if r["name"] == "random like top-2"]
    mean = lambda key: sum(r[key] for r in random2) / len(random2)  # noqa: E731
    assert f"two random components remove {round(100 * mean('bias_removed'))}% on average (recall {mean('recall_heldout'):.2f})" in text
    slow = next(r for r in bias["rows"] if r["name"] == "located top-2, lr 3e-4")
    assert f"same recall ({slow['recall_heldout']:.2f}), removes {round(100 * slow['bias_removed'])}%" in text
    assert abs(slow["recall_heldout"] - mean("recall_heldout")) < 0.01
