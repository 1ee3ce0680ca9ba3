"""Ablations: knock a component out and see what breaks (zero and mean ablation of heads)."""

from __future__ import annotations

from typing import Iterable

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.methods.attention import head_index
from mi_course.methods.induction import per_token_loss


def _hook_z_ablation(heads: list[int], mode: str, means: torch.Tensor | None):
    def hook(z, hook):  # z: [batch, pos, head, d_head]
        z = z.clone()
        for h in heads:
            z[:, :, h] = 0.0 if mode == "zero" else means[:, h].to(z.dtype)
        return z

    return hook


def ablate_heads(
    model, tokens: torch.Tensor, heads: Iterable[tuple[int, int]], mode: str = "zero",
    reference_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` with the given heads' outputs (``hook_z``) ablated.

    mode ``"zero"`` sets the head's ``z`` to 0; ``"mean"`` replaces it with its mean over
    ``reference_tokens`` (batch-averaged, per position).
    """
    expect_shape("tokens", tokens, (None, None))
    if mode not in ("zero", "mean"):
        raise InputError(f"mode must be 'zero' or 'mean', got {mode!r}")
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        head_index(model, layer, head)
        by_layer.setdefault(int(layer), []).append(int(head))
    hooks = []
    for layer, hs in by_layer.items():
        means = None
        if mode == "mean":
            if reference_tokens is None:
                raise InputError("mean ablation needs reference_tokens (the distribution to average over)")
            expect_shape("reference_tokens", reference_tokens, (None, tokens.shape[1]))
            _, cache = model.run_with_cache(reference_tokens, names_filter=lambda n: n.endswith("hook_z"))
            means = cache[f"blocks.{layer}.attn.hook_z"].mean(0)  # [pos, head, d_head]
        hooks.append((f"blocks.{layer}.attn.hook_z", _hook_z_ablation(hs, mode, means)))
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=hooks)


def ablated_head_loss(model, tokens: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """Per-token loss ``[batch, pos-1]`` with head ``layer.head`` zero-ablated."""
    return per_token_loss(ablate_heads(model, tokens, [(layer, head)]), tokens)
