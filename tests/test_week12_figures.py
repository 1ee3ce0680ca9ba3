"""The numbers week 12's deck quotes, recomputed with the figures' own settings (``course/figures/week12.py``:
toy models as in the notebook, an SAE on planted features beside its baselines, feature splitting on a
planted hierarchy), and the figures it quotes from ``text-lm-v2``'s SAE (its card, ``measured_autointerp.json``)."""

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from mi_course.course.figures import week12  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DECK = REPO / "slides" / "12_superposition_saes" / "slides.md"
TOL = 0.006  # the deck rounds to 2 decimals


def _deck() -> str:
    return " ".join(DECK.read_text().split())


def test_every_slide_figure_exists():
    names = re.findall(r"\(figure:([A-Za-z_]\w*)\)", DECK.read_text())
    assert len(names) >= 4
    for name in names:
        assert callable(getattr(week12, name, None)), name


def test_text_lm_v2_sae_figures_are_the_cards():
    """The real SAE's slide quotes its card and measured autointerp file (final figures: text-lm-v2 has shipped);
    the splitting slide cites its file and quotes only the benchmark's sizes."""
    from mi_course import zoo

    deck = _deck()
    name = "text-lm-v2-L1-resid-topk"
    card = zoo.sae_card(name)
    cfg, f = card.config, card.figures
    assert f"k = {cfg['k']}, {cfg['d_sae']:,} latents" in deck and f'zoo.sae_card("{name}")' in deck
    assert "trained on 1.23M tokens" in deck and "1.23M tokens" in card.training["data"]
    for label, key, fmt in (("L0", "l0", "{:.0f}"), ("explained variance", "explained_variance", "{:.2f}"),
                            ("CE loss recovered", "ce_loss_recovered", "{:.3f}"),
                            ("dead latents (32,640 tokens)", "dead", "{:.0f}")):
        row = f"| {label} | {fmt.format(f[key]['value'])} | {fmt.format(f[key]['random_decoder_baseline'])} |"
        assert row in deck, row
    assert "32640" in f["dead"]["description"] and "32 held-out windows" in f["ce_loss_recovered"]["description"]
    assert (f"loss {f['clean']['value']:.2f} clean, {f['spliced']['value']:.2f} spliced, "
            f"{f['zero_ablated']['value']:.2f} zero-ablated") in deck
    assert (f"explained variance {f['explained_variance']['value']:.2f} (random decoder "
            f"{f['explained_variance']['random_decoder_baseline']:.2f}), loss recovered "
            f"{f['ce_loss_recovered']['value']:.3f} (random decoder {f['ce_loss_recovered']['random_decoder_baseline']:.3f}), "
            f"{f['dead']['value']:.0f} dead of {cfg['d_sae']:,}") in deck
    m = card.measured("autointerp")
    assert (f"scores on {m['latents_scored']} random live latents (`measured_autointerp.json` beside the SAE's card): "
            f"detection {m['detection']:.2f}, fuzzing {m['fuzzing']:.2f}; random rule {m['random_detection']:.2f} / "
            f"{m['random_fuzzing']:.2f}; shuffled latent's explanation {m['shuffled_detection']:.2f} / "
            f"{m['shuffled_fuzzing']:.2f}") in deck
    s1013, s76 = m["shown"]["1013"], m["shown"]["76"]
    assert s1013["explanation"] == "tokens ' for'" and s76["explanation"] == "tokens ' value'"
    assert f"latent 1013, the keyword ` for`: detection {s1013['detection']:.2f}" in deck
    assert f"detection {s76['detection']:.2f} (chance)" in deck and abs(s76["detection"] - 0.5) < 0.1
    assert "text-lm-L1-resid-topk" not in deck and "will be retrained" not in deck and "demo" not in deck
    assert "measured_week12_splitting.json" in deck
    import importlib.util

    spec = importlib.util.spec_from_file_location("b", REPO / "benchmarks" / "sae_feature_splitting.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    a, b, c, d = bench.SIZES
    assert f"{a:,}, {b:,}, {c:,} and {d:,} latents" in deck
    assert "cosine ≥ 0.7" in deck and bench.THRESHOLD == 0.7 == week12.SPLIT_THRESHOLD


@pytest.mark.slow  # trains the toy models (~10 s)
def test_toy_numbers():
    t = week12.toy()
    deck = _deck()
    dpf, D = t["dims_per_feature"], t["dimensionality"]
    assert dpf[0] == pytest.approx(0.99, abs=TOL) and "S = 0: 0.99 dimensions per feature" in deck
    d07 = sorted(D[1].tolist())
    assert d07[0] < 0.05 and min(d07[1:]) == pytest.approx(0.49, abs=TOL) and max(d07) == pytest.approx(0.51, abs=TOL)
    assert "four features at D ≈ 1/2 (0.49-0.51), one dropped" in deck
    pent = D[2:].flatten()
    assert float(pent.min()) == pytest.approx(0.39, abs=TOL) and float(pent.max()) == pytest.approx(0.41, abs=TOL)
    assert "all five at D ≈ 2/5 (0.39-0.41)" in deck
    assert dpf[3] == pytest.approx(0.31, abs=TOL) and "0.31 dimensions per feature at S = 0.95" in deck


@pytest.mark.slow  # trains two SAEs on planted features (~5 s)
def test_planted_numbers():
    p = week12.planted()
    deck = _deck()
    rows = {"trained SAE": ("trained", True), "random decoder, encoder trained": ("random_decoder", True),
            "64 random directions": ("random_directions", False)}
    for label, (key, ev) in rows.items():
        row = f"| {label} | {p[key]['mmcs']:.2f} |" + (f" {p[key]['explained_variance']:.2f} |" if ev else "")
        assert row in deck, row
    assert p["trained"]["mmcs"] > p["random_decoder"]["mmcs"] + 0.2      # the finding the slide states
    assert p["random_decoder"]["mmcs"] < p["random_directions"]["mmcs"] + 0.05
    assert p["trained"]["explained_variance"] - p["random_decoder"]["explained_variance"] < 0.1
    assert f"{p['trained']['mmcs']:.2f} (random decoder {p['random_decoder']['mmcs']:.2f})" in deck


@pytest.mark.slow  # trains two TopK SAEs on the planted hierarchy (~5 s)
def test_splitting_numbers():
    s = week12.splitting()
    deck = _deck()
    tr, rd = s["trained"], s["random"]
    n = s["tree"].n_children()
    assert tr["n_splits"] == 8 and tr["children_per_split"] == 3.0 and (int(n.min()), int(n.max())) == (2, 4)
    assert "all 8 parents split (2 to 4 children, 3 on average" in deck
    assert s["same_family"] == 1.0 and "100% of the 24 latents sit under their own family's parent" in deck
    assert f"mean best cosine {tr['mean_max_cos']:.2f} against {rd['mean_max_cos']:.2f}" in deck
    assert f"median P(parent on | child on) {s['within_parent_median']:.2f}" in deck
    assert s["sibling_overlap_max"] <= 0.13 + TOL and "overlap ≤ 0.13" in deck
    h = s["hierarchy"]
    cos = float((h.children * h.parents[:, None]).sum(-1).mean())
    assert f"cosine {cos:.2f} to the parent" in deck


@pytest.mark.slow  # draws every figure of the deck
def test_the_deck_builds(tmp_path):
    from mi_course.course import slides

    html = slides.render("12_superposition_saes", DECK.read_text())
    assert html.count("<section>") == DECK.read_text().count("\n---\n") + 1
    assert html.count("data:image/png;base64,") == len(re.findall(r"\(figure:", DECK.read_text()))
