"""Week 13's deck figures draw from the measured files (text-lm-v2) and the kb-lm SAE card."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from mi_course import zoo
from mi_course.course.figures import week13 as F


@pytest.mark.skipif(F.KB_SAE not in zoo.sae_names(), reason="kb-lm SAE not in this checkout")
def test_shift_bars_draw_the_cards_figures():
    fig = F.shift_bars()
    heights = [round(p.get_height(), 4) for p in fig.axes[0].patches]
    f = F.shift_figures()
    assert heights == [round(f[f"agree_{k}_accuracy_disagree"], 4) for k in ("before", "retrained", "random_retrained")]
    plt.close(fig)


@pytest.mark.parametrize("name", ["steering_curves", "circuit_curve", "atp_vs_patching"])
def test_text_lm_v2_figures_draw(name):
    if F.MODEL not in zoo.names():
        pytest.skip("text-lm-v2 is not in this checkout")
    try:
        F.steering_figures(), F.circuit_figures()
    except Exception:
        pytest.skip("measured_week13_*.json not written yet")
    plt.close(getattr(F, name)())
