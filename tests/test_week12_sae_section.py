"""Week 12, sections 4-5 (the SAE on text-lm): every number the prose states is the card's or the
shipped measurement's (``measured_autointerp.json``, re-measured by tests/test_feature_dashboard.py;
the card's figures by tests/test_zoo_saes.py), and the prose says these are demo figures."""

import json
from pathlib import Path

import pytest

from mi_course import zoo

SAE = "text-lm-L1-resid-topk"
NB = Path(__file__).parents[1] / "solutions" / "12_superposition_saes" / "12_superposition_saes.ipynb"


def _markdown() -> str:
    cells = json.loads(NB.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.fixture(scope="module")
def prose():
    return " ".join(_markdown().split())  # line breaks in the prose do not matter


def test_the_prose_says_text_lm_will_be_retrained_and_figures_re_measured(prose):
    assert "will be retrained" in prose and "re-measured" in prose and "demo" in prose


def test_card_figures_quoted_are_the_cards(prose):
    f = zoo.sae_card(SAE).figures
    f2 = lambda v: f"{v:.2f}"  # noqa: E731
    for phrase in (f"L0 = {f['l0']['value']:.0f}",
                   f"explained variance {f2(f['explained_variance']['value'])} against "
                   f"{f2(f['explained_variance']['random_decoder_baseline'])}",
                   f"recovered {f['ce_loss_recovered']['value']:.3f} against {f['ce_loss_recovered']['random_decoder_baseline']:.3f}",
                   f"from {f2(f['clean']['value'])} to {f2(f['spliced']['value'])} nats",
                   f"raises it to {f2(f['zero_ablated']['value'])}",
                   f"{f['dead']['value']:.0f} latents dead on those 16,256 tokens",
                   f"loss recovered {f['ce_loss_recovered']['value']:.3f} (random decoder "
                   f"{f['ce_loss_recovered']['random_decoder_baseline']:.3f})"):
        assert phrase in prose, phrase
    assert "16256" in zoo.sae_card(SAE).figures["dead"]["description"]


def test_autointerp_figures_quoted_are_the_measured_ones(prose):
    m = zoo.sae_card(SAE).measured("autointerp")
    f2 = lambda v: f"{v:.2f}"  # noqa: E731
    for phrase in (f"On {m['latents_scored']} random live latents",
                   f"scores {f2(m['detection'])} on detection against {f2(m['random_detection'])} for a random rule and "
                   f"{f2(m['shuffled_detection'])} for a shuffled latent's explanation",
                   f"{f2(m['fuzzing'])} on fuzzing against {f2(m['random_fuzzing'])} and {f2(m['shuffled_fuzzing'])}",
                   f"{m['dead_on_stream']} latents never fire",
                   f"the median: {100 * m['density_median_alive']:.1f}% of tokens",
                   f"detection {f2(m['detection'])}, fuzzing {f2(m['fuzzing'])}"):
        assert phrase in prose, phrase
    n_tok = int(m["settings"].split("(")[1].split(" tokens")[0])
    assert f"{n_tok:,} tokens of the dashboard stream" in prose
    assert str(n_tok) in zoo.sae_card(SAE).extra["feature_stats"]["stream"]
    assert "0.41M training tokens" in prose and "0.41M tokens" in zoo.sae_card(SAE).training["data"]
    for latent, r in m["shown"].items():
        assert f"| {latent} |" in prose
        assert f"| {f2(r['detection'])} | {f2(r['fuzzing'])} |" in prose, latent
    # what the table says each latent is: its explanation's keyword
    for latent, word in (("3", " in"), ("8", "("), ("13", " and"), ("89", " pro")):
        assert m["shown"][latent]["explanation"] == f"tokens {word!r}"
    # latent 89's warning holds: no better than chance; the others well above
    assert abs(m["shown"]["89"]["detection"] - 0.5) < 0.1
    assert all(m["shown"][k]["detection"] >= 0.65 for k in ("3", "8", "13"))
