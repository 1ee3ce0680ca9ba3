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


V2_SAES = [n for n in ("text-lm-v2-L1-resid-topk", "text-lm-v2-L0-transcoder-topk", "text-lm-v2-L1-transcoder-topk")
           if n in zoo.sae_names()]


@pytest.mark.skipif(not V2_SAES, reason="text-lm-v2's SAEs are not in this checkout")
@pytest.mark.parametrize("name", V2_SAES)
def test_text_lm_v2_sae_cards_are_what_the_checkpoints_show(name, one_thread):
    """Re-measured on the held-out windows shipped with text-lm-v2 (the same on every machine), beside
    the card's baselines (a random decoder for the SAE, an SAE on the MLP output for the transcoders)."""
    from mi_course.methods import transcoders as T

    card = zoo.sae_card(name)
    assert card.extra["model_sha256"] == zoo.card(card.model_name).sha256, f"retrain {name}: its model changed"
    model, sae = zoo.load(card.model_name), zoo.load_sae(name)
    if card.kind == "sae":
        got = R.evaluate(model, sae, R.windows(card.model_name, "heldout", 128, 0))
    else:
        got = T.evaluate(model, sae, R.windows(card.model_name, "heldout", 32, 0))
    for key, fig in card.figures.items():
        assert got[key] == pytest.approx(fig["value"], rel=1e-3, abs=2e-3), key
    f = card.figures
    assert f["l0"]["value"] == pytest.approx(32, abs=0.1)  # TopK k = 32 (a top latent below 0 stays off)
    assert f["spliced"]["value"] < f["zero_ablated"]["value"]
    if card.kind == "sae":
        assert f["explained_variance"]["value"] > f["explained_variance"]["random_decoder_baseline"] + 0.3
        assert f["ce_loss_recovered"]["value"] > f["ce_loss_recovered"]["random_decoder_baseline"] + 0.1
        assert f["dead"]["value"] < f["dead"]["random_decoder_baseline"]
    else:
        assert f["explained_variance"]["value"] > 0.8 and f["ce_loss_recovered"]["value"] > 0.8
