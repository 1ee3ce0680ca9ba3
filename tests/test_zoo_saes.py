"""The zoo's shipped SAEs: their cards' figures are what the checkpoints show, beside the random baseline."""

import pytest
import torch

from mi_course import zoo
from mi_course.data import stdlib_corpus as sc
from mi_course.training import sae_recipe as R

HAVE = R.NAME in zoo.sae_names()
needs_sae = pytest.mark.skipif(not HAVE, reason=f"{R.NAME} not in this checkout")


@needs_sae
def test_demo_sae_card_figures_are_what_it_shows():
    card = zoo.sae_card(R.NAME)
    if card.extra["model_sha256"] != zoo.card(card.model_name).sha256:
        pytest.skip(f"{card.model_name} was retrained: retrain {R.NAME} on it (its card says so)")
    if zoo.card(card.model_name).extra["corpus"]["sha256"] != sc.corpus_info().sha256:
        pytest.skip("this interpreter's stdlib is not the corpus the card was measured on")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = zoo.load(card.model_name)
        sae = zoo.load_sae(R.NAME)
        got = R.evaluate(model, sae, R.windows(card.model_name, "heldout", 128, 0))
    finally:
        torch.set_num_threads(n)
    for key, fig in card.figures.items():
        assert got[key] == pytest.approx(fig["value"], rel=1e-3, abs=2e-3), key
    f = card.figures
    # the trained SAE beats the random-decoder baseline where it matters
    assert f["explained_variance"]["value"] > f["explained_variance"]["random_decoder_baseline"] + 0.1
    assert f["ce_loss_recovered"]["value"] > f["ce_loss_recovered"]["random_decoder_baseline"]
    assert f["l0"]["value"] == pytest.approx(32)
    assert "text-lm-v2" in card.training["retrain_with"] and "DEMO" in card.summary
