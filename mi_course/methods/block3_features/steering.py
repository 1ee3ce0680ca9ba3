"""Steering a model with an SAE feature or with a difference-of-means vector, and what it costs.

Two ways to push a model towards a behaviour by editing one activation during the forward pass:

- **Feature steering** (Templeton et al. 2024, Scaling Monosemanticity; "Golden Gate Claude"):
  take latent ``i`` of an SAE at ``hook_name`` and either *add* its decoder direction,
  ``x <- x + s * W_dec[i]``, or *clamp* the latent, ``x <- x + (v - f_i(x)) * W_dec[i]``
  (the latent reads ``v`` afterwards; everything else, the SAE's error included, is kept).
- **Activation addition** (Turner et al. 2023, ActAdd; Rimsky et al. 2024, CAA): the
  difference of the mean activations at ``hook_name`` on two prompt sets (with and without the
  behaviour), added with a strength ``s``.

Both are measured the same way (:func:`sweep`): the change of a *behaviour score* (e.g. the
log-odds of a target token) against the *damage*: the increase of the next-token loss on
held-out text with the same hook on. A steering method is better if it buys more behaviour for
less damage; compare at equal damage, not at equal strength.

Shapes: ``tokens`` ``[batch, pos]``, vectors ``[d]`` (the hook's last dimension), activations
``[batch, pos, d]``. Hooks are TransformerLens ``fwd_hooks`` pairs ``(hook_name, fn)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from mi_course.errors import InputError

__all__ = ["feature_vector", "add_vector_hook", "clamp_latent_hook", "diff_of_means", "target_logit_diff",
           "target_logprob", "top_prediction_share", "heldout_loss", "generate", "sweep",
           "behaviour_at_damage"]

Positions = int | Sequence[int] | None


def _check_vector(v: torch.Tensor, name: str = "vector") -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.ndim != 1:
        raise InputError(f"{name} must be a 1-D tensor [d], got {getattr(v, 'shape', type(v))}")
    if not torch.isfinite(v).all():
        raise InputError(f"{name} has non-finite entries")
    return v


def _check_latent(sae, latent: int) -> int:
    if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < sae.d_sae:
        raise InputError(f"latent must be an int in 0..{sae.d_sae - 1}, got {latent!r}")
    return latent


def _position_index(positions: Positions, n_pos: int):
    if positions is None:
        return slice(None)
    idx = [positions] if isinstance(positions, int) else list(positions)
    for p in idx:
        if not -n_pos <= p < n_pos:
            raise InputError(f"position {p} is outside the {n_pos} positions of the input")
    return idx


def feature_vector(sae, latent: int) -> torch.Tensor:
    """``[d]``: what one unit of ``latent`` adds to the SAE's reconstruction, in the model's units
    (``W_dec[latent] / output_scale``). For a transcoder, a direction in the MLP's output."""
    _check_latent(sae, latent)
    return (sae.W_dec[latent] / sae.output_scale).detach()


def add_vector_hook(vector: torch.Tensor, strength: float = 1.0, positions: Positions = None) -> Callable:
    """A hook adding ``strength * vector`` (``[d]``) to the activation at ``positions`` (default: all)."""
    _check_vector(vector)
    strength = float(strength)

    def hook(act, hook=None):
        if act.shape[-1] != vector.shape[0]:
            raise InputError(f"vector has dimension {vector.shape[0]}, the activation {act.shape[-1]}")
        idx = _position_index(positions, act.shape[1])
        act = act.clone()
        act[:, idx] = act[:, idx] + strength * vector.to(act.dtype)
        return act

    return hook


def clamp_latent_hook(sae, latent: int, value: float, positions: Positions = None) -> Callable:
    """A hook that sets SAE latent ``latent`` to ``value`` at ``positions`` (default: all), keeping the
    rest of the activation (other latents and the SAE's error term): ``x + (value - f_i(x)) * W_dec[i]``.
    ``value = 0`` ablates the feature; a large value is Templeton et al.'s clamping."""
    _check_latent(sae, latent)
    value = float(value)
    direction = feature_vector(sae, latent)

    def hook(act, hook=None):
        idx = _position_index(positions, act.shape[1])
        act = act.clone()
        sel = act[:, idx]
        f = sae.encode(sel)[..., latent].detach()
        act[:, idx] = sel + (value - f)[..., None] * direction.to(act.dtype)
        return act

    return hook


@torch.no_grad()
def diff_of_means(model, hook_name: str, tokens_with: torch.Tensor, tokens_without: torch.Tensor,
                  position: int | None = -1) -> torch.Tensor:
    """``[d]``: mean activation at ``hook_name`` over ``tokens_with`` minus over ``tokens_without``
    (``[n, pos]`` each), at ``position`` (default the last) or averaged over all positions but the
    first (``position=None``)."""
    acts = []
    for name, t in (("tokens_with", tokens_with), ("tokens_without", tokens_without)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[0] == 0:
            raise InputError(f"{name} must be a non-empty [n, pos] tensor, got {getattr(t, 'shape', type(t))}")
        _, cache = model.run_with_cache(t, names_filter=lambda n: n == hook_name)
        if hook_name not in cache:
            raise InputError(f"the model has no activation named {hook_name!r}")
        a = cache[hook_name].float()
        acts.append(a[:, position].mean(0) if position is not None else a[:, 1:].reshape(-1, a.shape[-1]).mean(0))
    return acts[0] - acts[1]


def _logits(model, tokens: torch.Tensor, fwd_hooks) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        raise InputError(f"tokens must be [batch, pos], got {getattr(tokens, 'shape', type(tokens))}")
    return model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks)).float()


