"""Toolkit basics (week 00): losses from logits, and patching one activation with a hook."""

from __future__ import annotations

import torch

from mi_course.errors import expect_shape
from mi_course.zoo import hooks as hk
from mi_course import validation as check


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting each next token: ``[batch, pos-1]``.

    logits: ``[batch, pos, d_vocab]``; tokens: ``[batch, pos]``. ``loss[:, i]`` scores the
    prediction made at position ``i`` for token ``i+1``.
    """
    check.tokens("tokens", tokens)
    expect_shape("logits", logits, (tokens.shape[0], tokens.shape[1], None), "Expected [batch, pos, d_vocab].")
    check.token_ids("tokens", tokens.flatten(), logits.shape[-1])
    logp = logits[:, :-1].log_softmax(-1)
    return -logp.gather(-1, tokens[:, 1:, None])[..., 0]


def patch_resid_pre(model, clean_tokens: torch.Tensor, corrupt_tokens: torch.Tensor, layer: int, pos: int) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` of the *corrupted* run with ``blocks.{layer}.hook_resid_pre``
    at position ``pos`` replaced by its value in the *clean* run (activation patching)."""
    check.tokens("clean_tokens", clean_tokens, model)
    check.tokens("corrupt_tokens", corrupt_tokens, model)
    expect_shape("corrupt_tokens", corrupt_tokens, tuple(clean_tokens.shape), "clean and corrupt must have the same shape.")
    layer = check.layer(model, layer)
    pos = check.integer("pos", pos, 0, clean_tokens.shape[1])
    name = hk.resid_pre(layer)
    _, cache = model.run_with_cache(clean_tokens, names_filter=lambda n: n == name)
    clean = cache[name]

    def hook(resid, hook):
        resid = resid.clone()
        resid[:, pos] = clean[:, pos]
        return resid

    with torch.no_grad():
        return model.run_with_hooks(corrupt_tokens, fwd_hooks=[(name, hook)])
