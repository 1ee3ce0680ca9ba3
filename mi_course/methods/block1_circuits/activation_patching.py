"""Activation patching (causal mediation; Vig et al. 2020, Meng et al. 2022, Wang et al. 2023).

Run the model on one input while copying one activation from a run on another input, and
see how a metric moves. With ``direction="denoise"`` (the default) the model runs on the
*corrupted* prompts and each patch restores one *clean* activation: a big effect means the
activation carries what the clean run needs. ``direction="noise"`` runs on the clean prompts
and patches in corrupted activations: a big drop means the component is necessary.

Which activation, and at what granularity (``activation``, ``by_pos``):

=============  ==============================  ===================  ===========================
activation     hook                            ``by_pos=False``     ``by_pos=True``
=============  ==============================  ===================  ===========================
``resid_pre``  ``blocks.L.hook_resid_pre``     ``[layer]``          ``[layer, pos]``
``attn_out``   ``blocks.L.hook_attn_out``      ``[layer]``          ``[layer, pos]``
``mlp_out``    ``blocks.L.hook_mlp_out``       ``[layer]``          ``[layer, pos]``
``z/q/k/v``    ``blocks.L.attn.hook_{z,q,k,v}`` ``[layer, head]``   ``[layer, pos, head]``
``pattern``    ``blocks.L.attn.hook_pattern``  ``[layer, head]``    ``[layer, pos, head]`` (query pos)
=============  ==============================  ===================  ===========================

Every entry is the metric of the patched run (so the unpatched baseline is
``metric(model(target))``). Native TransformerBridge models drop edits to
``hook_attn_scores`` and have no ``hook_result``: patch ``pattern`` and ``z`` instead.
"""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.metrics import Metric, check_metric
from mi_course.zoo.hooks import Site  # noqa: F401  (re-exported)
from mi_course.zoo import hooks as hk
from mi_course import validation as check


# Where an activation lives (hook template, which dims are heads and positions): the zoo's one table of
# hook names, restricted to what patching supports (native bridges ignore hook_attn_scores edits).
ACTIVATIONS: dict[str, Site] = {a: hk.SITES[a] for a in
                                ("resid_pre", "attn_out", "mlp_out", "z", "q", "k", "v", "pattern")}


def site(activation: str) -> Site:
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)} "
                         "(note: native bridge models have no hook_result and ignore hook_attn_scores edits)")
    return ACTIVATIONS[activation]


def check_pair(clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, model=None) -> None:
    """Clean and corrupted prompts must be non-empty ``[batch, pos]`` integer ids of the same shape
    (and, with ``model``, within its vocabulary and context)."""
    check.tokens("clean_tokens", clean_tokens, model)
    check.tokens("corrupted_tokens", corrupted_tokens, model)
    if clean_tokens.shape != corrupted_tokens.shape:
        raise InputError(
            f"clean and corrupted prompts must have the same shape to patch position by position, got "
            f"{list(clean_tokens.shape)} and {list(corrupted_tokens.shape)}. Build the corrupted prompts "
            "from the clean ones (e.g. ds.abc()) so they share templates and lengths.")


def check_hook_names(model, names) -> None:
    """Raise :class:`InputError` for hook names that the model does not have."""
    dropped = [n for n in names if n.endswith(("hook_result", "hook_attn_scores"))]
    if dropped and getattr(model.cfg, "original_architecture", None) in (None, "native"):
        raise InputError(f"{dropped}: native TransformerBridge models have no per-head hook_result and ignore "
                         "edits to hook_attn_scores; patch 'z' (head outputs) or 'pattern' instead.")
    known = set(model.hook_dict) if hasattr(model, "hook_dict") else None
    if known is None:
        return
    bad = [n for n in names if n not in known]
    if bad:
        raise InputError(f"unknown hook name(s) {bad}. Examples of valid names: blocks.0.hook_resid_pre, "
                         "blocks.0.attn.hook_z, blocks.0.hook_mlp_out, blocks.0.attn.hook_pattern")


def sweep_indices(model, activation: str, by_pos: bool, seq_len: int) -> tuple[tuple[int, ...], list[tuple]]:
    """Output shape and the list of ``(out_index, layer, pos, head)`` patches of a sweep."""
    s = site(activation)
    L, H = model.cfg.n_layers, model.cfg.n_heads
    items = []
    if s.head_dim is None:
        shape = (L, seq_len) if by_pos else (L,)
        for layer in range(L):
            for p in (range(seq_len) if by_pos else [None]):
                items.append(((layer, p) if by_pos else (layer,), layer, p, None))
    else:
        shape = (L, seq_len, H) if by_pos else (L, H)
        for layer in range(L):
            for p in (range(seq_len) if by_pos else [None]):
                for h in range(H):
                    items.append(((layer, p, h) if by_pos else (layer, h), layer, p, h))
    return shape, items


