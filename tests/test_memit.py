"""MEMIT (``mi_course.methods.memit``) on ``kb-lm``: one edit, a batch of ten, the original model
untouched, the batched targets equal the one-by-one ones, the update solves its least squares, bad input."""

import pytest
import torch

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.errors import InputError
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import memit, rome

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo yet")


@pytest.fixture(scope="module")
def model():
    return zoo.load("kb-lm")


@pytest.fixture(scope="module")
def cases(model):
    return ev.kb_cases(model, load_kb(), 10, seed=1)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_default_layers_and_lambda(model):
    assert memit.default_layers(model) == [0, 1]
    assert memit.default_mom2_update_weight(model) == pytest.approx(15000 * 512 / 16384)


def test_one_edit_works_and_the_model_is_untouched(model, cases):
    before = _weights(model)
    new = memit.apply_memit(model, cases[0].request)
    s = ev.case_scores(new, cases[0])
    assert s["ES"] == 1.0 and s["PS"] >= 0.8 and s["NS"] >= 0.8
    assert [e.layer for e in new.memit_edits] == [0, 1]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "apply_memit changed the original model"
    changed = [k for k, v in new.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == 2 and changed[0].startswith("blocks.0.mlp.") and changed[1].startswith("blocks.1.mlp.")
    # the hooks (memit_edits + rome.edited) give the same predictions as the edited copy
    toks = model.to_tokens(cases[0].rewrite_prompts[0])
    with rome.edited(model, new.memit_edits):
        hooked = model(toks)
    assert torch.allclose(hooked, new(toks), atol=1e-4)


@pytest.mark.slow
def test_a_batch_of_ten_works(model, cases):
    before = _weights(model)
    edits = memit.memit_editor()(model, [c.request for c in cases])
    s = ev.summarize([ev.case_scores(model, c, edits) for c in cases])
    assert s["ES"] >= 0.9 and s["PS"] >= 0.8 and s["NS"] >= 0.8, s
    pre = ev.summarize([ev.case_scores(model, c) for c in cases])
    assert pre["ES"] == 0.0  # the baseline: before the edit the model prefers the true objects
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_batched_targets_equal_one_by_one(model, cases):
    hp = memit.MemitHparams()
    ctx = rome.context_templates(model, hp.context_lengths, hp.seed)
    reqs = [c.request for c in cases[:3]]
    batched = memit.compute_zs(model, reqs, 1, hp, batch=2)
    single = torch.stack([memit.compute_z(model, 1, r, ctx, hp)[0] for r in reqs])
    assert torch.allclose(batched, single, atol=1e-4)


def test_update_solves_the_least_squares():
    g = torch.Generator().manual_seed(0)
    K, R = torch.randn(6, 20, generator=g), torch.randn(6, 8, generator=g)
    A = torch.randn(20, 20, generator=g)
    C = A @ A.T / 20 + 0.1 * torch.eye(20)
    lam = 3.0
    D = memit.memit_update(K, R, C, lam)
    assert D.shape == (20, 8)
    grad = K.T @ (K @ D - R) + lam * C @ D  # d/dD of ½‖KD − R‖² + ½λ tr(Dᵀ C D)
    assert grad.abs().max() < 1e-4
    small = memit.memit_update(K, R, C, 1e-6)  # λ → 0 with fewer keys than dimensions: K D = R exactly
    assert torch.allclose(K @ small, R, atol=1e-3)
    assert torch.allclose(memit.spread_residual(R, [0, 1, 2], 0), R / 3)
    assert torch.allclose(memit.spread_residual(R, [0, 1, 2], 2), R)


@pytest.mark.parametrize("call, words", [
    (lambda m, c: memit.apply_memit(m, []), "empty"),
    (lambda m, c: memit.apply_memit(m, c[0].request, layers=[1, 0]), "increasing"),
    (lambda m, c: memit.apply_memit(m, c[0].request, layers=[7]), "out of range"),
    (lambda m, c: memit.apply_memit(m, {"prompt": "{} was born in", "subject": "Nobody Here", "target_new": "the"}
                                    | {"prompt": "x was born in"}), "subject"),
    (lambda m, c: memit.memit_edits(m, [c[0].request], zs=torch.zeros(2, 128)), "zs must be"),
    (lambda m, c: memit.memit_update(torch.zeros(3, 5), torch.zeros(4, 2), torch.eye(5), 1.0), "same n"),
    (lambda m, c: memit.memit_update(torch.zeros(3, 5), torch.zeros(3, 2), torch.eye(5), -1.0), "lam"),
])
def test_bad_input_raises(model, cases, call, words):
    with pytest.raises(InputError, match=words):
        call(model, cases)
