"""Week 02's section 13, induction heads in real Python code: the claims its prose makes about text-lm (v1) and
text-lm-v2, measured the way the section measures them, the numbers the prose and the deck quote, and the deck's
two figures.

The v2 tests skip until v2 ships (while its card says SNAPSHOT); set MI_COURSE_ALLOW_SNAPSHOT=1 to run them on
a snapshot. The values in the comments were measured on the shipped v2 (step 3700, 30.3M tokens; 16 held-out
windows cut to 128 tokens); when v2 replaces text-lm, V1 becomes v1's new zoo name and V2 "text-lm".
"""

import json
import os
from pathlib import Path

import pytest
import torch

from mi_course import zoo
from mi_course.course.figures import week02 as F
from mi_course.methods import induction
from mi_course.zoo import hooks, text

V1, V2 = F.V1, F.V2
N_WINDOWS = F.REAL_TEXT_WINDOWS


def _v2_shipped() -> bool:
    if V2 not in zoo.names():
        return False
    return os.environ.get("MI_COURSE_ALLOW_SNAPSHOT") == "1" or not zoo.card(V2).summary.startswith("SNAPSHOT")


needs_v2_windows = pytest.mark.skipif(V2 not in zoo.names(), reason=f"{V2} is not in the zoo yet")
needs_v2 = pytest.mark.skipif(not _v2_shipped(), reason=f"{V2} has not shipped yet (missing, or its card is a SNAPSHOT)")


def _section_windows() -> torch.Tensor:
    """The section's text: v2's shipped held-out windows, cut to v1's context (128 tokens)."""
    return text.windows(V2, "heldout", N_WINDOWS)[:, : zoo.card(V1).config["n_ctx"]]


def _prev_token_scores(model, tokens) -> torch.Tensor:
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=hooks.only("pattern"))
    return torch.stack([induction.prev_token_scores(cache["pattern", l]) for l in range(model.cfg.n_layers)])


def _assert_no_induction_head(r: dict, prev: torch.Tensor) -> None:
    ind, rnd = r["induction_attention"], r["random_attention"]
    assert float(ind.max()) < 0.06                         # section windows 0.040 (3.3); own windows 0.034
    assert float(ind.max()) < 3 * float(rnd.mean())        # random earlier token 0.016 (own windows 0.014)
    assert float(prev.max()) < 0.2                         # best previous-token head anywhere 0.11 (own 0.12)


def test_v1_has_no_induction_head_on_its_own_heldout_text():
    model = zoo.load(V1)
    tokens = text.windows(V1, "heldout", N_WINDOWS)
    r = induction.real_text_induction(model, tokens, ngram=2)
    assert r["n_matches"] > 300                            # 420
    _assert_no_induction_head(r, _prev_token_scores(model, tokens))
    phrase = (f"best head {float(r['induction_attention'].max()):.3f} against "
              f"{float(r['random_attention'].mean()):.3f} for a random earlier token")
    assert phrase in _section_prose(), phrase             # 0.034 against 0.014


@needs_v2_windows
def test_v1_has_no_induction_head_on_the_sections_text():
    model, held = zoo.load(V1), _section_windows()
    r = induction.real_text_induction(model, held, ngram=2)
    _assert_no_induction_head(r, _prev_token_scores(model, held))
    ind, rnd = r["induction_attention"], r["random_attention"]
    assert float(ind.min()) > float(rnd.mean())            # every head a little above it: 0.022-0.040 against 0.016
    # copyable tokens are a little easier even without induction heads: 4.59 against 4.90
    assert 0 < r["other_loss"] - r["copy_loss"] < 1


@needs_v2_windows
def test_the_earlier_occurrence_is_nearer_than_a_random_earlier_token():
    """Why every head attends a little more to s + 1 than to a random earlier token: s + 1 is closer."""
    held = _section_windows()
    prev = induction.earlier_occurrences(held, 2)
    b, t = torch.nonzero(prev >= 0, as_tuple=True)
    rand = (torch.rand(t.shape, generator=torch.Generator().manual_seed(0)) * t).long()  # as real_text_induction
    to_target, to_random = (t - prev[b, t] - 1).float().median(), (t - rand).float().median()
    assert to_target < 0.6 * to_random                     # "about half as far back": median 16 against 33 tokens


