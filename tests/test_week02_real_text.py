"""Week 02's section on induction heads in real Python code (drafts/02_induction_heads/02_real_text_section.ipynb):
the claims its prose makes about text-lm (v1) and text-lm-v2, measured the way the section measures them.

The v2 tests skip until v2 ships (while its card says SNAPSHOT); set MI_COURSE_ALLOW_SNAPSHOT=1 to run them on
a snapshot. The values in the comments were measured on the snapshot at step 1750 of 3700 (16 held-out windows
cut to 128 tokens); when v2 replaces text-lm, V1 becomes v1's new zoo name and V2 "text-lm".
"""

import os

import pytest
import torch

from mi_course import zoo
from mi_course.methods import ablation, induction
from mi_course.zoo import hooks, text

V1, V2 = "text-lm", "text-lm-v2"
N_WINDOWS, N_TOP, N_RANDOM_DRAWS = 16, 3, 3


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
    """What the section computes on v2: real-text induction, the ablations, the previous-token head."""
    model, held = zoo.load(V2), _section_windows()
    r = induction.real_text_induction(model, held, ngram=2)
    H = model.cfg.n_heads
    order = [divmod(int(i), H) for i in r["induction_attention"].flatten().argsort(descending=True)]
    top, others = order[:N_TOP], order[N_TOP:]
    g = torch.Generator().manual_seed(0)
    randoms = [[others[i] for i in torch.randperm(len(others), generator=g)[:N_TOP]] for _ in range(N_RANDOM_DRAWS)]
    base = (r["copy_loss"], r["other_loss"])

    def deltas(heads):
        copy, other = induction.copy_losses(ablation.ablate_heads(model, held, heads), held, ngram=2)
        return copy["loss"] - base[0], other["loss"] - base[1]

    prev = _prev_token_scores(model, held)
    prev_head = divmod(int(prev.argmax()), H)
    return {"model": model, "r": r, "top": top, "top_delta": deltas(top),
            "random_deltas": [deltas(h) for h in randoms], "prev": prev, "prev_head": prev_head,
            "prev_delta": deltas([prev_head])}


@needs_v2
def test_v2_has_induction_heads_in_its_last_layer_on_real_text(v2_section):
    s = v2_section
    ind, rnd = s["r"]["induction_attention"], s["r"]["random_attention"]
    last = s["model"].cfg.n_layers - 1
    assert all(layer == last for layer, _ in s["top"])     # 3.3, 3.2, 3.1
    top = torch.tensor([float(ind[l, h]) for l, h in s["top"]])
    assert float(top.min()) > 0.12                         # 0.263, 0.210, 0.208
    assert float(top.min()) > 6 * float(rnd.mean())        # random earlier token 0.015: about 15x
    rest = ind.clone()
    for l, h in s["top"]:
        rest[l, h] = 0
    assert float(rest.max()) < 0.08                        # the other 13 heads: at most 0.046 (v1's level)
    # copyable tokens are much easier for v2: 0.80 against 2.87 nats
    assert s["r"]["copy_loss"] < s["r"]["other_loss"] - 1.5 and s["r"]["n_copyable"] > 200  # 338


@needs_v2
def test_ablating_v2s_induction_heads_hurts_copyable_tokens_not_random_heads(v2_section):
    s = v2_section
    dc, do = s["top_delta"]
    assert dc > 0.5 and dc > 3 * do                        # copyable +1.06, others +0.17
    assert do < 0.3
    for rc, ro in s["random_deltas"]:                      # copyable +0.02 / +0.08 / +0.07; others +0.09 / +0.18 / +0.12
        assert rc < 0.25 and dc > 4 * rc
        assert ro > -0.05                                  # random heads cost the other tokens about as much


@needs_v2
def test_v2s_previous_token_head_is_in_layer_0_and_feeds_the_induction_heads(v2_section):
    s = v2_section
    (layer, _), score = s["prev_head"], float(s["prev"].max())
    assert layer == 0 and score > 0.3                      # 0.1: 0.41 (uniform attention over 128 tokens: 0.035)
    dc, do = s["prev_delta"]
    assert dc > 0.5 and dc > 2 * do                        # copyable +0.88, others +0.31
    assert dc > 0.6 * s["top_delta"][0]                    # almost as much as the three induction heads (+1.06)
