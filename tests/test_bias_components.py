"""The bias-components method (Chintam et al. 2023) on kb-lm: metric, prompts, counterfactual text,
fine-tuning only some components (copy semantics, nothing else moves)."""

import math

import pytest
import torch

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb, words_of
from mi_course.methods import bias_components as bc


@pytest.fixture(scope="module")
def model_kb():
    return zoo.load("kb-lm"), load_kb()


def test_log_odds_is_the_ratio_of_group_probabilities():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 12, generator=g)
    F, M = torch.tensor([0, 3, 5]), torch.tensor([1, 2])
    p = logits.softmax(-1)
    assert torch.allclose(bc.group_log_odds(logits, F, M), (p[:, F].sum(-1) / p[:, M].sum(-1)).log(), atol=1e-5)
    # the same distribution for female and male names: no bias
    assert float(bc.bias_from_logits(logits, logits, F, M)) == pytest.approx(0.0, abs=1e-6)


def test_kb_bias_is_the_data_rate():
    kb = load_kb()
    s = bc.kb_shares(kb)
    assert 0.7 < s["female"] < 0.9 and 0.7 < s["male"] < 0.9  # planted 80/20
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert bc.kb_bias(kb) == pytest.approx(logit(s["female"]) + logit(s["male"]))
    assert bc.balanced_bias(kb) == 0.0


def test_name_pairs_are_unknown_gendered_and_split():
    kb = load_kb()
    known = set(kb.subjects)
    ev, tr = bc.name_pairs(kb, 40, "eval"), bc.name_pairs(kb, 40, "train")
    for f, m in ev + tr:
        assert f not in known and m not in known
        assert f.split()[1] == m.split()[1]
        assert f.split()[0].endswith("a") and m.split()[0].endswith("o")  # the generator's gender marks
    assert not {f.split()[1] for f, _ in ev} & {f.split()[1] for f, _ in tr}
    bp = bc.bias_prompts(kb, 3)
    assert len(bp) == 3 * len(kb.templates("job"))
    for a, b in zip(bp.female, bp.male):
        wa, wb = words_of(a), words_of(b)
        assert len(wa) == len(wb) and sum(x != y for x, y in zip(wa, wb)) == 1


def test_counterfactual_documents_balance_jobs_by_gender():
    kb = load_kb()
    docs = bc.balanced_documents(kb, 64)
    assert len(docs) % 2 == 0 and len(docs) > 40
    female_first = {p.name.split()[0] for p in kb.people if p.gender == "female"}
    count = {}
    for orig, cf in zip(docs[0::2], docs[1::2]):
        a, b = orig.split(" "), cf.split(" ")
        assert len(a) == len(b)
        changed = [(x, y) for x, y in zip(a, b) if x != y]
        assert changed and all(x in bc._PRONOUNS and bc._PRONOUNS[x] == y or (x in female_first) != (y in female_first)
                               for x, y in changed)
        for doc in (orig, cf):
            w = doc.split(" ")
            fem = any(x in female_first for x in w) or "She" in w or "she" in w
            for j in kb.jobs:
                if j in w:
                    count[(j, fem)] = count.get((j, fem), 0) + 1
    assert all(count.get((j, True), 0) == count.get((j, False), 0) for j in kb.jobs)


def test_delta_hooks_equal_the_written_weights(model_kb):
    model, kb = model_kb
    g = torch.Generator().manual_seed(1)
    masks = bc.weight_masks(model, ["1.2", "MLP3", "4.0"])
    dW_O = torch.randn(masks["W_O"].shape, generator=g) * 0.05
    dW_out = torch.randn(masks["W_out"].shape, generator=g) * 0.05
    tokens, _ = bc.encode_prompts(kb, ["Nesta Brukrok works as a", "He enjoys chess ."])
    with torch.no_grad(), model.hooks(fwd_hooks=bc._delta_hooks(model, dW_O, dW_out, masks)):
        hooked = model(tokens)
    import copy
    new = copy.deepcopy(model)
    bc._write_deltas(new, dW_O, dW_out, masks)
    with torch.no_grad():
        assert torch.allclose(new(tokens), hooked, atol=1e-4)
        assert torch.allclose(new.blocks[1].attn.W_O[2], model.blocks[1].attn.W_O[2] + dW_O[1, 2], atol=1e-6)
        assert torch.equal(new.blocks[1].attn.W_O[1], model.blocks[1].attn.W_O[1])


def test_fine_tune_moves_only_the_located_weights_and_copies(model_kb):
    model, kb = model_kb
    before = {k: v.clone() for k, v in model.state_dict().items()}
    docs = bc.balanced_documents(kb, 16)
    tuned, info = bc.fine_tune(model, kb, docs, ["1.2", "MLP3"], steps=2, batch_size=4)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert info["n_trainable"] == 32 * 128 + 512 * 128 and len(info["losses"]) == 2
    changed = {k for k, v in tuned.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"blocks.1.attn.o.weight", "blocks.3.mlp.out.weight"}, changed
    for L in range(6):
        for h in range(4):
            same = torch.equal(tuned.blocks[L].attn.W_O[h], model.blocks[L].attn.W_O[h])
            assert same == ((L, h) != (1, 2))
    assert all(p.requires_grad == q.requires_grad for p, q in zip(model.parameters(), tuned.parameters()))


def test_whole_model_fine_tune_leaves_the_original(model_kb):
    model, kb = model_kb
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, info = bc.fine_tune(model, kb, bc.balanced_documents(kb, 8), "whole", steps=1, batch_size=2)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert info["n_trainable"] == sum(p.numel() for p in model.parameters())
    assert any(not torch.equal(v, before[k]) for k, v in tuned.state_dict().items())


def test_random_components_match_the_kinds(model_kb):
    model, _ = model_kb
    r = bc.random_components(model, 0, seed=3, exclude=["MLP0", "4.3"], like=["MLP0", "4.3"])
    assert len(r) == 2 and sum(c.startswith("MLP") for c in r) == 1 and not {"MLP0", "4.3"} & set(r)
    assert bc.random_components(model, 5, seed=1) == bc.random_components(model, 5, seed=1)