@pytest.fixture(scope="module")
def v2_section():
    """What the section computes on v2 (the deck's figures compute the same, once: ``figures.week02``)."""
    m = F.real_text_measurements()
    deltas = m["deltas"]
    return {"model": zoo.load(V2), "r": m["real"][V2], "r1": m["real"][V1], "top": m["top"],
            "top_delta": deltas["top-3 induction heads"],
            "random_deltas": [v for k, v in deltas.items() if k.startswith("random")],
            "prev": m["prev_scores"][V2], "prev1": m["prev_scores"][V1], "prev_head": m["prev_head"],
            "prev_delta": next(v for k, v in deltas.items() if k.startswith("previous-token head"))}


@needs_v2
def test_v2_has_induction_heads_in_its_last_layer_on_real_text(v2_section):
    s = v2_section
    ind, rnd = s["r"]["induction_attention"], s["r"]["random_attention"]
    last = s["model"].cfg.n_layers - 1
    assert all(layer == last for layer, _ in s["top"])     # 3.3, 3.1, 3.2
    top = torch.tensor([float(ind[l, h]) for l, h in s["top"]])
    assert float(top.min()) > 0.12                         # 3.3 0.247, 3.1 0.214, 3.2 0.210
    assert float(top.min()) > 6 * float(rnd.mean())        # random earlier token 0.015: about 15x
    rest = ind.clone()
    for l, h in s["top"]:
        rest[l, h] = 0
    assert float(rest.max()) < 0.08                        # the other 13 heads: at most 0.044 (v1's level)
    # copyable tokens are much easier for v2: 0.41 against 2.52 nats
    assert s["r"]["copy_loss"] < s["r"]["other_loss"] - 1.5 and s["r"]["n_copyable"] > 200  # 338


@needs_v2
def test_ablating_v2s_induction_heads_hurts_copyable_tokens_not_random_heads(v2_section):
    s = v2_section
    dc, do = s["top_delta"]
    assert dc > 0.5 and dc > 3 * do                        # copyable +1.32, others +0.32
    ros = [ro for _, ro in s["random_deltas"]]
    assert do < 0.5 and do < max(ros) + 0.1                # random heads cost the other tokens about as much
    for rc, ro in s["random_deltas"]:                      # copyable +0.01 / +0.06 / +0.12; others +0.10 / +0.14 / +0.34
        assert rc < 0.25 and dc > 4 * rc
        assert ro > -0.05


@needs_v2
def test_v2s_previous_token_head_is_in_layer_0_and_feeds_the_induction_heads(v2_section):
    s = v2_section
    (layer, _), score = s["prev_head"], float(s["prev"].max())
    assert layer == 0 and score > 0.3                      # 0.1: 0.45 (uniform attention over 128 tokens: 0.035)
    dc, do = s["prev_delta"]
    assert dc > 0.5 and dc > 2 * do                        # copyable +1.10, others +0.49
    assert dc > 0.6 * s["top_delta"][0]                    # almost as much as the three induction heads (+1.32)


# ---------------------------------------------------------------- what the notebook and the deck quote
NB = Path(__file__).parents[1] / "solutions" / "02_induction_heads" / "02_induction_heads.ipynb"
DECK = Path(__file__).parents[1] / "slides" / "02_induction_heads" / "slides.md"


def _flat(text: str) -> str:
    return " ".join(text.split())  # line breaks do not matter


def _section_prose() -> str:
    cells = json.loads(NB.read_text())["cells"]
    md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return _flat(md.split("## 13. Induction heads in the wild")[1])


