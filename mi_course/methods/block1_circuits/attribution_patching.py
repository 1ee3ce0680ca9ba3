"""Attribution patching (AtP; Nanda 2023, Syed et al. 2023, Kramar et al. 2024).

Activation patching needs one forward pass per patch. AtP estimates *all* of them from two
forward passes and one backward pass, with a first-order Taylor expansion of the metric
around the target run:

    metric(patched) ~= metric(target) + sum over the patched entries of (a_source - a_target) * d metric / d a_target

For ``direction="denoise"``: target = corrupted, source = clean (the default, as in
:func:`~mi_course.methods.activation_patching.activation_patching`). The results have the
same shapes and the same meaning (the estimated metric of each patched run), so the two can be
put side by side. AtP is good for small activations (head outputs) and poor for big ones
(the residual stream, early MLPs) and where attention saturates (Kramar et al.: AtP*).
"""

from __future__ import annotations

import torch

from mi_course.errors import InputError
from mi_course.methods.activation_patching import check_hook_names, check_pair, site
from mi_course.methods.metrics import Metric, check_metric
from mi_course import validation as check


def gradients(model, tokens: torch.Tensor, metric: Metric, hook_names: list[str], allow_missing: bool = False):
    """``(metric value, {hook: activation}, {hook: d metric / d activation})`` on ``tokens``.

    An activation that the metric does not depend on is an error, or, with ``allow_missing``,
    gets a zero gradient (edge attribution patching scores every node, used or not)."""
    check.tokens("tokens", tokens, model)
    acts: dict[str, torch.Tensor] = {}

    def keep(act, hook, name=None):
        act.retain_grad()
        acts[name] = act
        return act

    hooks = [(n, lambda act, hook, n=n: keep(act, hook, n)) for n in hook_names]
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
        value = check_metric(metric, logits)
        if not value.requires_grad:
            raise InputError("the metric's value does not depend on the logits through torch operations "
                             "(no gradient); compute it with torch, without .item() or .detach().")
        value.backward()
    missing = [n for n in hook_names if n not in acts or acts[n].grad is None]
    if missing and not (allow_missing and all(n in acts for n in missing)):
        raise InputError(f"no gradient reached {missing}: is the metric computed from these logits?")
    grads = {n: acts[n].grad.detach() if acts[n].grad is not None else torch.zeros_like(acts[n])
             for n in hook_names}
    model.zero_grad(set_to_none=True)
    return value.detach(), {n: acts[n].detach() for n in hook_names}, grads


def attribution_patching(
    model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, metric: Metric,
    activation: str = "z", by_pos: bool = False, direction: str = "denoise",
) -> torch.Tensor:
    """AtP estimate for every layer (x position) (x head) of ``activation``.

    Same arguments and output shapes as
    :func:`~mi_course.methods.activation_patching.activation_patching`.
    """
    check_pair(clean_tokens, corrupted_tokens, model)
    if direction not in ("denoise", "noise"):
        raise InputError(f"direction must be 'denoise' or 'noise', got {direction!r}")
    return attribution_patching_many(model, clean_tokens, corrupted_tokens, metric, [(activation, by_pos)],
                                     direction)[activation]


def attribution_patching_many(
    model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, metric: Metric,
    activations: list[tuple[str, bool]], direction: str = "denoise",
) -> dict[str, torch.Tensor]:
    """AtP for several ``(activation, by_pos)`` at once: still two forward and one backward pass.

    Returns ``{activation: estimate}`` with the shapes of :func:`attribution_patching`.
    """
    check_pair(clean_tokens, corrupted_tokens, model)
    if direction not in ("denoise", "noise"):
        raise InputError(f"direction must be 'denoise' or 'noise', got {direction!r}")
    sites = {a: site(a) for a, _ in activations}
    names = sorted({s.hook.format(layer=layer) for s in sites.values() for layer in range(model.cfg.n_layers)})
    check_hook_names(model, names)
    target, source_tokens = (corrupted_tokens, clean_tokens) if direction == "denoise" else (clean_tokens, corrupted_tokens)
    with torch.no_grad():
        logits, cache = model.run_with_cache(source_tokens, names_filter=lambda n: n in set(names))
        check_metric(metric, logits)
    base, acts, grads = gradients(model, target, metric, names)
    return {a: _reduce(model, sites[a], by_pos, base, cache, acts, grads) for a, by_pos in activations}


def _reduce(model, s, by_pos: bool, base, cache, acts, grads) -> torch.Tensor:
    names = [s.hook.format(layer=layer) for layer in range(model.cfg.n_layers)]
    per_layer = []
    for n in names:
        contrib = (cache[n] - acts[n]) * grads[n]  # same shape as the activation
        keep = [s.pos_dim] if by_pos else []
        if s.head_dim is not None:
            keep.append(s.head_dim)
        dims = [d for d in range(contrib.ndim) if d not in keep]
        out = contrib.sum(dim=dims)  # kept dims in their original order
        if s.head_dim is not None and by_pos and s.head_dim < s.pos_dim:
            out = out.transpose(0, 1)  # pattern is [b, head, q, k]: give [pos, head]
        per_layer.append(out)
    return base + torch.stack(per_layer)


def head_attributions(clean_z: torch.Tensor, corrupted_z: torch.Tensor, corrupted_grad: torch.Tensor) -> torch.Tensor:
    """AtP of every head from stacked ``hook_z`` values, ``[layer, batch, pos, head, d_head]`` each.

    Returns ``[layer, head]``: ``sum over batch, pos, d_head of (clean - corrupted) * grad``,
    the estimated change of the metric when the head's clean output is patched in.
    """
    from mi_course.errors import expect_shape

    expect_shape("clean_z", clean_z, (None, None, None, None, None), "Expected [layer, batch, pos, head, d_head].")
    expect_shape("corrupted_z", corrupted_z, tuple(clean_z.shape))
    expect_shape("corrupted_grad", corrupted_grad, tuple(clean_z.shape))
    return ((clean_z - corrupted_z) * corrupted_grad).sum(dim=(1, 2, 4))
