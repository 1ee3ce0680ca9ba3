"""The ``ioi-lm`` zoo model: its card's figures are what the checkpoint shows, and it has a circuit."""

import pytest
import torch

from mi_course import zoo
from mi_course.data import ioi


@pytest.fixture(scope="module")
def ioi_model():
    return zoo.load("ioi-lm")


def test_card_is_complete_and_small():
    c = zoo.card("ioi-lm")
    for key in ("data", "recipe", "seed", "command", "cpu_time"):
        assert key in c.training
    assert c.size_bytes < 3e6 and len(c.sha256) == 64
    assert c.token_names == list(ioi.vocabulary())
    assert "held_out_logit_diff" in c.render() and "Wang et al. 2023" in c.render()


def test_shipped_tokenizer_is_the_generators():
    from tokenizers import Tokenizer

    shipped = Tokenizer.from_file(str(zoo.card("ioi-lm").folder / "tokenizer.json"))
    assert shipped.get_vocab() == ioi.tokenizer().get_vocab()
    text = ioi.make_ioi(1, seed=4, templates="held_out").prompts[0]
    assert shipped.encode(text).ids == ioi.tokenizer().encode(text).ids


def test_card_figures_are_what_the_checkpoint_shows(ioi_model):
    from mi_course.training.ioi_recipe import measure

    measured = measure(ioi_model)
    card = zoo.card("ioi-lm").figures
    for key, fig in measured.items():
        assert fig["value"] == pytest.approx(card[key]["value"], abs=2e-3), key
    # it solves templates it never saw
    assert measured["held_out_logit_diff"]["value"] > 2.0
    assert measured["held_out_io_beats_s"]["value"] > 0.9


def test_abc_corruption_removes_the_preference(ioi_model):
    from mi_course.methods.metrics import ioi_metric

    ds = ioi.make_ioi(32, seed=11, templates=0)
    metric = ioi_metric(ds)
    with torch.no_grad():
        clean, corrupted = float(metric(ioi_model(ds.tokens))), float(metric(ioi_model(ds.abc().tokens)))
    assert clean > 2.0 and abs(corrupted) < 0.5 * clean


def test_recipe_smoke(tmp_path):
    from mi_course.training.ioi_recipe import Recipe, train, train_and_save

    model, recipe = train(Recipe(steps=20, eval_every=10, batch_size=16), progress=False)
    assert [h["step"] for h in recipe.history] == [0, 10, 20]
    assert recipe.history[-1]["loss"] < 9.5  # 2 x ln(130) = 9.7 at the start (next word + answer)
    card = train_and_save(steps=5, folder=tmp_path, progress=False)
    assert (tmp_path / "tokenizer.json").exists() and (tmp_path / "card.json").exists()
    assert card.sha256 != zoo.card("ioi-lm").sha256  # the shipped card is untouched


def test_a_circuit_is_findable(ioi_model):
    """The notebook's story, re-measured: DLA adds up, AtP tracks patching on heads, and the EAP
    circuit (top 40 edges) is faithful under mean ablation of the other heads."""
    from mi_course.methods import activation_patching as ap
    from mi_course.methods import attribution_patching as atp
    from mi_course.methods import circuit_discovery as cd
    from mi_course.methods import ioi_circuit, logit_attribution as la, metrics
    from mi_course.methods.circuit_evaluation import CircuitEvaluator

    ds = ioi.make_ioi(24, seed=0, templates=0)
    abc = ds.abc(seed=1)
    metric = metrics.ioi_metric(ds)
    with torch.no_grad():
        clean = float(metric(ioi_model(ds.tokens)))
    shares, labels = la.dla_by_component(ioi_model, ds.tokens, ds.io, ds.s, ds.end)
    assert float(shares.sum()) == pytest.approx(clean, abs=1e-3)
    sig = ioi_circuit.attention_signatures(ioi_model, ds)
    assert sig["end_to_s2"][1].max() > 0.8 and sig["end_to_io"][2].max() > 0.5  # S-attending (the S-inhibition signature), name-mover-like
    act = ap.activation_patching(ioi_model, ds.tokens, abc.tokens, metric, "z", progress=False)
    att = atp.attribution_patching(ioi_model, ds.tokens, abc.tokens, metric, "z")
    assert torch.corrcoef(torch.stack([act.flatten(), att.flatten()]))[0, 1] > 0.9
    circuit = cd.prune(cd.edge_attribution_patching(ioi_model, ds.tokens, abc.tokens, metric), top_k=40)
    assert 4 <= len(circuit.heads) <= 10
    f = CircuitEvaluator(ioi_model, ds.tokens, abc.tokens, metric).faithfulness(circuit.heads)
    assert f["ratio"] > 0.8 and abs(f["F(empty)"]) < 1.0
