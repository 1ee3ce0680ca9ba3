import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week08
from mi_course.methods import causal_tracing as ct


@pytest.mark.parametrize("ex_id", sorted(week08.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week08.EXERCISES[ex_id])


def test_ten_exercises_with_two_mistakes_each():
    assert len(week08.EXERCISES) >= 10
    assert all(len(ex.mistakes) >= 2 for ex in week08.EXERCISES.values())


def test_reference_trace_equals_the_package():
    """The notebook's loop (one restoration per run) equals the package's batched trace."""
    model = week08._model()
    tokens, start, end, target = week08._fact_tokens(3)
    prompt = "".join(model.tokenizer.decode(tokens[0, 1:].tolist()))
    noise = ct.make_noise(3, end - start, model.cfg.d_model, 3 * ct.embedding_std(model), seed=5)
    mine = week08.causal_trace(model, tokens, start, end, noise, target, "mlp")
    subject = model.tokenizer.decode(tokens[0, start:end].tolist())
    pkg = ct.trace(model, prompt, subject, target, kind="mlp", n_samples=3, seed=5)
    assert torch.allclose(mine, pkg.scores, atol=1e-5)


def test_visible_check_never_raises(capsys):
    def stub(*a, **k):
        raise NotImplementedError()
    assert week08.check_edit_metrics(stub) == False
    assert week08.check_edit_metrics(week08.edit_metrics) == True
    assert week08.yours_or_reference(stub, week08.METRICS) is week08.METRICS.reference
    mine = lambda rewrite, paraphrase, neighbourhood: week08.edit_metrics(rewrite, paraphrase, neighbourhood)  # noqa: E731
    assert week08.check_edit_metrics(mine) == True
    assert week08.yours_or_reference(mine, week08.METRICS) is mine