def index_for(s: Site, ndim: int, pos: int | None, head: int | None) -> tuple:
    idx = [slice(None)] * ndim
    if pos is not None:
        idx[s.pos_dim] = pos
    if head is not None:
        idx[s.head_dim] = head
    return tuple(idx)


def patch_hook(source: torch.Tensor, index: tuple) -> Callable:
    """A forward hook that copies ``source[index]`` into the activation."""

    def hook(act, hook):
        act = act.clone()
        act[index] = source[index].to(act.dtype)
        return act

    return hook


def run_patched(model, tokens: torch.Tensor, patches: list[tuple[str, Callable]]) -> torch.Tensor:
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=patches)


def activation_patching(
    model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, metric: Metric,
    activation: str = "resid_pre", by_pos: bool = False, direction: str = "denoise",
    progress: bool = True,
) -> torch.Tensor:
    """Patch every layer (x position) (x head) of ``activation`` in turn; see the module docstring.

    metric: ``logits -> scalar`` (:mod:`mi_course.methods.metrics`). Returns the patched runs'
    metric values, shaped as in the table above.
    """
    check_pair(clean_tokens, corrupted_tokens, model)
    if direction not in ("denoise", "noise"):
        raise InputError(f"direction must be 'denoise' (patch clean into corrupted) or 'noise', got {direction!r}")
    s = site(activation)
    target, source_tokens = (corrupted_tokens, clean_tokens) if direction == "denoise" else (clean_tokens, corrupted_tokens)
    names = [s.hook.format(layer=layer) for layer in range(model.cfg.n_layers)]
    check_hook_names(model, names)
    with torch.no_grad():
        logits, cache = model.run_with_cache(source_tokens, names_filter=lambda n: n in set(names))
        check_metric(metric, logits)
    source = {n: cache[n] for n in names}
    shape, items = sweep_indices(model, activation, by_pos, clean_tokens.shape[1])
    out = torch.zeros(shape)
    for out_idx, layer, p, h in tqdm(items, desc=f"patching {activation}", disable=not progress, leave=False):
        name = names[layer]
        index = index_for(s, source[name].ndim, p, h)
        logits = run_patched(model, target, [(name, patch_hook(source[name], index))])
        out[out_idx] = check_metric(metric, logits).detach()
    return out


# --- named shortcuts -------------------------------------------------------------------------
def patch_resid_by_pos(model, clean_tokens, corrupted_tokens, metric, **kw) -> torch.Tensor:
    """Residual stream before each layer, at each position: ``[layer, pos]``."""
    return activation_patching(model, clean_tokens, corrupted_tokens, metric, "resid_pre", True, **kw)


def patch_attn_out(model, clean_tokens, corrupted_tokens, metric, by_pos: bool = False, **kw) -> torch.Tensor:
    """Attention layers' outputs: ``[layer]`` or ``[layer, pos]``."""
    return activation_patching(model, clean_tokens, corrupted_tokens, metric, "attn_out", by_pos, **kw)


def patch_mlp_out(model, clean_tokens, corrupted_tokens, metric, by_pos: bool = False, **kw) -> torch.Tensor:
    """MLP layers' outputs: ``[layer]`` or ``[layer, pos]``."""
    return activation_patching(model, clean_tokens, corrupted_tokens, metric, "mlp_out", by_pos, **kw)


def patch_heads(model, clean_tokens, corrupted_tokens, metric, activation: str = "z", by_pos: bool = False,
                **kw) -> torch.Tensor:
    """Heads' ``z`` (output), ``q``, ``k``, ``v`` or ``pattern``: ``[layer, head]`` or ``[layer, pos, head]``."""
    if activation not in ("z", "q", "k", "v", "pattern"):
        raise InputError(f"a head activation is one of z, q, k, v, pattern; got {activation!r}")
    return activation_patching(model, clean_tokens, corrupted_tokens, metric, activation, by_pos, **kw)


def patch_all_head_activations(model, clean_tokens, corrupted_tokens, metric, by_pos: bool = False,
                               **kw) -> dict[str, torch.Tensor]:
    """``{"z", "q", "k", "v", "pattern"}`` -> :func:`patch_heads` result for each."""
    return {a: patch_heads(model, clean_tokens, corrupted_tokens, metric, a, by_pos, **kw)
            for a in ("z", "q", "k", "v", "pattern")}
