"""The shipped ``modadd-p113`` model and its checkpoints: loading, sha256 checks, card figures."""

import math
import shutil

import pytest
import torch

from mi_course import zoo
from mi_course.data.modadd import all_pairs, dataset
from mi_course.errors import CheckpointError, InputError
from mi_course.methods import grokking
from mi_course.training import modadd_recipe as R


@pytest.fixture(scope="module")
def model():
    return zoo.load(R.NAME)


@pytest.fixture(scope="module")
def ckpts():
    return R.load_checkpoints()


def test_loads_as_a_bridge_with_the_papers_architecture(model):
    cfg = model.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp) == (1, 128, 4, 32, 512)
    assert (cfg.d_vocab, cfg.d_vocab_out, cfg.n_ctx) == (114, 113, 3)
    assert cfg.act_fn == "relu" and cfg.normalization_type is None and not cfg.attn_only
    assert model(all_pairs()[:4]).shape == (4, 3, 113)


def test_plain_trainer_and_bridge_agree(model, ckpts):
    last = ckpts.epochs[-1]
    tokens = all_pairs()[::7]
    module = R.ModAddTransformer()
    module.load_bridge_state_dict(model.state_dict())
    with torch.no_grad():
        gap = (model(tokens)[:, -1] - module(tokens)).abs().max()
    assert gap < 1e-4
    # the last checkpoint is the final model, rounded to fp16
    with torch.no_grad():
        assert (ckpts.module(last)(tokens) - module(tokens)).abs().max() < 0.05


def test_checkpoints_cover_training_and_are_small(ckpts):
    card = zoo.card(R.NAME)
    info = card.extra["checkpoints"]
    assert info["size_bytes"] <= 16e6 and card.size_bytes < 2e6
    assert ckpts.epochs == info["epochs"] and ckpts.epochs[0] == 0
    assert len(ckpts.epochs) >= 15
    assert ckpts.epochs[-1] == card.figures["epochs_trained"]["value"]
    assert ckpts.history.shape[1] == len(R.HISTORY_COLUMNS)


def test_corrupted_checkpoints_are_refused(tmp_path):
    bad = tmp_path / "checkpoints.safetensors"
    shutil.copy(zoo.card(R.NAME).folder / R.CHECKPOINTS_FILE, bad)
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        R.load_checkpoints(bad)
    with pytest.raises(CheckpointError, match="missing"):
        R.load_checkpoints(tmp_path / "nope.safetensors")


def test_unknown_epoch_and_column(ckpts):
    with pytest.raises(InputError, match="saved epochs"):
        ckpts.state(7)
    with pytest.raises(InputError, match="columns"):
        ckpts.column("val_loss")


def test_card_figures_are_what_the_checkpoint_shows(model, ckpts):
    measured = R.measure(model, ckpts)
    card = zoo.card(R.NAME).figures
    for key, fig in measured.items():
        want = card[key]["value"]
        if isinstance(want, float):
            assert fig["value"] == pytest.approx(want, rel=0.02, abs=1e-3), key
        else:
            assert fig["value"] == want, key


def test_it_grokked_with_the_papers_structure():
    """Robust criteria (structure, not the paper's frequency IDs)."""
    f = zoo.card(R.NAME).figures
    assert f["memorised_epoch"]["value"] < f["grok_epoch"]["value"]
    assert f["test_loss_peak"]["value"] > math.log(113)  # memorisation: worse than chance on test
    assert f["test_acc"]["value"] >= 0.99 and f["train_acc"]["value"] == 1.0
    assert 3 <= f["n_key_frequencies"]["value"] <= 7
    assert f["embed_key_fraction"]["value"] >= 0.6
    assert f["neurons_single_frequency"]["value"] >= 256
    assert f["logit_cos_fraction"]["value"] >= 0.5
    assert f["restricted_loss"]["value"] < 0.1
    assert f["excluded_loss"]["value"] > math.log(113)


@pytest.mark.slow  # > 15 s: a training loop, a kernel or a corpus pass
def test_progress_measures_show_the_phases(ckpts):
    freqs = zoo.card(R.NAME).figures["key_frequencies"]["value"]
    is_train = dataset().is_train
    pm = grokking.progress_measures(ckpts, freqs, is_train, progress=False)
    grok = zoo.card(R.NAME).figures["grok_epoch"]["value"]
    i_grok = max(i for i, e in enumerate(pm["epoch"]) if e <= grok)
    # weight norm falls from its memorisation peak to the end
    assert pm["sum_sq_weights"][-1] < 0.8 * max(pm["sum_sq_weights"])
    # restricted loss ends far below excluded loss
    assert pm["restricted_loss"][-1] < 0.01 * pm["excluded_loss"][-1]
    # excluded loss rises during circuit formation while the train loss stays low
    assert pm["excluded_loss"][i_grok] > 10 * pm["train_loss"][i_grok]


@pytest.mark.slow  # > 15 s: a training loop, a kernel or a corpus pass
def test_recipe_smoke(tmp_path):
    """A few epochs of the real recipe write loadable files with the card's structure."""
    card = R.train_and_save(steps=20, folder=tmp_path, progress=False)
    assert card.sha256 != zoo.card(R.NAME).sha256  # the shipped card is untouched
    assert (tmp_path / "model.safetensors").stat().st_size == card.size_bytes
    ck = R.load_checkpoints(tmp_path / R.CHECKPOINTS_FILE, verify=False)
    assert ck.epochs == [0, 10, 20]
    assert card.figures["epochs_trained"]["value"] == 20
