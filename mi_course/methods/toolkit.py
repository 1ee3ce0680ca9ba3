"""Toolkit basics (week 00): losses from logits, and patching one activation with a hook."""

from __future__ import annotations

import torch

from mi_course.errors import InputError, expect_shape
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


# --- Hooks as a skill (week 00) ----------------------------------------------------------------
def _check_head(model, layer: int, head: int) -> None:
    if not (0 <= int(layer) < model.cfg.n_layers and 0 <= int(head) < model.cfg.n_heads):
        raise InputError(f"head {layer}.{head} does not exist: the model has {model.cfg.n_layers} layers "
                         f"of {model.cfg.n_heads} heads.")


def head_pattern(model, tokens: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """One head's attention pattern ``[batch, query_pos, key_pos]``, from a cache that keeps only
    ``blocks.{layer}.attn.hook_pattern`` (``names_filter``: nothing else is stored)."""
    expect_shape("tokens", tokens, (None, None), "Expected [batch, pos].")
    _check_head(model, layer, head)
    name = hk.pattern(layer)
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    return cache[name][:, head]


def scale_head(model, tokens: torch.Tensor, layer: int, head: int, factor: float) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` with head ``layer.head``'s output ``z`` multiplied by ``factor``
    (0 = zero ablation, 1 = unchanged, 2 = amplified)."""
    expect_shape("tokens", tokens, (None, None), "Expected [batch, pos].")
    _check_head(model, layer, head)

    def hook(z, hook):  # z: [batch, pos, head, d_head]
        z = z.clone()
        z[:, :, head] = z[:, :, head] * factor
        return z

    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(hk.z(layer), hook)])


def pattern_to_bos(model, tokens: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """Logits with head ``layer.head``'s attention pattern replaced: every query attends only to
    position 0 (``<bos>``). A hook on ``hook_pattern`` (edits to ``hook_attn_scores`` are dropped
    on native TransformerBridge models)."""
    expect_shape("tokens", tokens, (None, None), "Expected [batch, pos].")
    _check_head(model, layer, head)

    def hook(pattern, hook):  # [batch, head, query_pos, key_pos]
        pattern = pattern.clone()
        pattern[:, head] = 0.0
        pattern[:, head, :, 0] = 1.0
        return pattern

    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(hk.pattern(layer), hook)])


def attention_to_bos(model, tokens: torch.Tensor) -> torch.Tensor:
    """``[n_layers, n_heads]``: each head's mean attention to position 0 (over the batch and every
    query), gathered by hooks that *record* into a shared dict (hooks with state) and change nothing."""
    expect_shape("tokens", tokens, (None, None), "Expected [batch, pos].")
    found: dict[int, torch.Tensor] = {}

    def make_hook(layer: int):
        def hook(pattern, hook):
            found[layer] = pattern[:, :, :, 0].mean(dim=(0, 2))
            return None  # returning None leaves the activation unchanged

        return hook

    hooks = [(hk.pattern(layer), make_hook(layer)) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks)
    return torch.stack([found[layer] for layer in range(model.cfg.n_layers)])


def hooked_then_clean(model, tokens: torch.Tensor, hook_name: str, hook_fn) -> tuple[torch.Tensor, torch.Tensor]:
    """Attach ``hook_fn`` to the model (``model.add_hook``: it stays for every later call), run once,
    remove it (``model.reset_hooks()``), run again. Returns ``(hooked_logits, clean_logits)``."""
    expect_shape("tokens", tokens, (None, None), "Expected [batch, pos].")
    with torch.no_grad():
        model.add_hook(hook_name, hook_fn)
        try:
            hooked = model(tokens)
        finally:
            model.reset_hooks()
        return hooked, model(tokens)


def generate_with_hooks(model, tokens: torch.Tensor, n_new: int, fwd_hooks=()) -> torch.Tensor:
    """Greedy generation of ``n_new`` tokens with ``fwd_hooks`` active at *every* step.

    tokens ``[batch, pos]`` -> ``[batch, pos + n_new]``: at each step run the (hooked) model on
    everything so far and append the argmax of the last position's logits.
    """
    expect_shape("tokens", tokens, (None, None), "Expected [batch, pos].")
    if int(n_new) < 0:
        raise InputError(f"n_new must be >= 0, got {n_new}")
    if tokens.shape[1] + n_new > model.cfg.n_ctx:
        raise InputError(f"{tokens.shape[1]} + {n_new} tokens exceed the model's context of {model.cfg.n_ctx}")
    out = tokens
    with torch.no_grad():
        for _ in range(int(n_new)):
            logits = model.run_with_hooks(out, fwd_hooks=list(fwd_hooks))
            out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return out
