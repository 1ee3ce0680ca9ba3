"""Week 12, sections 4-5 (the SAE on text-lm-v2): every number the prose states is the card's or the
shipped measurement's (``measured_autointerp.json``, re-measured by tests/test_feature_dashboard.py;
the card's figures by tests/test_zoo_saes.py), and the latents the dashboards table shows are the ones
the measurement scored."""

import json
from pathlib import Path

import pytest

from mi_course import zoo

SAE = "text-lm-v2-L1-resid-topk"
NB = Path(__file__).parents[1] / "solutions" / "12_superposition_saes" / "12_superposition_saes.ipynb"
#: the latents the dashboards table shows, with their explanation's keyword (chosen by reading the dashboards)
SHOWN = {"1013": " for", "127": "\n" + " " * 15, "1792": "[", "221": '"', "76": " value"}
f2 = lambda v: f"{v:.2f}"  # noqa: E731


def _cells() -> list[dict]:
    return json.loads(NB.read_text())["cells"]


@pytest.fixture(scope="module")
def prose():
    md = "\n".join("".join(c["source"]) for c in _cells() if c["cell_type"] == "markdown")
    return " ".join(md.split())  # line breaks in the prose do not matter


@pytest.fixture(scope="module")
def code():
    return "\n".join("".join(c["source"]) for c in _cells() if c["cell_type"] == "code")


def test_sections_4_and_5_use_text_lm_v2_and_its_sae(prose, code):
    assert zoo.sae_card(SAE).model_name == "text-lm-v2"
    for call in ('zoo.load("text-lm-v2")', f'zoo.load_sae("{SAE}")', f'feature_stats.load_feature_stats("{SAE}")'):
        assert call in code, call
    assert "text-lm-L1-resid-topk" not in code + prose and 'zoo.load("text-lm")' not in code
    # the old SAE was a demo awaiting retraining; this one is not
    assert "demo" not in prose and "retrained" not in prose


def test_configuration_quoted_is_the_cards(prose):
    card = zoo.sae_card(SAE)
    cfg = card.config
    assert cfg["architecture"] == "topk" and card.hook_name == "blocks.1.hook_resid_post"
    assert f"TopK SAE (k = {cfg['k']}) with {cfg['d_sae']:,} latents" in prose
    assert "residual stream after block 1 (of 4)" in prose and zoo.card("text-lm-v2").config["n_layers"] == 4
    assert "1.23M tokens" in card.training["data"]
    assert "trained on 1.23M tokens of its activations" in prose and "1.23M training tokens" in prose


def test_card_figures_quoted_are_the_cards(prose):
    card = zoo.sae_card(SAE)
    f = card.figures
    for phrase in (f"L0 = {f['l0']['value']:.0f}",
                   f"explained variance {f2(f['explained_variance']['value'])} against "
                   f"{f2(f['explained_variance']['random_decoder_baseline'])}",
                   f"recovered {f['ce_loss_recovered']['value']:.3f} against {f['ce_loss_recovered']['random_decoder_baseline']:.3f}",
                   f"from {f2(f['clean']['value'])} to {f2(f['spliced']['value'])} nats",
                   f"raises it to {f2(f['zero_ablated']['value'])}",
                   f"{f['dead']['value']:.0f} latents dead on those 32,640 tokens",
                   # the closing table
                   f"explained variance {f2(f['explained_variance']['value'])} (random decoder "
                   f"{f2(f['explained_variance']['random_decoder_baseline'])})",
                   f"loss recovered {f['ce_loss_recovered']['value']:.3f} (random decoder "
                   f"{f['ce_loss_recovered']['random_decoder_baseline']:.3f})",
                   f"{f['dead']['value']:.0f} dead on 32,640 tokens"):
        assert phrase in prose, phrase
    # 128 held-out windows of 256 tokens (position 0 left out), the losses on 32 of them
    assert "32640" in f["dead"]["description"] and 128 * (zoo.card("text-lm-v2").config["n_ctx"] - 1) == 32640
    assert "32 held-out windows" in f["ce_loss_recovered"]["description"]
    assert "measured on 128 held-out windows (the losses on 32 of them)" in prose
    # the caveat the prose states: the random decoder recovers most of the loss, much less of the variance
    assert f["ce_loss_recovered"]["random_decoder_baseline"] > 0.5 > f["explained_variance"]["random_decoder_baseline"]


