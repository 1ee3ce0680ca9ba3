"""Week 13: every number the notebook's prose and the deck state is the measured one
(``measured_week13_steering.json`` and ``measured_week13_circuit.json`` beside ``text-lm-v2``'s card, written by
``benchmarks/textlm_steering_circuits.py --write``; the kb-lm SAE's card for SHIFT, re-measured by
tests/test_shift.py), and each claim in words still holds for those numbers."""

import course_text
import pytest

from mi_course import zoo

#: the week whose prose and deck the ``prose`` and ``deck`` fixtures (conftest) read
WEEK = "13_steering_feature_circuits"
MODEL, KB_SAE = "text-lm-v2", "kb-lm-L3-subject-topk"
D = 0.1  # the damage at which prose and deck compare


@pytest.fixture(scope="module")
def m():
    if MODEL not in zoo.names():
        pytest.skip("text-lm-v2 is not in this checkout")
    card = zoo.card(MODEL)
    s, c = card.measured("week13_steering"), card.measured("week13_circuit")
    assert s["model_sha256"] == c["model_sha256"] == card.sha256, "text-lm-v2 changed: rerun the benchmark"
    targets = {k: t for k, t in s["targets"].items() if "skipped" not in t}
    return s, c, targets


def _at(t, method, d=D):
    return t["methods"][method]["at_damage"][str(d)]


def _rnd(t, d=D, key="at_damage"):
    """The 8 random directions' values at damage ``d`` (the first is ``methods["random"]``, the plot's)."""
    return t["random_directions"][key][str(d)]


def _mean(v):
    return sum(v) / len(v)


def test_steering_table_and_claims(prose, deck, m):
    s, _, T = m
    assert list(T) == ["docstring", "return", "self"]
    for name, t in T.items():
        r = _rnd(t)
        row = (f"| {_at(t, 'feature'):+.2f} | {_at(t, 'diff_of_means'):+.2f} | "
               f"{_mean(r):+.2f} ({min(r):+.2f} to {max(r):+.2f}) |")
        assert f"`{t['text']}` (latent {t['latent']}) {row}" in deck, name
    for method, label in (("feature", "feature"), ("diff_of_means", "difference of means")):
        assert f"| {label} | " + " | ".join(f"{_at(t, method):+.2f}" for t in T.values()) + " |" in prose, method
    assert "| random direction, mean of 8 | " + " | ".join(f"{_mean(_rnd(t)):+.2f}" for t in T.values()) + " |" in prose
    assert "| random direction, range of 8 | " + " | ".join(f"{min(_rnd(t)):+.2f} to {max(_rnd(t)):+.2f}"
                                                           for t in T.values()) + " |" in prose
    # "the difference of means wins everywhere: lo x to hi x the feature's gain", and from 0.1 nats on it beats
    # every random direction too (not at 0.05)
    ratios = [_at(t, "diff_of_means", d) / _at(t, "feature", d) for t in T.values() for d in s["damages"]]
    assert min(ratios) > 1
    assert f"{min(ratios):.1f}x to {max(ratios):.1f}x the feature's gain" in prose
    assert all(_at(t, "diff_of_means", d) > max(_rnd(t, d)) for t in T.values() for d in s["damages"] if d >= 0.1)
    assert "from 0.1 nats on it beats all 8 random directions" in prose
    # "the feature is no better than a random push": inside the random range at every damage, for every target;
    # above the mean for return and self at 0.1, below it for """
    assert all(min(_rnd(t, d)) <= _at(t, "feature", d) <= max(_rnd(t, d)) for t in T.values() for d in s["damages"])
    sf, dr, rt = T["self"], T["docstring"], T["return"]
    assert _at(rt, "feature") > _mean(_rnd(rt)) and _at(sf, "feature") > _mean(_rnd(sf)) > 0
    assert _at(dr, "feature") < _mean(_rnd(dr))
    # the first draw (the plot's) beat the feature for return, the mean of 8 is far below it
    assert _at(rt, "random") == _rnd(rt)[0] > _at(rt, "feature") > _mean(_rnd(rt))
    for phrase in (f"the first one beat the feature ({_at(rt, 'random'):+.2f} against {_at(rt, 'feature'):+.2f}) while "
                   f"the mean of 8 is far below it ({_mean(_rnd(rt)):+.2f})",
                   "(cosine " + ", ".join(f"{t['cos_feature_dom']:.2f}" for t in T.values()) + ")",
                   "differ by " + ", ".join(f"{t['latent_contrast_sd']:.1f}" for t in T.values()) + " standard deviations"):
        assert phrase in prose, phrase
    strong = next(r for r in dr["methods"]["feature"]["sweep"] if r["strength"] == 2.0)
    assert f"measured {strong['d_damage']:.2f} nats of extra loss on other text for the `\"\"\"` feature" in prose
    assert s["hook"] == "blocks.1.hook_resid_post" and "at layer 1, with a 2,048-latent SAE" in prose


