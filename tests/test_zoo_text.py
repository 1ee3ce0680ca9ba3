"""zoo.text: a text model's own corpus, tokenizer and windows."""

import pytest
import torch

from mi_course.errors import InputError
from mi_course.zoo import text


def test_text_lm_v1_reads_the_stdlib_corpus():
    assert text.corpus_of("text-lm") == "stdlib"
    held = text.windows("text-lm", "heldout", 4)
    assert held.shape == (4, 128) and bool((held[:, 0] == 0).all())
    assert torch.equal(held, text.windows("text-lm", "heldout", 4))  # fixed
    a, b = text.windows("text-lm", "train", 3, seed=1), text.windows("text-lm", "train", 3, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, text.windows("text-lm", "train", 3, seed=2))
    assert text.raw_tokenizer("text-lm").get_vocab_size() == 4096


def test_text_refuses_non_text_models_and_bad_splits():
    with pytest.raises(InputError, match="not a text model"):
        text.corpus_of("modadd-p113")
    with pytest.raises(InputError, match="split"):
        text.tokens("text-lm", "validation")
