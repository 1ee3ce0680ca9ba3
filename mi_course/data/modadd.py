"""Modular addition data for grokking (week 06, zoo model ``modadd-p113``).

Every pair ``(a, b)`` with ``0 <= a, b < p`` becomes the sequence ``[a, b, =]``, where the
``=`` token has id ``p`` (so the vocabulary is ``p + 1`` tokens); the label is ``(a + b) mod p``
and the model's logits are read at the last position. A seeded fraction (30% as in Nanda et
al. 2023) of the ``p**2`` pairs is the training set; the rest is the test set.

Rows are ordered ``a``-major (row ``a * p + b`` is the pair ``(a, b)``), so a quantity over all
pairs reshapes to a ``[p, p]`` grid with ``.reshape(p, p)``, as the Fourier methods expect.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mi_course.errors import InputError

P = 113
FRAC_TRAIN = 0.3
DATA_SEED = 0


def _check_p(p: int) -> None:
    if not isinstance(p, int) or isinstance(p, bool) or p < 2:
        raise InputError(f"p must be an integer >= 2, got {p!r}.")


def all_pairs(p: int = P) -> torch.Tensor:
    """Every input ``[a, b, =]`` in ``a``-major order, ``[p*p, 3]`` (long); ``=`` is token ``p``."""
    _check_p(p)
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    eq = torch.full_like(a, p)
    return torch.stack([a, b, eq], dim=1)


def labels(tokens: torch.Tensor, p: int = P) -> torch.Tensor:
    """``(a + b) mod p`` for each row of ``tokens`` ``[batch, 3]``; returns ``[batch]``."""
    _check_p(p)
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.shape[1] != 3:
        shape = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise InputError(f"tokens must be a [batch, 3] tensor of [a, b, =] rows, got {shape}.")
    if tokens[:, :2].min() < 0 or tokens[:, :2].max() >= p:
        raise InputError(f"a and b must lie in 0..{p - 1}.")
    return (tokens[:, 0] + tokens[:, 1]) % p


def train_mask(p: int = P, frac_train: float = FRAC_TRAIN, seed: int = DATA_SEED) -> torch.Tensor:
    """Boolean ``[p*p]`` mask of the training pairs (a seeded random ``frac_train`` of them)."""
    _check_p(p)
    if not 0 < frac_train < 1:
        raise InputError(f"frac_train must lie strictly between 0 and 1, got {frac_train}.")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(p * p, generator=g)
    n_train = int(frac_train * p * p)
    mask = torch.zeros(p * p, dtype=torch.bool)
    mask[order[:n_train]] = True
    return mask


@dataclass
class ModAddData:
    """All pairs with labels and the train/test split (``a``-major row order)."""

    p: int
    tokens: torch.Tensor  # [p*p, 3]
    labels: torch.Tensor  # [p*p]
    is_train: torch.Tensor  # [p*p] bool

    @property
    def train_tokens(self) -> torch.Tensor:
        return self.tokens[self.is_train]

    @property
    def train_labels(self) -> torch.Tensor:
        return self.labels[self.is_train]

    @property
    def test_tokens(self) -> torch.Tensor:
        return self.tokens[~self.is_train]

    @property
    def test_labels(self) -> torch.Tensor:
        return self.labels[~self.is_train]


def dataset(p: int = P, frac_train: float = FRAC_TRAIN, seed: int = DATA_SEED) -> ModAddData:
    """The full modular-addition dataset: 12,769 pairs for p=113 (3,830 train, 8,939 test)."""
    tokens = all_pairs(p)
    return ModAddData(p=p, tokens=tokens, labels=labels(tokens, p), is_train=train_mask(p, frac_train, seed))


def token_names(p: int = P) -> list[str]:
    """Display names: ``['0', '1', ..., str(p-1), '=']``."""
    _check_p(p)
    return [str(i) for i in range(p)] + ["="]
