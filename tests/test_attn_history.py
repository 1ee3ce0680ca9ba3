"""attn-only-2l's card ships its training history; week 02's notebook and deck plot it and quote it."""

from __future__ import annotations

import math

import pytest

from mi_course import zoo
from mi_course.training import induction_recipe


@pytest.fixture(scope="module")
def hist():
    return induction_recipe.history()


def _at(h, key, step):
    return h[key][h["step"].index(step)]


def test_history_is_on_the_card(hist):
    card = zoo.card("attn-only-2l")
    n = len(hist["step"])
    assert hist["step"] == list(range(0, card.training["steps"] + 1, 10))
    assert all(len(hist[k]) == n for k in ("loss", "induction_L1", "prev_token_L0"))
    assert all(isinstance(x, float) and math.isfinite(x) for k in ("loss", "induction_L1", "prev_token_L0")
               for x in hist[k])
    # the end of the history is the shipped model (probe of 8 sequences vs the card's 32)
    assert abs(hist["induction_L1"][-1] - card.figures["induction_score_L1"]["value"]) < 0.05


def test_the_phase_change_the_notebook_describes(hist):
    card = zoo.card("attn-only-2l")
    first = next(s for s, v in zip(hist["step"], hist["induction_L1"]) if v > 0.5)
    assert first == card.extra["phase_change"] == 500  # "after about 16,000 sequences (step 500)"
    assert max(v for s, v in zip(hist["step"], hist["induction_L1"]) if s <= 350) < 0.05  # flat for ~350 steps
    assert 5.0 < hist["loss"][0] < 5.2 and 4.2 < _at(hist, "loss", 300) < 4.4  # creeps from 5.1 to ~4.3
    assert 0.08 < _at(hist, "induction_L1", 390) < 0.15 and 0.65 < _at(hist, "induction_L1", 540) < 0.75  # 0.1 -> 0.7
    assert _at(hist, "loss", 300) - _at(hist, "loss", 600) > 1.0  # the loss drops by about a nat
    assert _at(hist, "prev_token_L0", 360) < 0.12 and _at(hist, "prev_token_L0", 750) > 0.6


def test_the_recipe_reproduces_the_start_of_the_history(hist):
    """The opt-in retraining cell runs the same recipe and seed: its first steps match the card."""
    _, recipe = induction_recipe.train(induction_recipe.Recipe(steps=30, eval_every=10), progress=False)
    for row in recipe.history[:-1]:  # the last row of a run holds the previous step's loss
        i = hist["step"].index(row["step"])
        assert row["induction_L1"] == pytest.approx(hist["induction_L1"][i], abs=1e-3)
        assert row["prev_token_L0"] == pytest.approx(hist["prev_token_L0"][i], abs=1e-3)
        assert row["loss"] == pytest.approx(hist["loss"][i], abs=1e-3)


def test_missing_history_is_a_clear_error():
    from mi_course.errors import CheckpointError

    card = zoo.card("attn-only-2l")
    card.extra = {k: v for k, v in card.extra.items() if k != "history"}
    with pytest.raises(CheckpointError, match="no training history"):
        induction_recipe.history(card)