def _quoted(s: dict) -> dict:
    """The numbers the section states, formatted as the prose writes them."""
    r, r1 = s["r"], s["r1"]
    ind, rnd, ind1, rnd1 = (r["induction_attention"], r["random_attention"], r1["induction_attention"],
                            r1["random_attention"])
    H = ind.shape[1]
    b1 = divmod(int(ind1.argmax()), H)
    top = [float(ind[l, h]) for l, h in s["top"]]
    rest = ind.clone()
    for l, h in s["top"]:
        rest[l, h] = 0
    (dc, do), (pc, po) = s["top_delta"], s["prev_delta"]
    rcs, ros = [d[0] for d in s["random_deltas"]], [d[1] for d in s["random_deltas"]]
    pl, ph = s["prev_head"]
    heads = [f"{l}.{h}" for l, h in s["top"]]
    return {
        "v1_range": f"between {float(ind1.min()):.2f} and {float(ind1.max()):.2f} of their attention",
        "v1_best": f"(best: {b1[0]}.{b1[1]}, {float(ind1.max()):.3f})",
        "v1_random": f"random baseline ({float(rnd1.mean()):.3f})",
        "v2_heads": f"{heads[0]}, {heads[1]} and {heads[2]} put {top[0]:.2f}, {top[1]:.2f} and {top[2]:.2f}",
        "v2_ratio": f"about {sum(top) / 3 / float(rnd.mean()):.0f}× the random baseline ({float(rnd.mean()):.3f})",
        "v2_rest": f"(≤ {float(rest.max()):.2f})",
        "v2_losses": f"copyable tokens is {r['copy_loss']:.2f} nats against {r['other_loss']:.2f}",
        "v1_losses": f"({r1['copy_loss']:.2f} against {r1['other_loss']:.2f};",
        "ablation": f"from {r['copy_loss']:.2f} to {r['copy_loss'] + dc:.2f} nats (**+{dc:.2f}**) and on every "
                    f"other token by only {do:.2f}",
        "random_copy": f"({min(rcs):+.2f} to {max(rcs):+.2f})",
        "random_other": f"({min(ros):+.2f} to {max(ros):+.2f})",
        "prev_head": f"**{pl}.{ph}** ({float(s['prev'].max()):.2f} on real text",
        "v1_prev": f"v1's best head anywhere scores {float(s['prev1'].max()):.2f}",
        "prev_ablation": f"Ablating {pl}.{ph} alone costs copyable tokens **+{pc:.2f}** nats",
        "prev_other": f"the other tokens +{po:.2f}",
        "icl": f"instead of 500: {zoo.card(V2).figures['icl_score']['value']:.2f})",
        "scores": f"is {zoo.card(V1).figures['induction_score']['value']:.3f} and v2's "
                  f"{zoo.card(V2).figures['induction_score']['value']:.2f}",
    }


@needs_v2
def test_the_sections_prose_quotes_what_the_model_shows(v2_section):
    prose = _section_prose()
    assert "‹" not in prose and "›" not in prose, "a snapshot placeholder is left in the prose"
    for key, phrase in _quoted(v2_section).items():
        assert phrase in prose, f"{key}: {phrase!r}"


@needs_v2
def test_the_deck_quotes_the_same_numbers(v2_section):
    deck = _flat(DECK.read_text())
    assert "‹" not in deck and "›" not in deck
    s, q = v2_section, _quoted(v2_section)
    (dc, do), (pc, po) = s["top_delta"], s["prev_delta"]
    for phrase in (f"| 3 induction heads | +{dc:.2f} | +{do:.2f} |",
                   f"alone | +{pc:.2f} | +{po:.2f} |",
                   f"| nothing (loss) | {s['r']['copy_loss']:.2f} | {s['r']['other_loss']:.2f} |",
                   ", ".join(f"{l}.{h}" for l, h in s["top"])):
        assert phrase in deck, phrase
    assert q["icl"].split(": ")[1].rstrip(")").replace("-", "−") in deck


def test_every_deck_figure_exists():
    import re

    names = re.findall(r"\(figure:([A-Za-z_]\w*)\)", DECK.read_text())
    assert {"real_text_induction", "real_text_ablation"} <= set(names)
    for name in names:
        assert callable(getattr(F, name, None)), name


@needs_v2
def test_the_decks_real_text_figures_draw_the_measurements(v2_section):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = F.real_text_induction()
    n_heads = v2_section["r"]["induction_attention"].numel()
    bars = [p.get_height() for p in fig.axes[1].patches]
    assert len(bars) == n_heads
    assert bars == pytest.approx(v2_section["r"]["induction_attention"].flatten().tolist())
    plt.close(fig)
    fig = F.real_text_ablation()
    assert len(fig.axes[0].collections) == 5                   # top-3, three random draws, the previous-token head
    plt.close(fig)