def test_autointerp_figures_quoted_are_the_measured_ones(prose):
    card = zoo.sae_card(SAE)
    m = card.measured("autointerp")
    for phrase in (f"On {m['latents_scored']} random live latents",
                   f"scores {f2(m['detection'])} on detection against {f2(m['random_detection'])} for a random rule and "
                   f"{f2(m['shuffled_detection'])} for a shuffled latent's explanation",
                   f"{f2(m['fuzzing'])} on fuzzing against {f2(m['random_fuzzing'])} and {f2(m['shuffled_fuzzing'])}",
                   f"{m['dead_on_stream']} latents never fire",
                   f"the median: {100 * m['density_median_alive']:.1f}% of tokens",
                   f"on {m['latents_scored']} latents: detection {f2(m['detection'])}, fuzzing {f2(m['fuzzing'])}; "
                   f"random rule {f2(m['random_detection'])} / {f2(m['random_fuzzing'])}"):
        assert phrase in prose, phrase
    n_tok = int(m["settings"].split("(")[1].split(" tokens")[0])
    assert f"{n_tok:,} tokens of the dashboard stream" in prose
    assert str(n_tok) in card.extra["feature_stats"]["stream"]
    # the re-measure on 16 windows: about 4,000 tokens
    n_ctx = zoo.card("text-lm-v2").config["n_ctx"]
    assert "16 held-out windows (about 4,000 tokens)" in prose and round(16 * (n_ctx - 1), -3) == 4000


def test_dashboards_table_is_the_measured_latents(prose, code):
    m = zoo.sae_card(SAE).measured("autointerp")
    assert set(m["shown"]) == set(SHOWN)
    assert f"for latent in ({', '.join(SHOWN)}):" in code
    for latent, r in m["shown"].items():
        assert f"| {latent} |" in prose
        assert f"| {f2(r['detection'])} | {f2(r['fuzzing'])} |" in prose, latent
        # what the table says each latent is: its explanation's keyword
        assert r["explanation"] == f"tokens {SHOWN[latent]!r}", latent
        # and the table's explanation column is that measured rule (127's newline + 15 spaces spelled out)
        shown = r["explanation"].replace("\\n" + " " * 15 + "'", "\\n' + 15 spaces")
        assert f"| {latent} | `{shown}` |" in prose, latent
    # latent 76's warning holds: no better than chance, and it fires far more often; the others well above chance
    w = m["shown"]["76"]
    assert abs(w["detection"] - 0.5) < 0.1 and f"fires on {100 * w['density']:.2f}% of tokens" in prose
    assert all(m["shown"][k]["detection"] >= 0.65 for k in SHOWN if k != "76")
    assert all(w["density"] > 4 * m["shown"][k]["density"] for k in SHOWN if k != "76")


def test_your_turn_rule_is_left_to_the_student(prose, code):
    """The 'Your turn' for latent 1792 ships a default rule the student replaces (it runs), not the answer."""
    assert "Write a rule for latent 1792 that beats `'['`" in prose
    assert 'startswith("[")' not in code
    assert "replace the condition below with your rule for latent 1792" in code
    assert 'autointerp.predicate_rule(lambda t, i: t[i] == "[",' in code


def test_closing_table_numbers_come_from_this_notebooks_runs(prose, code):
    """"Ours vs the papers": the rows about this notebook's own runs are printed from its variables (a markdown
    table cannot compute), no row points elsewhere instead of giving a number."""
    for pointer in ("see section", "see the last cell", "see the count"):
        assert pointer not in prose, pointer
    for expr in ("toy_models.n_represented(W)", "ours['MMCS']", "chance['MMCS']", "ours['explained variance']",
                 "rb['mmcs']", "rb['explained_variance']", "splits_fn(parent, cos, 8, 0.7)",
                 "splits_fn(r_parent, r_cos, 8, 0.7)", "same.float().mean()"):
        assert expr in code, expr
    # the SAE parameters of section 3 (p) survive to the table: no later loop reuses the name
    assert "for w, p in" not in code and "for p, kids in" not in code
