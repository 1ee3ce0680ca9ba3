"""Ablations: knock a component out and see what breaks.

Three ways to knock out (Wang et al. 2023 and Chan et al. 2022 discuss why the choice matters):

- ``"zero"``: set the activation to 0 (simple, but 0 may be far off-distribution);
- ``"mean"``: replace it by its mean over a *reference distribution* (e.g. the ABC prompts
  of IOI), per position, so only prompt-specific information is removed;
- ``"resample"``: replace it, prompt by prompt, with its value on a random reference prompt
  (the building block of causal scrubbing).

Works for heads, MLP layers, attention layers, single neurons and residual-stream positions:
see :mod:`mi_course.methods.components`. ``ablate_heads`` and ``ablated_head_loss`` (week 02)
keep their signatures.
"""

from __future__ import annotations

from typing import Iterable

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.methods.components import Component, as_components
from mi_course.methods.induction import per_token_loss
from mi_course import validation as check

MODES = ("zero", "mean", "resample")


@torch.no_grad()
def reference_activations(model, reference_tokens: torch.Tensor, hook_names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Activations ``{hook_name: [n_ref, pos, ...]}`` of the model on the reference prompts."""
    names = set(hook_names)
    _, cache = model.run_with_cache(reference_tokens, names_filter=lambda n: n in names)
    missing = [n for n in names if n not in cache]
    if missing:
        raise InputError(f"unknown hook name(s) {missing}")
    return {n: cache[n] for n in names}


def ablation_hooks(
    model, components: Iterable, mode: str = "zero", reference_tokens: torch.Tensor | None = None,
    n_prompts: int | None = None, seq_len: int | None = None, seed: int = 0,
    reference: dict[str, torch.Tensor] | None = None,
) -> list[tuple[str, callable]]:
    """Forward hooks that ablate ``components``; pass them to ``model.run_with_hooks``.

    ``n_prompts`` and ``seq_len`` (the batch the hooks will see) are needed for ``"mean"``
    (its per-position means must match the length) and ``"resample"`` (which reference prompt
    each prompt takes). ``reference``: precomputed :func:`reference_activations` (saves a pass).
    """
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    comps = as_components(model, components)
    by_hook: dict[str, list[Component]] = {}
    for c in comps:
        by_hook.setdefault(c.hook_name, []).append(c)
    if mode != "zero":
        if reference is None:
            if reference_tokens is None:
                raise InputError(f"{mode} ablation needs reference_tokens (the distribution to take "
                                 "values from, e.g. the corrupted ABC prompts)")
            expect_shape("reference_tokens", reference_tokens, (None, None))
            reference = reference_activations(model, reference_tokens, by_hook)
        ref_len = next(iter(reference.values())).shape[1]
        if seq_len is not None and ref_len != seq_len:
            raise InputError(f"reference prompts have {ref_len} positions but the ablated prompts have "
                             f"{seq_len}; {mode} ablation replaces activations position by position, so "
                             "use reference prompts of the same template/length.")
    replacement: dict[str, torch.Tensor] = {}
    if mode == "mean":
        replacement = {n: reference[n].mean(0, keepdim=True) for n in by_hook}  # [1, pos, ...]
    elif mode == "resample":
        if n_prompts is None:
            raise InputError("resample ablation needs n_prompts (the batch size of the ablated run)")
        g = torch.Generator().manual_seed(seed)
        n_ref = next(iter(reference.values())).shape[0]
        pick = torch.randint(0, n_ref, (n_prompts,), generator=g)
        replacement = {n: reference[n][pick] for n in by_hook}  # [n_prompts, pos, ...]

    def make_hook(name: str, cs: list[Component]):
        def hook(act, hook):
            act = act.clone()
            for c in cs:
                idx = c.index_tuple()
                if mode == "zero":
                    act[idx] = 0.0
                else:
                    rep = replacement[name]
                    if rep.shape[0] not in (1, act.shape[0]) or rep.shape[1] != act.shape[1]:
                        raise InputError(f"{mode} ablation was prepared for a batch of shape "
                                         f"{list(rep.shape[:2])}, got {list(act.shape[:2])}")
                    act[idx] = rep.expand(act.shape[0], *rep.shape[1:])[idx].to(act.dtype)
            return act

        return hook

    return [(name, make_hook(name, cs)) for name, cs in by_hook.items()]


def ablate(
    model, tokens: torch.Tensor, components: Iterable, mode: str = "zero",
    reference_tokens: torch.Tensor | None = None, seed: int = 0,
) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` with ``components`` ablated (see the module docstring).

    >>> ablate(model, ds.tokens, [head(2, 1), mlp(0)], mode="mean", reference_tokens=abc.tokens)
    """
    check.tokens("tokens", tokens, model)
    if reference_tokens is not None:
        check.tokens("reference_tokens", reference_tokens, model)
    hooks = ablation_hooks(model, components, mode, reference_tokens, n_prompts=tokens.shape[0],
                           seq_len=tokens.shape[1], seed=seed)
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=hooks)


def ablate_heads(
    model, tokens: torch.Tensor, heads: Iterable[tuple[int, int]], mode: str = "zero",
    reference_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` with the given heads' outputs (``hook_z``) ablated.

    mode ``"zero"`` sets the head's ``z`` to 0; ``"mean"`` replaces it with its mean over
    ``reference_tokens`` (batch-averaged, per position); ``"resample"`` with its value on a
    random reference prompt.
    """
    check.tokens("tokens", tokens, model)
    if mode == "mean" and reference_tokens is None:
        raise InputError("mean ablation needs reference_tokens (the distribution to average over)")
    if mode == "mean":
        expect_shape("reference_tokens", reference_tokens, (None, tokens.shape[1]))
    return ablate(model, tokens, list(heads), mode, reference_tokens)


def ablated_head_loss(model, tokens: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """Per-token loss ``[batch, pos-1]`` with head ``layer.head`` zero-ablated."""
    return per_token_loss(ablate_heads(model, tokens, [(layer, head)]), tokens)
