"""Metrics for patching: functions of the logits that return one number (a 0-dim tensor).

A *metric* is any callable ``metric(logits [batch, pos, d_vocab]) -> scalar tensor``. The
patching methods call it on every patched run; attribution patching also differentiates it,
so keep it a torch expression (no ``.item()``).

>>> metric = logit_diff_metric(ds.io, ds.s, ds.end)      # IOI: logit(IO) - logit(S) at the end
>>> metric(model(ds.tokens))
tensor(3.1)
"""

from __future__ import annotations

from typing import Callable

import torch

from mi_course.errors import InputError, expect_shape
from mi_course import validation as check

Metric = Callable[[torch.Tensor], torch.Tensor]


def _final(logits: torch.Tensor, positions: torch.Tensor | int | None) -> torch.Tensor:
    """Logits at one position per prompt: ``[batch, d_vocab]``."""
    expect_shape("logits", logits, (None, None, None), "Expected [batch, pos, d_vocab].")
    check.finite("logits", logits)
    if positions is None:
        return logits[:, -1]
    check.positions("positions", positions, logits.shape[1], logits.shape[0])
    if isinstance(positions, int):
        return logits[:, positions]
    return logits[torch.arange(logits.shape[0]), positions]


def logit_diff(
    logits: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor,
    positions: torch.Tensor | int | None = None, per_prompt: bool = False,
) -> torch.Tensor:
    """Mean of ``logit[correct] - logit[wrong]`` at ``positions`` (default: the last).

    logits ``[batch, pos, d_vocab]``; correct, wrong ``[batch]`` token ids. Returns a scalar
    (or ``[batch]`` with ``per_prompt=True``).
    """
    final = _final(logits, positions)
    check.token_ids("correct", correct, final.shape[1], final.shape[0])
    check.token_ids("wrong", wrong, final.shape[1], final.shape[0])
    rows = torch.arange(final.shape[0])
    diff = final[rows, correct] - final[rows, wrong]
    return diff if per_prompt else diff.mean()


def answer_probability(
    logits: torch.Tensor, correct: torch.Tensor, positions: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Mean softmax probability of ``correct`` at ``positions``: a scalar."""
    final = _final(logits, positions)
    check.token_ids("correct", correct, final.shape[1], final.shape[0])
    return final.softmax(-1)[torch.arange(final.shape[0]), correct].mean()


def answer_loss(
    logits: torch.Tensor, correct: torch.Tensor, positions: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``correct`` at ``positions``: a scalar (lower is better)."""
    final = _final(logits, positions)
    check.token_ids("correct", correct, final.shape[1], final.shape[0])
    return torch.nn.functional.cross_entropy(final, correct)


def logit_diff_metric(correct, wrong, positions=None) -> Metric:
    """A metric: ``logits -> mean logit difference`` (see :func:`logit_diff`)."""
    return lambda logits: logit_diff(logits, correct, wrong, positions)


def probability_metric(correct, positions=None) -> Metric:
    """A metric: ``logits -> mean probability of the correct token``."""
    return lambda logits: answer_probability(logits, correct, positions)


def loss_metric(correct, positions=None) -> Metric:
    """A metric: ``logits -> mean cross-entropy of the correct token``."""
    return lambda logits: answer_loss(logits, correct, positions)


def normalized(metric: Metric, clean_value: float, corrupted_value: float) -> Metric:
    """Rescale ``metric`` so the clean run scores 1 and the corrupted run 0.

    ``(metric - corrupted) / (clean - corrupted)``: a patch scoring 0.8 restores 80% of
    the clean behaviour.
    """
    if not callable(metric):
        raise InputError(f"metric must be a callable logits -> scalar, got {type(metric).__name__}")
    clean_value, corrupted_value = check.number("clean_value", clean_value), check.number("corrupted_value", corrupted_value)
    gap = clean_value - corrupted_value
    if abs(gap) < 1e-8:
        raise InputError("clean and corrupted runs score the same on this metric: nothing to restore, "
                         "so the normalized metric is undefined. Check the corrupted prompts.")
    return lambda logits: (metric(logits) - float(corrupted_value)) / gap


def ioi_metric(ds) -> Metric:
    """Logit difference IO - S at the end of each prompt of an :class:`~mi_course.data.ioi.IOIDataset`."""
    return logit_diff_metric(ds.io, ds.s, ds.end)


def check_metric(metric: Metric, logits: torch.Tensor) -> torch.Tensor:
    """Call ``metric`` and make sure it returned a scalar tensor; raise :class:`InputError` if not."""
    if not callable(metric):
        raise InputError(f"metric must be a callable logits -> scalar, got {type(metric).__name__}")
    value = metric(logits)
    if isinstance(value, (int, float)):
        raise InputError("the metric returned a Python number; return a 0-dim torch tensor instead "
                         "(no .item()), so attribution patching can differentiate it.")
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise InputError(f"the metric must return a scalar (one number), got {shape}. Average over "
                         "the batch (e.g. .mean()) inside the metric.")
    return value.reshape(())
