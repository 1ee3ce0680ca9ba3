"""GRACE's codebook adaptor on ``kb-lm``: the rules of the codebook, the model left untouched, padded
batches, sequential editing. The figures measured on ``kb-lm`` are held by ``tests/test_kb_grace_figures.py``."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import grace

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo yet")


@pytest.fixture(scope="module")
def model():
    return zoo.load("kb-lm")


@pytest.fixture(scope="module")
def kb():
    from mi_course.data.knowledge_base import load_kb

    return load_kb()


def _request(kb, subject, relation="birth_city", k=1, template=None):
    true = kb.object_of(subject, relation)
    new = [o for o in kb.objects(relation) if o != true][k]
    return kb.rome_request(subject, relation, new, template)


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# -- the codebook rules (pure) ---------------------------------------------------------------------
def test_lookup_uses_the_nearest_key_only():
    keys = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    values = torch.tensor([[1.0], [2.0]])
    radii = torch.tensor([5.0, 0.5])
    assert grace.codebook_lookup(keys, values, radii, torch.tensor([0.5, 0.0])).item() == 1.0
    # nearest is key 1 (distance 1.0 > its radius 0.5): pass-through, although key 0's ball holds the query
    assert grace.codebook_lookup(keys, values, radii, torch.tensor([2.0, 0.0])) is None
    assert grace.codebook_lookup(keys, values, radii, torch.tensor([3.5, 0.0])).item() == 2.0  # on the border
    assert grace.codebook_lookup(keys[:0], values[:0], radii[:0], torch.zeros(2)) is None


def test_update_add_expand_split():
    keys, radii, labels = torch.tensor([[0.0, 0.0]]), torch.tensor([1.0]), [7]
    r, a = grace.codebook_update(keys, radii, labels, torch.tensor([5.0, 0.0]), 7, eps_init=1.0)
    assert a == "add" and r.tolist() == [1.0, 1.0]
    r, a = grace.codebook_update(keys, radii, labels, torch.tensor([1.5, 0.0]), 7, eps_init=1.0)
    assert a == "expand" and r.tolist() == [1.5]
    r, a = grace.codebook_update(keys, radii, labels, torch.tensor([0.5, 0.0]), 7, eps_init=1.0)
    assert a == "expand" and r.tolist() == [1.0]  # already covered: the radius does not shrink
    r, a = grace.codebook_update(keys, radii, labels, torch.tensor([1.5, 0.0]), 3, eps_init=1.0)
    assert a == "split" and r[0].item() == pytest.approx(0.75 - grace.SPLIT_MARGIN) and r[1].item() == 0.75
    assert radii.tolist() == [1.0]  # the input is not modified


# -- the adaptor on kb-lm --------------------------------------------------------------------------
def test_edit_works_and_the_model_is_untouched(model, kb):
    before = _weights(model)
    subject, other = kb.subjects[3], kb.subjects[4]
    req = _request(kb, subject)
    prompts = [req["prompt"].format(subject), req["prompt"].format(other)]
    clean = grace.next_token_logits(model, prompts)
    g = grace.Grace(model)
    assert g.layer == grace.default_layer(model) == 4 and g.n_keys == 0
    info = g.edit(req)
    assert info["action"] == "add" and g.n_keys == 1 and info["losses"][-1] < g.hparams.stop_loss
    edited = grace.top1(model, prompts, g)
    assert kb.token_id(req["target_new"]) == int(edited[0])
    assert int(edited[1]) == int(clean[1].argmax())  # another person, outside eps: untouched
    # the model itself: same weights, same outputs, no hooks left behind
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert torch.allclose(grace.next_token_logits(model, prompts), clean)
    with g.applied():
        out = model(model.to_tokens(prompts[0]))[0, -1].argmax()
    assert int(out) == kb.token_id(req["target_new"])
    g.attach()
    assert int(model(model.to_tokens(prompts[0]))[0, -1].argmax()) == kb.token_id(req["target_new"])
    g.remove()
    assert torch.allclose(model(model.to_tokens(prompts[0]))[0, -1].float(), clean[0], atol=1e-5)


def test_padded_batches_look_up_each_rows_last_token(model, kb):
    g = grace.Grace(model)
    reqs = [_request(kb, s) for s in kb.subjects[10:13]]
    for r in reqs:
        g.edit(r)
    prompts = [r["prompt"].format(r["subject"]) for r in reqs] + ["In daily life, " + kb.subjects[20] + " works as a"]
    batched = grace.next_token_logits(model, prompts, g)
    one_by_one = torch.cat([grace.next_token_logits(model, [p], g) for p in prompts])
    assert torch.allclose(batched, one_by_one, atol=1e-4)
    assert batched[:3].argmax(-1).tolist() == [kb.token_id(r["target_new"]) for r in reqs]


def test_expand_and_split_on_the_model(model, kb):
    s = kb.subjects[30]
    tpls = kb.templates("birth_city")
    g = grace.Grace(model, eps_init=6.0)  # paraphrases of one fact are 1.5-3.5 apart at layer 4
    g.edit(_request(kb, s, template=tpls[0]))
    same = g.edit(_request(kb, s, template=tpls[2]))
    assert same["action"] == "expand" and g.n_keys == 1 and g.radii[0] >= same["distance"]
    conflict = g.edit(_request(kb, s, k=2, template=tpls[4]))
    assert conflict["action"] == "split" and g.n_keys == 2
    assert g.radii[1].item() == pytest.approx(conflict["distance"] / 2)


def test_sequential_editing_rows(model, kb):
    stream = grace.sequential_stream(model, kb, 4, n_test_people=4, seed=1)
    assert len(stream["test_prompts"]) == 20 and len(stream["requests"]) == 4
    edited_people = {r["subject"] for r in stream["requests"]}
    assert not edited_people & {p.split(" was")[0] for p in stream["test_prompts"]}
    rows = grace.sequential_editing(model, kb, "grace", 4, (1, 4), stream=stream, progress=False)
    assert [r["edits"] for r in rows] == [1, 4] and rows[-1]["keys"] == 4 and rows[-1]["ERR"] == 1.0
    assert rows[-1]["TRR"] >= 0.9
    assert grace.retention_rates([True, False], [True, True, True, False]) == (0.75, 0.5)


def test_bad_input(model, kb):
    with pytest.raises(InputError, match="eps_init"):
        grace.Grace(model, eps_init=0)
    with pytest.raises(InputError, match="method must be"):
        grace.sequential_editing(model, kb, "memit", 2, progress=False)
    with pytest.raises(InputError, match="n_edits must be between"):
        grace.sequential_stream(model, kb, 0)
    with pytest.raises(InputError, match="prompts must be a list"):
        grace.next_token_logits(model, "Nado Puzelu was born in")