def test_circuit_figures_and_claims(prose, deck, m):
    _, c, _ = m
    curve = c["curve"]
    sizes = [r["n_latents"] + r["n_errors"] for r in curve]
    assert sizes == sorted(sizes)
    rnd = [r["random_faithfulness"] for r in curve]
    for text in (prose, deck):
        assert ", ".join(f"{r['faithfulness']:.2f}" for r in curve) in text
        assert ", ".join(f"{r['completeness']:.2f}" for r in curve) in text
        assert f"{min(rnd):.2f} to {max(rnd):.2f}" in text
        assert ", ".join(str(n) for n in sizes) + " nodes" in text
    assert max(abs(x) for x in rnd) < 0.05 and max(r["completeness"] for r in curve) < 0.05
    first_above = next(n for n, r in zip(sizes, curve) if r["faithfulness"] > 1)
    assert f"**Above 1** from {first_above} nodes" in prose
    assert f"at most {100 * max(r['completeness'] for r in curve):.0f}% of the behaviour" in prose
    assert f"{curve[0]['n_errors']} of the {sizes[0]} strongest nodes" in prose and \
        f"{curve[0]['n_errors']} of the {sizes[0]} strongest nodes" in deck
    assert f"found {c['found_by_gap'][str(c['gap'])]:,} such places" in prose
    for text in (prose, deck):
        assert f"{c['metric_clean']:.2f}" in text and f"{c['metric_patch']:.2f}" in text
        assert f"r = {c['atp_vs_ig_corr']:.2f}" in text
    assert 9 < c["metric_clean"] - c["metric_patch"] < 10 and "moves the metric by almost 10" in prose
    # the two nodes where AtP fails, both at the swapped bracket
    fail = [r for r in c["top_nodes"] if abs(r["atp"] - r["exact"]) > 0.5]
    assert [(r["hook"], r["position"], r["latent"]) for r in fail] == \
        [("blocks.1.hook_resid_post", -2, 1792), ("blocks.0.hook_resid_post", -2, 680)]
    for r in fail:
        L = r["hook"].split(".")[1]
        assert f"latent {r['latent']} of layer {L} at position -2 has AtP {r['atp']:+.2f}, IG {r['ig']:+.2f} and patching " \
               f"{r['exact']:+.2f}" in prose
        assert abs(r["ig"] - r["exact"]) < abs(r["atp"] - r["exact"])   # IG comes closer
    r = fail[0]
    assert f"latent 1792 (`[` after a name), AtP {r['atp']:+.2f}, IG {r['ig']:+.2f}".replace("-", "−") in deck.replace("-", "−")
    # latent 1792 of the layer-1 SAE is the one week 12's dashboards show as '[' opening a subscript
    assert c["saes"]["blocks.1.hook_resid_post"]["source"] == "zoo SAE text-lm-v2-L1-resid-topk"
    shown = zoo.sae_card("text-lm-v2-L1-resid-topk").measured("autointerp")["shown"]
    assert "1792" in shown


