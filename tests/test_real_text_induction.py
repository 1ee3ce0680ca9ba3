"""Induction on real text: where a token pair repeats, an induction head attends to what followed it."""

import torch

from mi_course import zoo
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import induction as I


def test_earlier_occurrences_finds_the_latest_previous_ngram():
    t = torch.tensor([[0, 5, 6, 7, 5, 6, 9, 5, 6, 7]])
    assert I.earlier_occurrences(t, 2).tolist() == [[-1, -1, -1, -1, -1, 2, -1, -1, 5, 3]]
    assert I.earlier_occurrences(t, 1).tolist() == [[-1, -1, -1, -1, 1, 2, -1, 4, 5, 3]]
    # "a a": the earlier occurrence right before t would point at t itself, so it does not count
    assert I.earlier_occurrences(torch.tensor([[3, 3, 3]]), 1).tolist() == [[-1, -1, 0]]


def test_attn_only_2l_induction_heads_attend_to_the_token_after_the_repeat():
    model = zoo.load("attn-only-2l")
    r = I.real_text_induction(model, repeated_random_tokens(8, 20, model.cfg.d_vocab, seed=0), ngram=2)
    ind, rnd = r["induction_attention"], r["random_attention"]
    assert ind.shape == rnd.shape == (2, model.cfg.n_heads)
    assert float(ind[1].max()) > 0.5 > 0.1 > float(rnd.max())  # layer 1 has the induction heads
    assert float(ind[0].max()) < 0.1
    assert r["copy_loss"] < r["other_loss"] - 2 and r["n_copyable"] > 100


def test_text_lm_v1_has_no_induction_head_on_real_text():
    """The reason for text-lm-v2: v1's best head attends to the induction target barely above chance."""
    from mi_course.zoo import text

    r = I.real_text_induction(zoo.load("text-lm"), text.windows("text-lm", "heldout", 32), ngram=2)
    assert float(r["induction_attention"].max()) < 0.1
    assert r["n_matches"] > 300


def test_ablating_the_induction_heads_hurts_copyable_tokens_most():
    from mi_course.methods import ablation

    model = zoo.load("attn-only-2l")
    tokens = repeated_random_tokens(8, 20, model.cfg.d_vocab, seed=1)
    copy, other = I.copy_losses(model(tokens), tokens)
    heads = [(1, h) for h in range(model.cfg.n_heads)]
    copy_ab, other_ab = I.copy_losses(ablation.ablate_heads(model, tokens, heads), tokens)
    assert copy["n"] == copy_ab["n"] > 100
    assert copy_ab["loss"] - copy["loss"] > 2 > abs(other_ab["loss"] - other["loss"])
