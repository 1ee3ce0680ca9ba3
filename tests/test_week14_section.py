"""Week 14: every number the notebook's prose and the deck state is the measured one: the shipped transcoders'
cards (re-measured by tests/test_zoo_saes.py; their ``sae_on_mlp_out`` baselines were trained beside them) and
``measured_week14_*.json`` beside ``text-lm-v2``'s card (``benchmarks/textlm_transcoder_circuits.py --write``,
checked by tests/test_textlm_transcoder_circuits.py), and each claim in words holds for those numbers."""

import course_text
import pytest

from mi_course import zoo

#: the week whose prose and deck the ``prose`` and ``deck`` fixtures (conftest) read
WEEK = "14_transcoders"
MODEL = "text-lm-v2"
TC0, TC1 = f"{MODEL}-L0-transcoder-topk", f"{MODEL}-L1-transcoder-topk"


@pytest.fixture(scope="module")
def m():
    if MODEL not in zoo.names() or TC1 not in zoo.sae_names():
        pytest.skip("text-lm-v2 and its transcoders are not in this checkout")
    card = zoo.card(MODEL)
    F0, F1 = zoo.sae_card(TC0).figures, zoo.sae_card(TC1).figures
    return card.measured("week14_transcoders"), card.measured("week14_circuit"), F0, F1


def r3(x):
    return f"{x:.3f}"


def test_transcoder_vs_sae(prose, deck, m):
    E, _, F0, F1 = m
    v = E["vs_sae_equal_l0"]
    t, s = v["transcoder"], v["sae"]
    # short training: the transcoder lags far behind; full training: within 0.02 on both measures
    assert s["ce_loss_recovered"] - t["ce_loss_recovered"] > 0.2 and t["dead"] > 3 * s["dead"]
    for F in (F0, F1):
        for key in ("explained_variance", "ce_loss_recovered"):
            assert abs(F[key]["value"] - F[key]["sae_on_mlp_out"]) < 0.02, key
    for phrase in (f"Short training ({v['steps']} steps, {v['d_sae']:,} latents, k = {v['k']})",
                   f"recovers {r3(t['ce_loss_recovered'])} of MLP {v['layer']}'s loss against the SAE's {r3(s['ce_loss_recovered'])}",
                   f"explains {r3(t['explained_variance'])} of the output's variance against {r3(s['explained_variance'])}",
                   f"leaves {t['dead']:.0f} latents dead against {s['dead']:.0f}",
                   f"At MLP 1 the transcoder recovers {r3(F1['ce_loss_recovered']['value'])} against the SAE's "
                   f"{r3(F1['ce_loss_recovered']['sae_on_mlp_out'])}, and explains {r3(F1['explained_variance']['value'])} against "
                   f"{r3(F1['explained_variance']['sae_on_mlp_out'])}",
                   f"At MLP 0: {r3(F0['ce_loss_recovered']['value'])} against {r3(F0['ce_loss_recovered']['sae_on_mlp_out'])}, and "
                   f"{r3(F0['explained_variance']['value'])} against {r3(F0['explained_variance']['sae_on_mlp_out'])}",
                   f"costs only {F1['zero_ablated']['value'] - F1['clean']['value']:.2f} nats (clean {F1['clean']['value']:.2f}, "
                   f"zero-ablated {F1['zero_ablated']['value']:.2f}"):
        assert phrase in prose, phrase
    for phrase in (f"EV {r3(F0['explained_variance']['value'])} / {r3(F1['explained_variance']['value'])}",
                   f"loss recovered {r3(F0['ce_loss_recovered']['value'])} / {r3(F1['ce_loss_recovered']['value'])}",
                   f"dead {F0['dead']['value']:.0f} / {F1['dead']['value']:.0f}",
                   f"transcoder {r3(F1['ce_loss_recovered']['value'])} vs SAE on the output {r3(F1['ce_loss_recovered']['sae_on_mlp_out'])}",
                   f"{r3(t['ce_loss_recovered'])} vs {r3(s['ce_loss_recovered'])}, dead {t['dead']:.0f} vs {s['dead']:.0f}",
                   f"cheap to delete ({F1['zero_ablated']['value'] - F1['clean']['value']:.2f} nats)"):
        assert phrase in deck, phrase
    assert "1,200 steps" in prose and zoo.sae_card(TC1).training["steps"] == 1200
    # the two sets of windows: the benchmark's short runs vs the cards' figures, each with its clean loss
    st = E["settings"]
    assert t["clean"] == s["clean"] and abs(t["clean"] - F1["clean"]["value"]) > 0.1   # different windows
    assert "32 held-out windows" in F1["ce_loss_recovered"]["description"]
    for phrase in (f"on the first {st['n_eval_windows']} of its {st['n_heldout_windows']} evenly spaced held-out windows "
                   f"(clean loss {t['clean']:.2f})",
                   f"on 32 windows spread evenly over the whole held-out sample (clean loss {F1['clean']['value']:.2f})",
                   "the shipped transcoders' cards count them on 32 held-out windows"):
        assert phrase in prose, phrase


