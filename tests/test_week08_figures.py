"""The numbers week 08's notebook prose and deck quote, recomputed with the notebook's settings
(``course/figures/week08.py``: 10 facts, 5 noise samples; the edit sweep is the card's, 20 requests)."""

import pytest

from mi_course import zoo
from mi_course.methods import causal_tracing as ct

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo")
TOL = 0.011  # the prose rounds to 2 decimals

PROSE = {
    "high": 0.97, "low": 0.06,
    "hidden_LS": [0.43, 0.22, 0.09], "hidden_LT": [0.01, 0.41, 0.91],
    "mlp_LS": [0.18, 0.04], "mlp_peak": (5, "last token", 0.28),
    "mlp3_peak": (4, "last token", 0.72), "attn_peak": (3, "last token", 0.21),
    "hidden_peak": (5, "last token", 0.91),
    "severed_mlp_LS": [0.25, 0.16], "severed_attn_LS": [0.39, 0.2],
}
EDITS = {  # section 7 and the deck: the card's 20-request sweep (re-measured by test_kb_editing_figures.py)
    "ROME|0": {"ES": 1.0, "PS": 1.0, "NS": 0.99},
    "ROME|1": {"ES": 0.95, "PS": 0.95, "NS": 0.98},
    "ROME|2": {"ES": 0.55, "PS": 0.48, "NS": 1.0},
    "ROME|3": {"ES": 0.15, "PS": 0.06, "NS": 1.0},
    "ROME|4": {"ES": 0.05, "PS": 0.03, "NS": 1.0},
    "ROME|5": {"ES": 0.0, "PS": 0.0, "NS": 1.0},
    "FT|0": {"ES": 1.0, "PS": 1.0, "NS": 0.0},
    "FT|2": {"ES": 1.0, "PS": 1.0, "NS": 0.04},
    "FT|4": {"ES": 1.0, "PS": 1.0, "NS": 0.12},
    "FT-L|0": {"ES": 1.0, "PS": 1.0, "NS": 0.16},
    "FT-L|2": {"ES": 1.0, "PS": 1.0, "NS": 0.70},
    "FT-L|5": {"ES": 1.0, "PS": 1.0, "NS": 0.76},
}


@pytest.fixture(scope="module")
def tracing():
    from mi_course.course.figures import week08

    return week08.tracing()


def test_tracing_numbers_in_the_prose(tracing):
    LS, LT = ct.POSITION_NAMES.index("last subject token"), ct.POSITION_NAMES.index("last token")
    assert tracing["high"] == pytest.approx(PROSE["high"], abs=TOL)
    assert tracing["low"] == pytest.approx(PROSE["low"], abs=TOL)
    assert tracing["hidden"][:3, LS].tolist() == pytest.approx(PROSE["hidden_LS"], abs=TOL)
    assert all(x < 0.01 for x in tracing["hidden"][3:, LS].tolist())
    assert [tracing["hidden"][i, LT].item() for i in (0, 2, 5)] == pytest.approx(PROSE["hidden_LT"], abs=TOL)
    assert tracing["mlp"][:2, LS].tolist() == pytest.approx(PROSE["mlp_LS"], abs=TOL)
    assert all(x < 0.01 for x in tracing["mlp"][2:, LS].tolist())
    for key, name in (("hidden_peak", "hidden"), ("mlp_peak", "mlp"), ("mlp3_peak", "mlp, window 3"), ("attn_peak", "attn")):
        L, pos, eff = ct.peak(tracing[name])
        assert (L, pos) == PROSE[key][:2] and eff == pytest.approx(PROSE[key][2], abs=TOL)
    assert tracing["severed mlp"][:2, LS].tolist() == pytest.approx(PROSE["severed_mlp_LS"], abs=TOL)
    assert tracing["severed attn"][:2, LS].tolist() == pytest.approx(PROSE["severed_attn_LS"], abs=TOL)


def test_edit_numbers_in_the_prose():
    from mi_course.course.figures import week08

    sweep = week08.edit_sweep()
    for key, want in EDITS.items():
        name, layer = key.split("|")
        got = sweep[(name, None if layer == "None" else int(layer))]
        for m, v in want.items():
            assert got[m] == pytest.approx(v, abs=TOL), (key, m, got[m], v)
