"""The shipped ``text-lm-v2``: its card's figures are what the checkpoint shows, on any machine.

The card is measured on windows of the held-out sample shipped beside the checkpoint
(``textlm2_recipe.card_windows``), so the held-out, ICL and induction figures re-measure exactly here;
the unigram/bigram baselines need the train split, which depends on the installed packages, so they are
re-measured only where this machine's corpus is the card's.
"""

import pytest

from mi_course import zoo
from mi_course.training import textlm2_recipe as R2

SHIPPED = R2.NAME in zoo.names() and not zoo.card(R2.NAME).summary.startswith("SNAPSHOT")
pytestmark = pytest.mark.skipif(not SHIPPED, reason="text-lm-v2 has not shipped in this checkout (still training)")


@pytest.fixture(scope="module")
def v2():
    return zoo.load(R2.NAME)


def test_loads_with_its_tokenizer_sample_and_lens(v2):
    from mi_course.methods.logit_lens import load_tuned_lens
    from mi_course.zoo import text

    card = zoo.card(R2.NAME)
    assert v2.cfg.n_layers == 4 and v2.cfg.d_model == 256 and v2.cfg.n_ctx == 256
    assert text.corpus_of(R2.NAME) == "python"
    s = "def __init__(self, x):\n    self.x = x"
    assert "".join(v2.to_str_tokens(s)[1:]) == s
    sample = text.heldout_sample(R2.NAME)
    assert sample.shape == (R2.HELDOUT_SAMPLE_WINDOWS, 256) and (sample[:, 0] == 0).all()
    assert load_tuned_lens(v2) is not None
    assert card.training["steps"] == R2.Recipe().steps and card.size_bytes <= 25e6  # the issue's bound


@pytest.mark.slow
def test_card_figures_are_what_the_checkpoint_shows(v2, one_thread):
    from mi_course.data import python_corpus as pc
    from mi_course.zoo import text

    card = zoo.card(R2.NAME)
    same_corpus = card.extra["corpus"].get("sha256") == pc.corpus_info()["sha256"]
    train = text.tokens(R2.NAME, "train") if same_corpus else None
    got = R2.measure(v2, text.heldout_sample(R2.NAME), train)
    for key, fig in card.figures.items():
        if key in got:
            assert got[key]["value"] == pytest.approx(fig["value"], abs=2e-3), key
    f = {k: v["value"] for k, v in card.figures.items()}
    # what block 3 needs of it, against baselines: below the bigram model (2.06 < 4.06 < 6.44), uses its
    # context (ICL score -0.58); #10's induction bar is its own test below
    assert f["heldout_loss"] < f["bigram_loss"] < f["unigram_loss"]
    assert f["icl_score"] < 0


@pytest.mark.xfail(strict=True, reason="#10's bar is not met yet: the shipped CPU run (30.3M tokens) reached 0.44 "
                   "(head 3.3; the issue's GPU replica: 0.47 after 16M tokens, 0.61 after 33M). Longer schedules "
                   "do not pass it (57M-115M tokens on a GPU end at 0.47; docs/text-lm.md). A model that passes "
                   "turns this into an XPASS, which fails: then remove this mark.")
def test_meets_issue_10s_induction_bar():
    """#10: an induction head >= 0.5 on repeated random tokens (its real-text induction heads are held by
    tests/test_week02_real_text.py)."""
    assert zoo.card(R2.NAME).figures["induction_score"]["value"] >= 0.5