def test_the_small_transcoders_token_count(prose):
    """Cell 13's numbers: 150 steps of 512 tokens drawn from 16 windows of n_ctx - 1 positions (cell 14)."""
    import json

    cells = json.loads((course_text.REPO / "solutions" / WEEK / f"{WEEK}.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "held[8:24]" in code and "steps=150, batch_size=512" in code
    n_ctx = zoo.card(MODEL).config["n_ctx"] if MODEL in zoo.names() else 256
    assert (f"After 150 steps of 512 tokens ({150 * 512:,} token draws, all from the same {16 * (n_ctx - 1):,} tokens: "
            f"16 windows of {n_ctx - 1} positions each, reused)") in prose


def test_de_embedding_and_connections(prose, deck, m):
    _, K, _, _ = m
    d, r, c0 = K["de_embedding"], K["connection_ranks"], K["circuits"][0]
    assert d["hit_rate_circuit"] > d["hit_rate_random_alive"] > 10 * d["chance"]
    for text in (prose, deck):
        assert f"{100 * d['hit_rate_circuit']:.0f}%" in text and f"{100 * d['hit_rate_random_alive']:.0f}%" in text
        assert f"{100 * d['chance']:.1f}%" in text
        assert f"{r['median_rank']:.0f} (median)" in text and f"{r['d_sae_early']:,}" in text
        assert f"{100 * r['share_in_top_1pct']:.0f}% " in text
    assert f"{100 * r['share_in_top_10pct']:.0f}% in the top 10%" in prose
    assert f"(20 of {round(20 / d['chance']):,} tokens)" in prose
    # the example circuit: a late latent on 'def' fed by an early latent whose top de-embedding token is 'def'
    toks = {x["token"].strip() for x in c0["contexts"]}
    top_de = c0["early_de_embedding_top_tokens"][str(c0["early_latents"][0])][0].strip()
    assert toks == {"def"} and top_de == "def"
    assert (f"MLP 1 latent {c0['late_latent']} fires on {100 * c0['frequency']:.2f}% of tokens, and all "
            f"{len(c0['contexts'])} of its strongest contexts are the token `def`") in prose
    assert f"MLP 0 latent {c0['early_latents'][0]}, whose top de-embedding token is `def`" in prose
    assert f"MLP 1 latent {c0['late_latent']} (fires on `def`) ← MLP 0 latent {c0['early_latents'][0]}" in deck
    assert "share " + ", ".join(f"{c['share']:.2f}" for c in K["circuits"]) in deck
    assert f"the {len(r['ranks'])} MLP 0 latents chosen by attribution" in prose


def test_attribution_against_ablation(prose, deck, m):
    _, K, _, _ = m
    gc, gb = K["agreement"]["circuit"], K["agreement"]["baseline"]
    assert gc["pearson_attribution_vs_ablation_everywhere"] > gb["pearson_attribution_vs_ablation_everywhere"]
    assert gc["mean_abs_ablation_everywhere"] < gc["mean_abs_attribution"]          # "attribution overshoots"
    assert abs(gc["pearson_attribution_vs_ablation_here"] - gc["pearson_attribution_vs_ablation_everywhere"]) < 0.01
    assert abs(gc["mean_abs_ablation_here"] - gc["mean_abs_ablation_everywhere"]) < 0.01   # "the same mean"
    for phrase in (f"Over {gc['n_pairs']} (circuit latent, context) pairs",
                   f"r = {gc['pearson_attribution_vs_ablation_everywhere']:.3f} (ablated at every position; "
                   f"{gc['pearson_attribution_vs_ablation_here']:.3f} at that position only)",
                   f"same sign in {100 * gc['sign_agreement_here']:.0f}% of the pairs",
                   f"For {gb['n_pairs']} other latents active on the same tokens: r = "
                   f"{gb['pearson_attribution_vs_ablation_everywhere']:.2f}, the same sign in {100 * gb['sign_agreement_here']:.0f}%",
                   f"mean |attribution| {gb['mean_abs_attribution']:.2f} against {gc['mean_abs_attribution']:.2f}",
                   f"mean |ablation| is {gc['mean_abs_ablation_everywhere']:.2f} against {gc['mean_abs_attribution']:.2f}",
                   f"(|ablation| {gc['mean_abs_ablation_here']:.2f})"):
        assert phrase in prose, phrase
    for phrase in (f"r(attribution, ablation) {gc['pearson_attribution_vs_ablation_everywhere']:.3f} over {gc['n_pairs']} circuit pairs; "
                   f"other active latents {gb['pearson_attribution_vs_ablation_everywhere']:.2f}",
                   f"same sign {100 * gc['sign_agreement_here']:.0f}% vs {100 * gb['sign_agreement_here']:.0f}%",
                   f"mean |attribution| {gc['mean_abs_attribution']:.2f}, |ablation| {gc['mean_abs_ablation_everywhere']:.2f} "
                   f"(other latents: {gb['mean_abs_attribution']:.2f})",
                   f"r {gc['pearson_attribution_vs_ablation_everywhere']:.3f}, baseline {gb['pearson_attribution_vs_ablation_everywhere']:.2f}"):
        assert phrase in deck, phrase


def test_the_deck_is_final_and_its_figures_exist():
    assert set(course_text.deck_figures(WEEK)) == {"tc_vs_sae", "attribution_vs_ablation"}
