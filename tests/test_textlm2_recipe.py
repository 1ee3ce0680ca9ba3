"""text-lm-v2's recipe: a few steps run, stop, resume, and end exactly where an uninterrupted run ends."""

import pytest
import torch

from mi_course.errors import InputError
from mi_course.training import RECIPES
from mi_course.training import textlm2_recipe as R2

TINY = dict(R2.CONFIG, n_layers=1, d_model=32, n_heads=2, d_head=16, d_mlp=64, d_vocab=64)


def _ids(n, seed):
    g = torch.Generator().manual_seed(seed)
    # a little structure (repeats) so the loss can fall
    base = torch.randint(1, 64, (n // 4,), generator=g)
    return base.repeat(4)


def _run(run_dir, stop_after=None, steps=6):
    recipe = R2.Recipe(steps=steps, batch_size=4, n_ctx=32, warmup=2, eval_every=3, save_every=2)
    return R2.train(recipe, run_dir, "cpu", _ids(4000, 0), _ids(800, 1), config=TINY,
                    stop_after=stop_after, progress=False)


def test_resume_equals_uninterrupted(tmp_path):
    full, rec_full, done = _run(tmp_path / "a")
    assert done and [h["step"] for h in rec_full.history] == [3, 6]
    part, _, done = _run(tmp_path / "b", stop_after=4)
    assert not done and torch.load(tmp_path / "b" / R2.STATE_FILE, weights_only=False)["step"] == 4
    resumed, rec_res, done = _run(tmp_path / "b")
    assert done
    for (k, v), (k2, v2) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in rec_full.history] == \
           [{k: v for k, v in h.items() if k != "seconds"} for h in rec_res.history]
    # a run folder written by another recipe is refused, not silently mixed
    with pytest.raises(InputError, match="different recipe"):
        _run(tmp_path / "b", steps=8)


def test_icl_score_and_measure(tmp_path):
    losses = torch.tensor([[3.0] * 51 + [2.0] * 50, [3.0] * 51 + [1.0] * 50])
    assert R2.icl_score(losses) == pytest.approx(-1.5)
    with pytest.raises(InputError):
        R2.icl_score(torch.zeros(2, 10))
    model, _, _ = _run(tmp_path / "c", steps=2)
    figs = R2.measure(model, _ids(2000, 1), _ids(4000, 0), n_windows=8)
    assert {"heldout_loss", "unigram_loss", "bigram_loss", "icl_score", "induction_score"} <= set(figs)
    assert 0 <= figs["induction_score"]["value"] <= 1
    assert "text-lm-v2" in RECIPES and RECIPES["text-lm"].endswith("textlm_recipe")


def test_every_recipe_entry_resolves_and_takes_its_arguments():
    """``mi-course train NAME`` for every name: the module imports and its train_and_save takes the entry's
    keyword arguments and the CLI's (seed, folder, steps)."""
    import inspect

    from mi_course.training import recipe

    for name in RECIPES:
        mod, kwargs = recipe(name)
        params = inspect.signature(mod.train_and_save).parameters
        assert set(kwargs) | {"seed", "folder", "steps"} <= set(params), name
        if "name" in kwargs:
            assert kwargs["name"] == name
    with pytest.raises(KeyError):
        recipe("no-such-model")


def test_config_is_the_measured_point():
    c = R2.CONFIG
    assert (c["n_layers"], c["d_model"], c["n_ctx"], c["d_vocab"]) == (4, 256, 256, 4096)
    r = R2.Recipe()
    assert 28e6 < r.steps * r.batch_size * r.n_ctx < 33e6


@pytest.mark.slow
def test_train_and_save_smoke(tmp_path):
    """The whole path a long run ends with: corpus, tokens (cached), training, figures, card, files."""
    card = R2.train_and_save(steps=2, folder=tmp_path / "out", progress=False, run_dir=tmp_path / "run", max_files=12,
                               batch_size=4, n_card_windows=8)
    assert (tmp_path / "out" / "model.safetensors").exists() and (tmp_path / "out" / "tokenizer.json").exists()
    assert (tmp_path / "run" / "tokens.pt").exists() and (tmp_path / "run" / R2.STATE_FILE).exists()
    assert card.config["d_model"] == 256 and card.training["steps"] == 2
    assert card.training["init"].startswith("zoo:") and "--init" not in card.training["command"]
    assert {"heldout_loss", "bigram_loss", "icl_score", "induction_score"} <= set(card.figures)
    assert card.extra["corpus"]["packages"]["torch"] and card.extra["corpus"]["tokens_train"] > 0
    # running it again resumes at the end: nothing retrained, the same checkpoint
    again = R2.train_and_save(steps=2, folder=tmp_path / "out2", progress=False, run_dir=tmp_path / "run", max_files=12,
                                 batch_size=4, n_card_windows=8)
    assert again.sha256 == card.sha256


def test_snapshot_writes_a_loadable_zoo_folder_of_the_current_step(tmp_path):
    from mi_course.zoo.cards import ModelCard

    _run(tmp_path / "run", stop_after=4)
    card = R2.snapshot(tmp_path / "snap", tmp_path / "run", train_ids=_ids(4000, 0), heldout_ids=_ids(800, 1),
                       progress=False)
    assert card.summary.startswith("SNAPSHOT at step 4 of 6") and card.training["steps_done"] == 4
    loaded = ModelCard.load(tmp_path / "snap" / "card.json")
    assert loaded.sha256 and (tmp_path / "snap" / loaded.extra["tokenizer"]).exists()
    with pytest.raises(InputError, match="no training state"):
        R2.snapshot(tmp_path / "x", tmp_path / "empty")


def test_snapshot_ships_a_heldout_sample_that_zoo_text_reads(tmp_path, monkeypatch):
    import importlib

    from mi_course.zoo import text

    cards = importlib.import_module("mi_course.zoo.cards")  # the module (zoo.cards is also a function)

    _run(tmp_path / "run", stop_after=2)
    held = _ids(20000, 1)
    R2.snapshot(tmp_path / "models" / R2.NAME, tmp_path / "run", train_ids=_ids(4000, 0), heldout_ids=held,
                progress=False)
    monkeypatch.setattr(cards, "MODELS_DIR", tmp_path / "models")
    import mi_course.zoo as zoo_pkg

    monkeypatch.setattr(zoo_pkg, "MODELS_DIR", tmp_path / "models")
    sample = text.heldout_sample(R2.NAME)
    assert sample.shape == (R2.HELDOUT_SAMPLE_WINDOWS, 32) and bool((sample[:, 0] == 0).all())
    w = text.windows(R2.NAME, "heldout", 8)
    assert w.shape == (8, 32) and torch.equal(w[0], sample[0]) and torch.equal(w[-1], sample[-1])


def test_the_block3_pipeline_plans_from_what_is_shipped(monkeypatch):
    """benchmarks/text_lm_v2_pipeline.py: everything while the model is not shipped; after that only
    what is missing or was made from another checkpoint, and the benchmarks reading a retrained SAE."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "text_lm_v2_pipeline", Path(__file__).parents[1] / "benchmarks" / "text_lm_v2_pipeline.py")
    P = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(P)
    every = ["model", P.SAE, *P.TRANSCODERS, *(b[0] for b in P.BENCHMARKS)]
    monkeypatch.setattr(P, "_model_done", lambda: False)
    assert P.plan() == every
    monkeypatch.setattr(P, "_model_done", lambda: True)
    monkeypatch.setattr(P, "_trained_on_this_model", lambda name: name != P.SAE)
    monkeypatch.setattr(P, "_benchmark_done", lambda step, topic: True)
    assert P.plan() == [P.SAE, "dashboards", "steering_circuits"]
    monkeypatch.setattr(P, "_trained_on_this_model", lambda name: True)
    assert P.plan() == [] and P.plan(("feature_splitting",)) == ["feature_splitting"]


def test_a_run_moves_to_a_machine_without_transformer_lens(tmp_path, monkeypatch):
    """Start a run here (``stop_after=0``: the zoo's seeded initial weights, step 0), train it elsewhere from a
    token file with torch alone (``train_gpt``), and it ends exactly where an uninterrupted run ends."""
    import sys

    full, rec_full, _ = _run(tmp_path / "a")
    _run(tmp_path / "b", stop_after=0)
    assert torch.load(tmp_path / "b" / R2.STATE_FILE, weights_only=False)["step"] == 0
    tokens = tmp_path / "tokens.pt"
    torch.save({"train": _ids(4000, 0).to(torch.int16), "heldout": _ids(800, 1).to(torch.int16)}, tokens)
    train_ids, held_ids = R2.load_token_file(tokens)
    monkeypatch.setitem(sys.modules, "transformer_lens", None)  # any import of it now fails
    recipe = R2.Recipe(steps=6, batch_size=4, n_ctx=32, warmup=2, eval_every=3, save_every=2)
    gpt, rec, done = R2.train_gpt(recipe, tmp_path / "b", "cpu", train_ids, held_ids, config=TINY, progress=False)
    monkeypatch.undo()
    assert done and rec.devices == ["cpu"]
    for k, v in full.state_dict().items():
        if k in gpt.state_dict():
            assert torch.equal(v, gpt.state_dict()[k]), k
    assert [h["heldout_loss"] for h in rec.history] == [h["heldout_loss"] for h in rec_full.history]
    # the history watches induction heads form (the card's probe, on the training-time model)
    assert all(0 <= h["induction"] <= 1 for h in rec.history)
    assert torch.load(tmp_path / "b" / R2.STATE_FILE, weights_only=False)["devices"] == ["cpu"]


def test_token_files_and_cli_arguments_are_checked(tmp_path):
    with pytest.raises(InputError, match="not found"):
        R2.load_token_file(tmp_path / "missing.pt")
    torch.save({"train": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="not a token file"):
        R2.load_token_file(tmp_path / "bad.pt")
    with pytest.raises(SystemExit):  # finishing needs this machine's corpus: --tokens only trains
        R2.main(["--tokens", str(tmp_path / "bad.pt")])
    assert R2.make_recipe(10).warmup == 1 and R2.make_recipe().steps == R2.Recipe().steps


def test_initialisations_to_test_the_induction_gap(tmp_path, monkeypatch):
    """``--init``: the zoo's weights (the shipped run), GPT-2's scheme or PyTorch's defaults, seeded; runs saved
    before the option existed still resume (their key has no ``init``); each init gets its own run folder."""
    cfg = dict(TINY, n_layers=2)
    std = {}
    for init in R2.INITS:
        a = R2.initial_gpt(cfg, R2.Recipe(init=init, seed=3))
        b = R2.initial_gpt(cfg, R2.Recipe(init=init, seed=3))
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items()), init  # seeded
        std[init] = {k: float(v.std()) for k, v in a.state_dict().items() if v.ndim == 2}
    assert std["gpt2"]["blocks.0.attn.q.weight"] == pytest.approx(0.02, rel=0.15)
    assert std["gpt2"]["blocks.1.mlp.out.weight"] == pytest.approx(0.02 / 2, rel=0.15)  # 0.02 / sqrt(2 n_layers)
    assert std["torch"]["embed.weight"] == pytest.approx(1.0, rel=0.15)
    assert std["zoo"]["embed.weight"] == pytest.approx(0.8 / cfg["d_model"] ** 0.5, rel=0.15)
    gpt2 = R2.initial_gpt(cfg, R2.Recipe(init="gpt2"))
    assert not gpt2.blocks[0].attn.q.bias.any() and torch.equal(gpt2.blocks[0].ln1.weight, torch.ones(32))
    with pytest.raises(InputError, match="init='xavier'"):
        R2.make_recipe(init="xavier")
    assert "init" not in R2.Recipe().key() and R2.Recipe(init="gpt2").key()["init"] == "gpt2"
    monkeypatch.setenv("MI_COURSE_CACHE", str(tmp_path))
    assert R2.default_run_dir(0).name == "text-lm-v2-seed0"
    assert R2.default_run_dir(1, 7000, "gpt2").name == "text-lm-v2-seed1-steps7000-init-gpt2"
    assert R2.default_run_dir(0, R2.Recipe.steps).name == "text-lm-v2-seed0"
    # a gpt2-init run starts without transformer-lens (a GPU machine with a token file), and resumes exactly
    import sys

    recipe = lambda: R2.Recipe(steps=4, batch_size=4, n_ctx=32, warmup=2, eval_every=2, save_every=2, init="gpt2")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "transformer_lens", None)  # any import of it now fails
        full, _, _ = R2.train_gpt(recipe(), tmp_path / "a", "cpu", _ids(4000, 0), _ids(800, 1), config=TINY,
                                  progress=False)
    R2.train_gpt(recipe(), tmp_path / "b", "cpu", _ids(4000, 0), _ids(800, 1), config=TINY, progress=False, stop_after=2)
    res, rec, done = R2.train_gpt(recipe(), tmp_path / "b", "cpu", _ids(4000, 0), _ids(800, 1), config=TINY,
                                  progress=False)
    assert done and all(torch.equal(v, res.state_dict()[k]) for k, v in full.state_dict().items())
    with pytest.raises(InputError, match="different recipe"):  # a zoo-init recipe does not pick up a gpt2 run
        R2.train_gpt(R2.Recipe(steps=4, batch_size=4, n_ctx=32, warmup=2), tmp_path / "b", "cpu", _ids(4000, 0),
                     _ids(800, 1), config=TINY, progress=False)


def test_a_new_run_reuses_another_runs_token_cache(tmp_path, monkeypatch):
    """A new seed or init finds the corpus already tokenized in a sibling run folder (linked, not redone)."""
    monkeypatch.setattr(R2.pc, "corpus_info", lambda: {"sha256": "abc"})
    monkeypatch.setattr(R2, "_tok_sha", lambda tok: "tok")
    calls = []

    def tokenize(tok, split, max_files=None, progress=False):
        calls.append(split)
        return torch.arange(10) if split == "train" else torch.arange(4)

    monkeypatch.setattr(R2.pc, "tokenize_split", tokenize)
    train, held, _ = R2.corpus_tokens(None, tmp_path / "runs" / "a")
    assert calls == ["train", "heldout"]
    train2, held2, _ = R2.corpus_tokens(None, tmp_path / "runs" / "b")
    assert calls == ["train", "heldout"] and torch.equal(train, train2) and torch.equal(held, held2)
    assert (tmp_path / "runs" / "b" / "tokens.pt").is_symlink()
    monkeypatch.setattr(R2.pc, "corpus_info", lambda: {"sha256": "another corpus"})
    R2.corpus_tokens(None, tmp_path / "runs" / "c")  # a different corpus is tokenized again
    assert calls == ["train", "heldout"] * 2