@torch.no_grad()
def target_logit_diff(model, tokens: torch.Tensor, target: int, other: int, fwd_hooks=(),
                      last: torch.Tensor | None = None) -> float:
    """Mean over prompts of ``logit[target] - logit[other]`` at each prompt's last position
    (``last`` ``[batch]``, default the final position): a behaviour score (log-odds of two tokens)."""
    logits = _logits(model, tokens, fwd_hooks)
    rows = torch.arange(tokens.shape[0])
    pos = last if last is not None else torch.full((tokens.shape[0],), tokens.shape[1] - 1)
    lg = logits[rows, pos]
    return float((lg[:, target] - lg[:, other]).mean())


@torch.no_grad()
def target_logprob(model, tokens: torch.Tensor, targets: Sequence[int], fwd_hooks=(),
                   last: torch.Tensor | None = None) -> float:
    """Mean over prompts of ``log P(next token in targets)`` at each prompt's last position."""
    if not len(targets):
        raise InputError("targets is empty")
    logits = _logits(model, tokens, fwd_hooks)
    rows = torch.arange(tokens.shape[0])
    pos = last if last is not None else torch.full((tokens.shape[0],), tokens.shape[1] - 1)
    lp = logits[rows, pos].log_softmax(-1)
    return float(lp[:, list(targets)].logsumexp(-1).mean())


def top_prediction_share(logits: torch.Tensor, targets: Sequence[int]) -> float:
    """Share of positions whose top prediction (argmax) is one of ``targets``: what the model would *say*.

    ``logits`` ``[batch, pos, d_vocab]``; the first position (the prediction right after
    ``<|endoftext|>``) is left out. Beside ``log P(target)``, this is the steering metric a push that
    only flattens the distribution cannot fake: flattening raises every rare token's log-probability
    but makes none of them the top choice.
    """
    if logits.ndim != 3 or logits.shape[1] < 2:
        raise InputError(f"logits must be [batch, pos >= 2, d_vocab], got shape {list(logits.shape)}")
    ids = torch.as_tensor(list(targets), dtype=torch.long)
    if not len(ids):
        raise InputError("targets is empty")
    if int(ids.min()) < 0 or int(ids.max()) >= logits.shape[-1]:
        raise InputError(f"target ids must lie in [0, {logits.shape[-1]}), got {ids.tolist()}")
    return float(torch.isin(logits[:, 1:].argmax(-1), ids.to(logits.device)).float().mean())


@torch.no_grad()
def heldout_loss(model, tokens: torch.Tensor, fwd_hooks=(), pad_id: int | None = None) -> float:
    """Mean next-token cross-entropy on ``tokens`` ``[n, pos]`` with ``fwd_hooks`` on (targets equal to
    ``pad_id`` are left out): the damage a steering hook does to ordinary text."""
    logits = _logits(model, tokens, fwd_hooks)
    lp = logits[:, :-1].log_softmax(-1)
    tgt = tokens[:, 1:]
    nll = -lp.gather(-1, tgt[..., None])[..., 0]
    mask = torch.ones_like(tgt, dtype=torch.bool) if pad_id is None else tgt != pad_id
    if not mask.any():
        raise InputError("no target token left after leaving out padding")
    return float(nll[mask].mean())


def generate(model, tokens: torch.Tensor, n_new: int, fwd_hooks=()) -> torch.Tensor:
    """Greedy generation ``[batch, pos + n_new]`` with the steering hooks on at every step."""
    from mi_course.methods.toolkit import generate_with_hooks

    return generate_with_hooks(model, tokens, n_new, fwd_hooks)


def sweep(hook_name: str, make_hook: Callable[[float], Callable], strengths: Sequence[float],
          behaviour: Callable[[list], float], damage: Callable[[list], float]) -> list[dict]:
    """For each strength ``s``: hooks ``[(hook_name, make_hook(s))]``; ``behaviour(hooks)`` and
    ``damage(hooks)`` (e.g. :func:`target_logit_diff` and :func:`heldout_loss` with the other
    arguments bound). Returns rows ``{strength, behaviour, damage, d_behaviour, d_damage}``, the
    deltas against no hook at all.

    >>> rows = sweep(hooks.resid_pre(3), lambda s: add_vector_hook(v, s), [0, 2, 4, 8],
    ...              lambda h: target_logit_diff(model, prompts, she, he, h),
    ...              lambda h: heldout_loss(model, text, h, pad_id=0))
    """
    if not len(strengths):
        raise InputError("strengths is empty")
    b0, d0 = behaviour([]), damage([])
    rows = []
    for s in strengths:
        hooks = [(hook_name, make_hook(float(s)))]
        b, d = behaviour(hooks), damage(hooks)
        rows.append({"strength": float(s), "behaviour": b, "damage": d, "d_behaviour": b - b0, "d_damage": d - d0})
    return rows


def behaviour_at_damage(rows: list[dict], damage: float) -> float:
    """The behaviour change a :func:`sweep` buys at a given damage (``d_damage``), by linear
    interpolation between its strengths (sorted by damage; ``nan`` beyond the largest damage measured).
    Compare two steering methods with this at the same damage, not at the same strength."""
    if not rows or not all({"d_damage", "d_behaviour"} <= set(r) for r in rows):
        raise InputError("rows must be the output of sweep (dicts with d_damage and d_behaviour)")
    pts = sorted([(0.0, 0.0)] + [(r["d_damage"], r["d_behaviour"]) for r in rows])
    damage = float(damage)
    if damage > pts[-1][0]:
        return float("nan")
    for (d0, b0), (d1, b1) in zip(pts, pts[1:]):
        if d0 <= damage <= d1:
            return b0 if d1 == d0 else b0 + (b1 - b0) * (damage - d0) / (d1 - d0)
    return pts[0][1]
