"""Logit lens and tuned lens on a tiny model: exact at the last layer, tuned lens beats logit lens."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import logit_lens as ll

TINY = dict(n_layers=3, d_model=32, n_heads=2, d_head=16, d_mlp=64, n_ctx=32, d_vocab=50,
            act_fn="gelu", normalization_type="LN", positional_embedding_type="standard")


@pytest.fixture(scope="module")
def tiny():
    return zoo.build(TINY, seed=0).eval()


@pytest.fixture(scope="module")
def toks():
    return torch.randint(0, 50, (8, 20), generator=torch.Generator().manual_seed(0))


def test_last_layer_lens_is_the_model(tiny, toks):
    lens = ll.logit_lens(tiny, toks)
    assert lens.shape == (3, 8, 20, 50)
    assert torch.allclose(lens[-1], tiny(toks), atol=1e-4)
    agree = ll.lens_agreement(tiny, toks)
    assert agree.shape == (3,) and agree[-1] == 1.0


def test_tuned_lens_starts_as_logit_lens_and_improves(tiny, toks):
    resid, logits = ll.residual_stack(tiny, toks)
    lens0 = ll.TunedLens(3, 32)
    assert torch.allclose(lens0(tiny, resid), ll.unembed(tiny, resid))
    lens, losses = ll.train_tuned_lens(tiny, toks, steps=60, lr=1e-2, batch_positions=64, progress=False)
    rep = ll.lens_report(tiny, toks, lens)
    assert rep["tuned_kl"][:2].sum() < rep["logit_kl"][:2].sum()
    assert losses[-1] < losses[0]
    assert all(p.requires_grad for p in tiny.parameters())  # the model is left as it was


def test_tuned_lens_save_load(tmp_path, tiny, toks):
    lens, _ = ll.train_tuned_lens(tiny, toks, steps=5, progress=False)
    lens.save(tmp_path / "t.safetensors")
    again = ll.TunedLens.load(tmp_path / "t.safetensors", 3, 32)
    resid, _ = ll.residual_stack(tiny, toks)
    assert torch.allclose(lens(tiny, resid), again(tiny, resid))


def test_per_layer_loss_matches_cross_entropy(tiny, toks):
    lens = ll.logit_lens(tiny, toks)
    loss = ll.per_layer_loss(lens, toks)
    ref = torch.nn.functional.cross_entropy(tiny(toks)[:, :-1].reshape(-1, 50), toks[:, 1:].reshape(-1))
    assert loss[-1] == pytest.approx(float(ref), abs=1e-4)


def test_bad_inputs_are_clear(tiny):
    with pytest.raises(InputError, match="batch, pos"):
        ll.logit_lens(tiny, torch.zeros(5, dtype=torch.long))
    with pytest.raises(InputError, match="token ids"):
        ll.logit_lens(tiny, torch.full((1, 4), 99))
    with pytest.raises(InputError, match="context"):
        ll.logit_lens(tiny, torch.zeros(1, 40, dtype=torch.long))
    with pytest.raises(InputError, match="integer"):
        ll.logit_lens(tiny, torch.zeros(1, 4))
    with pytest.raises(InputError, match="no shipped tuned lens"):
        ll.load_tuned_lens(tiny)
