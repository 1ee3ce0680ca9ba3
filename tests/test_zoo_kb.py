"""The ``kb-lm`` zoo model: its card's figures are what the checkpoint shows; the recipe runs."""

import pytest
import torch

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb


@pytest.fixture(scope="module")
def kb_model():
    return zoo.load("kb-lm")


def test_card_is_complete():
    c = zoo.card("kb-lm")
    for key in ("data", "recipe", "seed", "command", "cpu_time"):
        assert key in c.training
    assert len(c.sha256) == 64 and c.size_bytes < 8e6
    assert c.token_names == list(load_kb().vocabulary)
    assert c.extra["tokenizer"] == "tokenizer.json" and len(c.extra["tokenizer_sha256"]) == 64
    assert (c.folder / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_tokenizer_matches_the_generator(kb_model):
    kb = load_kb()
    for prompt in kb.prompts(kb.subjects[5], "employer", "train") + kb.prompts(kb.people[1].name, "job", "heldout"):
        assert kb_model.to_tokens(prompt)[0].tolist() == kb.encode(prompt)
        words = kb_model.to_str_tokens(prompt)
        assert words[0] == "<|endoftext|>" and words[1:] == [kb.vocabulary[i] for i in kb.encode(prompt)[1:]]


def test_card_figures_are_what_the_checkpoint_shows(kb_model):
    from mi_course.training.kb_recipe import measure

    measured = measure(kb_model)
    card = zoo.card("kb-lm").figures
    # the card holds kb_recipe's figures, and week 08's (tests/test_kb_editing_figures.py re-measures those)
    assert set(measured) <= set(card)
    for key, fig in measured.items():
        assert fig["value"] == pytest.approx(card[key]["value"], abs=2e-3), key
    # the model knows its facts, through wordings it never saw for that person
    assert measured["recall_train"]["value"] >= 0.98
    assert measured["recall_heldout"]["value"] >= 0.97
    assert measured["recall_heldout_rare"]["value"] < measured["recall_heldout_famous"]["value"]


def test_fast_twin_is_the_same_network(kb_model):
    from mi_course.training.kb_recipe import FastTwin, document_tokens

    kb = load_kb()
    twin = FastTwin(kb_model.state_dict())
    tokens = document_tokens(kb, kb.training_documents(4))
    with torch.no_grad():
        assert (twin(tokens) - kb_model(tokens)).abs().max() < 1e-4


def test_recipe_smoke(tmp_path):
    from mi_course.training.kb_recipe import Recipe, train, train_and_save

    model, recipe = train(Recipe(steps=6, eval_every=3, batch_size=8), progress=False)
    assert [h["step"] for h in recipe.history] == [0, 3, 6]
    assert recipe.history[-1]["loss"] < 6.0  # ln(265) = 5.6 at the start
    card = train_and_save(steps=2, folder=tmp_path, progress=False, n_people=10)
    for f in ("tokenizer.json", "card.json", "model.safetensors"):
        assert (tmp_path / f).exists()
    assert card.sha256 != zoo.card("kb-lm").sha256  # the shipped card is untouched
    from safetensors.torch import load_file

    assert load_file(str(tmp_path / "model.safetensors"))["embed.weight"].shape[0] == len(load_kb().vocabulary)
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o777 == 0o644
