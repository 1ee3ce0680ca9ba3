import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week10_bias as w
from mi_course.methods import bias_components as bc
from mi_course.methods.knowledge_crawl import encode_prompts


SLOW = {"w10b_mediation"}  # about 30 patched forwards of kb-lm per call, a few hundred calls in all


@pytest.mark.parametrize("ex_id", [pytest.param(e, marks=pytest.mark.slow) if e in SLOW else e for e in sorted(w.EXERCISES)])
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(w.EXERCISES[ex_id])


def test_three_exercises_with_two_mistakes_each():
    assert len(w.EXERCISES) >= 3
    assert all(len(ex.mistakes) >= 2 for ex in w.EXERCISES.values())


def test_references_equal_the_package():
    """The exercises' references (written the way students write them) equal bias_components."""
    model, kb = w._model(), w._kb()
    bp = bc.bias_prompts(kb, 2, templates=kb.templates("job")[:2])
    tf, last = encode_prompts(kb, bp.female)
    tm, _ = encode_prompts(kb, bp.male)
    F, M = bc.job_group_ids(kb)
    with torch.no_grad():
        rows = torch.arange(len(last))
        b = w.bias_metric(model(tf)[rows, last], model(tm)[rows, last], F, M)
    assert b == pytest.approx(bc.bias_score(model, kb, bp), abs=1e-4)
    table = w.mediation_table(model, tf, tm, last, F, M)
    pkg = {r["component"]: r["effect"] for r in bc.mediation_effects(model, kb, bp)}
    H = model.cfg.n_heads
    for L in range(model.cfg.n_layers):
        for h in range(H):
            assert table[L, h].item() == pytest.approx(pkg[f"{L}.{h}"], abs=1e-3)
        assert table[L, H].item() == pytest.approx(pkg[f"MLP{L}"], abs=1e-3)
    comps_ = ["0.1", "MLP3", "4.3"]
    cfg = model.cfg
    mine = w.output_weight_masks(cfg.n_layers, cfg.n_heads, cfg.d_head, cfg.d_model, cfg.d_mlp,
                                 bc.parse_components(model, comps_))
    pkg_m = bc.weight_masks(model, comps_)
    assert all(torch.equal(mine[k], pkg_m[k]) for k in ("W_O", "W_out"))


def test_visible_check_never_raises():
    def stub(*a, **k):
        raise NotImplementedError()
    assert w.check_bias_metric(stub) == False
    assert w.check_bias_metric(w.bias_metric) == True
    assert w.yours_or_reference(stub, w.METRIC) is w.METRIC.reference


def test_swap_gender_equals_the_package():
    kb = w._kb()
    docs = [d for d in kb.training_documents(300) if bc.counterfactual_document(kb, d)]
    names = set(kb.subjects)
    for d in docs[:50]:
        ws = d.split(" ")
        name = next(f"{a} {b}" for a, b in zip(ws, ws[1:]) if f"{a} {b}" in names)
        assert w.swap_gender(d, name, bc.swap_first_name(kb, name)) == bc.counterfactual_document(kb, d)
