"""Attention from first principles (Vaswani et al. 2017; the notation of Elhage et al. 2021)."""

from __future__ import annotations

import math

import torch

from mi_course.errors import InputError, expect_shape
from mi_course import validation as check


def attention_pattern(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Causal attention pattern from queries and keys.

    q, k: ``[batch, pos, head, d_head]`` (the shapes of ``hook_q`` / ``hook_k``).
    Returns ``[batch, head, query_pos, key_pos]``: softmax over keys of
    ``q.k / sqrt(d_head)``, with each query allowed to attend only to itself and earlier keys.
    """
    expect_shape("q", q, (None, None, None, None), "Expected [batch, pos, head, d_head].")
    expect_shape("k", k, tuple(q.shape), "q and k must have the same shape [batch, pos, head, d_head].")
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    n = q.shape[1]
    future = torch.triu(torch.ones(n, n, dtype=torch.bool, device=q.device), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def head_index(model, layer: int, head: int) -> None:
    """Raise a clear error if ``(layer, head)`` does not exist in ``model``."""
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    check.integer("layer", layer)
    check.integer("head", head)
    if not (0 <= int(layer) < n_layers and 0 <= int(head) < n_heads):
        raise InputError(f"head {layer}.{head} does not exist: the model has {n_layers} layers of {n_heads} heads.")
