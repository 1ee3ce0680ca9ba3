import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week11
from mi_course.methods import knowledge_neurons as kn


@pytest.mark.parametrize("ex_id", sorted(week11.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week11.EXERCISES[ex_id])


def test_eight_exercises_with_two_mistakes_each():
    assert len(week11.EXERCISES) >= 8
    assert all(len(ex.mistakes) >= 2 for ex in week11.EXERCISES.values())


def test_one_prompt_attribution_equals_the_batched_package():
    """The notebook's one-prompt attribution equals a row of the package's batched one."""
    model = week11._model()
    prompts, target, _ = week11._prompts(4, n=3)
    attr = kn.attributions(model, prompts, target, layers=[3], steps=5)
    mine = week11.neuron_attribution(model, model.to_tokens(prompts[1]), 3, target, steps=5)
    assert torch.allclose(mine, attr[1, 3], atol=1e-6)


def test_attributions_approach_the_probability_gap():
    """Completeness of integrated gradients: the layer's attributions sum to about P(w̄) − P(0) (more steps, closer)."""
    model = week11._model()
    prompts, target, _ = week11._prompts(2, n=1)
    toks = model.to_tokens(prompts[0])
    name = "blocks.4.mlp.hook_post"
    with torch.no_grad():
        p_full = model(toks)[0, -1].softmax(-1)[target]

        def zero(act, hook):
            act = act.clone()
            act[:, -1] = 0
            return act
        p_zero = model.run_with_hooks(toks, fwd_hooks=[(name, zero)])[0, -1].softmax(-1)[target]
    gap = float(p_full - p_zero)
    err = [abs(float(week11.neuron_attribution(model, toks, 4, target, steps=m).sum()) - gap) for m in (2, 50)]
    assert err[1] < err[0] and err[1] < 0.05 * max(abs(gap), 0.05)


def test_visible_check_never_raises():
    def stub(*a, **k):
        raise NotImplementedError()
    assert week11.check_layer_histogram(stub) == False
    assert week11.yours_or_reference(stub, week11.HIST) is week11.HIST.reference
    mine = lambda neurons, n_layers: week11.layer_histogram(neurons, n_layers)  # noqa: E731
    assert week11.check_layer_histogram(mine) == True
    assert week11.yours_or_reference(mine, week11.HIST) is mine
