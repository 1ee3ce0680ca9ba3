"""text-lm: the shipped model, its tokenizer and tuned lens, its card's figures, and its recipe."""

import copy

import pytest
import torch

from mi_course import zoo
from mi_course.data import stdlib_corpus as sc
from mi_course.errors import CheckpointError
from mi_course.training import textlm_recipe as R

HAVE_MODEL = "text-lm" in zoo.names()
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="text-lm checkpoint not in this checkout")


@pytest.fixture(scope="module")
def text_model():
    return zoo.load("text-lm")


@needs_model
def test_loads_with_tokenizer(text_model):
    m = text_model
    assert not m.training and m.cfg.n_layers == 4 and m.cfg.d_vocab == R.VOCAB
    s = "def __init__(self, x):\n    self.x = x"
    toks = m.to_tokens(s)
    assert toks[0, 0] == 0  # <|endoftext|> as beginning of sequence
    assert "".join(m.to_str_tokens(s)[1:]) == s
    c = zoo.card("text-lm")
    assert c.size_bytes < 20e6 and c.extra["tokenizer"] == "tokenizer.json"


@pytest.mark.slow  # re-measures the card's figures (~100 s on a loaded 2-core machine)
@needs_model
def test_card_figures_are_what_the_checkpoint_shows(text_model):
    card = zoo.card("text-lm")
    if card.extra["corpus"]["sha256"] != sc.corpus_info().sha256:
        pytest.skip(f"this interpreter's stdlib (Python {sc.corpus_info().python_version}) is not the corpus the card "
                    f"was measured on (Python {card.extra['corpus']['python_version']})")
    from mi_course.methods.logit_lens import load_tuned_lens

    measured = R.measure(text_model, tuned_lens=load_tuned_lens(text_model))
    for key, fig in measured.items():
        assert fig["value"] == pytest.approx(card.figures[key]["value"], abs=2e-3), key
    f = {k: v["value"] for k, v in measured.items()}
    assert f["heldout_loss"] < f["bigram_loss"] < f["unigram_loss"]
    assert f["logit_lens_agreement_L3"] == 1.0
    # the tuned lens is at least as good as the logit lens before the last block
    assert f["tuned_lens_loss_L0"] < f["logit_lens_loss_L0"]


@needs_model
def test_changed_tokenizer_is_refused():
    card = copy.deepcopy(zoo.card("text-lm"))
    card.extra["tokenizer_sha256"] = "0" * 64
    from mi_course.zoo.tokenizer_files import tokenizer_for

    with pytest.raises(CheckpointError, match="sha256"):
        tokenizer_for(card)


@pytest.mark.slow
def test_recipe_smoke(tmp_path):
    card = R.train_and_save(steps=3, folder=tmp_path, progress=False)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer.json").exists()
    assert (tmp_path / "tuned_lens.safetensors").exists()
    assert card.training["steps"] == 3 and "heldout_loss" in card.figures
    assert card.figures["unigram_loss"]["value"] > card.figures["bigram_loss"]["value"]
    assert card.extra["corpus"]["python_version"] == sc.corpus_info().python_version
    # the tokenizer written beside the model loads through the zoo's tokenizer helper
    from mi_course.zoo.tokenizer_files import load_tokenizer_file

    tok = load_tokenizer_file(tmp_path / "tokenizer.json")
    assert tok("import os").input_ids[0] == 0


def test_lr_schedule():
    r = R.Recipe(steps=100, warmup=10, lr=1.0, min_lr_frac=0.1)
    assert r.lr_at(0) == pytest.approx(0.1) and r.lr_at(9) == pytest.approx(1.0)
    assert r.lr_at(99) == pytest.approx(0.1, abs=1e-3)


def test_ngram_baselines_on_a_toy_stream():
    train = torch.tensor([1, 2, 1, 2, 1, 2, 1, 2])
    held = torch.tensor([[1, 2, 1, 2]])
    base = R.ngram_baselines(train, held, vocab=4, alpha=0.01)
    assert base["bigram"] < 0.05 < base["unigram"]
