"""Week 08's figures on the shipped ``kb-lm``: the card's tracing and editing entries, re-measured on
a subset, and the numbers the notebook's prose and the deck quote (``course/figures/week08.py``)."""

import pytest
import torch

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.methods import causal_tracing as ct
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import rome

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo yet")


@pytest.fixture(scope="module")
def model():
    torch.set_grad_enabled(False)
    return zoo.load("kb-lm")


@pytest.fixture(scope="module")
def card_fig():
    fig = zoo.card("kb-lm").extra.get("week08")
    if fig is None:
        pytest.skip("kb-lm's card has no week08 entry yet (benchmarks/kb_editing_figures.py --write)")
    return fig


def test_card_tracing_peaks_re_measured(model, card_fig):
    """12 of the card's 40 facts: same peak places; AIE at the peak within 0.12."""
    kb = load_kb()
    facts = ev.known_facts(model, kb, 12, seed=0)
    noise = ct.NOISE_FACTOR * ct.embedding_std(model, kb.subjects)
    for kind in ("hidden", "attn"):
        aie, _ = ct.trace_facts(model, facts, kind=kind, n_samples=5, noise=noise, progress=False)
        L, pos, eff = ct.peak(aie)
        want = card_fig["tracing"][kind]
        assert (L, pos) == (want["peak_layer"], want["peak_position"]), (kind, L, pos, eff)
        assert eff == pytest.approx(want["peak_aie"], abs=0.12)


def test_card_edit_scores_re_measured(model, card_fig):
    """6 of the card's 20 requests at the default layer: ROME succeeds, FT-L barely moves the facts."""
    kb = load_kb()
    cases = ev.kb_cases(model, kb, 6, seed=1)
    L = rome.default_layer(model)
    r = ev.evaluate_edits(model, cases, ev.rome_editor(L), progress=False)[0]
    want = card_fig["editing"]["ROME"][str(L)]
    for k in ("ES", "PS", "NS"):
        assert r[k] == pytest.approx(want[k], abs=0.2), (k, r[k], want[k])