def test_shift_figures_are_the_cards(prose, deck):
    if KB_SAE not in zoo.sae_names():
        pytest.skip("kb-lm SAE not in this checkout")
    f = {k: v["value"] for k, v in zoo.sae_card(KB_SAE).figures.items()}
    for phrase in (f"removes {f['agree_n_ablated']:.0f} latents",
                   f"rises from {f['agree_before_accuracy_disagree']:.2f} to {f['agree_retrained_accuracy_disagree']:.2f} after retraining",
                   f"latents: {f['agree_random_retrained_accuracy_disagree']:.2f})",
                   f"falls from {f['agree_before_bias']:.2f} to {f['agree_retrained_bias']:.2f} (random: {f['agree_random_retrained_bias']:.2f})",
                   f"{f['agree_before_accuracy']:.2f} → {f['agree_retrained_accuracy']:.2f}",
                   f"gender at {f['agree_gender_probe_after']:.2f} after the ablation ({f['agree_gender_probe_before']:.2f} before)"):
        assert phrase in prose, phrase
    for phrase in (f"disagreeing people {f['agree_before_accuracy_disagree']:.2f} → {f['agree_retrained_accuracy_disagree']:.2f} "
                   f"(random latents {f['agree_random_retrained_accuracy_disagree']:.2f}); bias {f['agree_before_bias']:.2f} → "
                   f"{f['agree_retrained_bias']:.2f} (random {f['agree_random_retrained_bias']:.2f})",
                   f"{f['agree_gender_probe_before']:.2f} before, {f['agree_gender_probe_after']:.2f} after"):
        assert phrase in deck, phrase


def test_the_deck_is_final_and_its_figures_exist():
    assert len(course_text.deck_figures(WEEK)) >= 4


def _top(t, method, d=D):
    return t["methods"][method]["top1_at_damage"][str(d)]


def test_top_prediction_table_and_claims(prose, deck, m):
    """The metric a flattened distribution cannot fake: how often the target becomes the top prediction."""
    _, _, T = m
    assert f"| clean | " + " | ".join(f"{t['baseline_top1']:.2%}" for t in T.values()) + " |" in prose
    for method, label in (("feature", "feature"), ("diff_of_means", "difference of means")):
        assert f"| {label} | " + " | ".join(f"{_top(t, method):.2%}" for t in T.values()) + " |" in prose, method
        assert f"{label} " + " / ".join(f"{_top(t, method):.2%}" for t in T.values()) in deck, method
    top_r = {n: _rnd(t, D, "top1_at_damage") for n, t in T.items()}
    assert "| random direction, mean of 8 | " + " | ".join(f"{_mean(v):.2%}" for v in top_r.values()) + " |" in prose
    assert "| random direction, range of 8 | " + " | ".join(f"{min(v):.2%} to {max(v):.2%}" for v in top_r.values()) \
        + " |" in prose
    assert "random (mean of 8) " + " / ".join(f"{_mean(v):.2%}" for v in top_r.values()) in deck
    assert "(clean " + " / ".join(f"{t['baseline_top1']:.2%}" for t in T.values()) + ")" in deck
    dr, rt, sf = T["docstring"], T["return"], T["self"]
    # "the feature barely changes what the model says (it says \"\"\" and return less often)"
    assert _top(dr, "feature") < dr["baseline_top1"] and _top(rt, "feature") < rt["baseline_top1"]
    assert abs(_top(sf, "feature") - sf["baseline_top1"]) < 0.002
    # "the difference of means makes it say each target more often (at 0.5 nats: ...)"
    for t in T.values():
        assert _top(t, "diff_of_means") > t["baseline_top1"] and _top(t, "diff_of_means", 0.5) > _top(t, "diff_of_means")
    assert "(at 0.5 nats: " + ", ".join(f"{_top(t, 'diff_of_means', 0.5):.2%}" for t in T.values()) + ")" in prose
    # "beyond every random direction for """ and self (at most x and y at 0.5 nats) but not for return, where one
    # random direction reaches z"
    top5 = {n: _rnd(t, 0.5, "top1_at_damage") for n, t in T.items()}
    assert _top(dr, "diff_of_means", 0.5) > max(top5["docstring"]) and _top(sf, "diff_of_means", 0.5) > max(top5["self"])
    assert _top(rt, "diff_of_means", 0.5) < max(top5["return"])
    assert f"(at most {max(top5['docstring']):.2%} and {max(top5['self']):.2%} at 0.5 nats)" in prose
    assert f"one random direction reaches {max(top5['return']):.2%}" in prose


def test_the_live_top_prediction_cell_is_described_by_its_sweep(prose, m):
    """The notebook steers toward `self` at strength 0.25 and says what damage that strength cost in the sweep."""
    _, _, T = m
    dmg = [r["d_damage"] for meth in ("feature", "diff_of_means", "random")
           for r in T["self"]["methods"][meth]["sweep"] if r["strength"] == 0.25]
    assert len(dmg) == 3
    assert f"{min(dmg):.2f}-{max(dmg):.2f} nats of damage in the sweep" in prose
    assert "Both, and 8 random directions, are scaled" in prose
