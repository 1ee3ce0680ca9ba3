"""Path patching (Wang et al. 2023; Goldowsky-Dill et al. 2023): the effect of a *path*.

Activation patching a head changes everything downstream of it. Path patching asks a narrower
question: how much does sender S matter *through* receiver R (a later head's queries, keys
or values, or the logits directly)?

1. Run the clean prompts with the senders' outputs taken from the corrupted run and every
   other head frozen at its clean output (MLPs too with ``freeze_mlps=True``), so the change
   can only travel directly (and through MLPs, unless frozen) into later layers.
2. Record the receivers' inputs (``hook_q/k/v``) in that run; for ``receivers="logits"``
   the logits of this run are the answer.
3. Run the clean prompts again with only the receivers' inputs replaced by the recorded ones,
   and read the metric.

The direction is "noising", as in the IOI paper: a large *drop* of the metric means the path
matters.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.activation_patching import check_pair
from mi_course.methods.components import Component, as_components
from mi_course.methods.metrics import Metric, check_metric
from mi_course.zoo import hooks as hk

INPUTS = ("q", "k", "v")


def _receiver_list(model, receivers, receiver_input) -> list[tuple[int, int, str]]:
    if isinstance(receiver_input, str):  # "q", or "qkv" for all three
        receiver_input = tuple(receiver_input) if set(receiver_input) <= set(INPUTS) else (receiver_input,)
    bad = [x for x in receiver_input if x not in INPUTS]
    if bad or not receiver_input:
        raise InputError(f"receiver_input must be one or more of {INPUTS}, got {receiver_input!r}")
    out = []
    for c in as_components(model, receivers):
        if c.kind != "head":
            raise InputError(f"receivers must be heads (or 'logits'), got {c}")
        out += [(c.layer, c.index, x) for x in receiver_input]
    if not out:
        raise InputError("no receivers given")
    return out


def _frozen_hooks(model, senders: list[Component], clean: dict, corrupted: dict, freeze_mlps: bool):
    """Hooks for step 1: senders from the corrupted run, every other head (and MLP) frozen clean."""
    hooks = []
    for layer in range(model.cfg.n_layers):
        name = hk.z(layer)
        heads = [c.index for c in senders if c.kind == "head" and c.layer == layer]

        def hz(act, hook, name=name, heads=heads):
            act = clean[name].clone()
            for h in heads:
                act[:, :, h] = corrupted[name][:, :, h]
            return act

        hooks.append((name, hz))
        mname = hk.mlp_out(layer)
        sender_mlp = any(c.kind == "mlp" and c.layer == layer for c in senders)
        if sender_mlp:
            hooks.append((mname, lambda act, hook, mname=mname: corrupted[mname].clone()))
        elif freeze_mlps:
            hooks.append((mname, lambda act, hook, mname=mname: clean[mname].clone()))
    return hooks


def _caches(model, clean_tokens, corrupted_tokens):
    names = set()
    for layer in range(model.cfg.n_layers):
        names |= {hk.z(layer), hk.mlp_out(layer)}
    keep = lambda n: n in names  # noqa: E731
    with torch.no_grad():
        clean_logits, c1 = model.run_with_cache(clean_tokens, names_filter=keep)
        _, c2 = model.run_with_cache(corrupted_tokens, names_filter=keep)
    return clean_logits, {n: c1[n] for n in names}, {n: c2[n] for n in names}


def path_patching(
    model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, metric: Metric,
    senders: Iterable, receivers: Sequence | str = "logits", receiver_input: str | Sequence[str] = ("q", "k", "v"),
    receiver_pos: int | None = None, freeze_mlps: bool = False, _caches_=None,
) -> torch.Tensor:
    """Metric (a scalar tensor) of the clean run with the path senders -> receivers corrupted.

    senders: heads/MLPs (``components.head(L, H)``, ``(L, H)``, ``components.mlp(L)``);
    receivers: ``"logits"`` or heads, whose ``receiver_input`` (``q``, ``k``, ``v``) are
    patched (at ``receiver_pos`` only, if given). Every receiver must be in a later layer than
    every sender.
    """
    check_pair(clean_tokens, corrupted_tokens, model)
    send = as_components(model, senders)
    if not send:
        raise InputError("no senders given")
    if any(c.kind not in ("head", "mlp") for c in send):
        raise InputError("senders must be heads or MLPs")
    clean_logits, clean, corrupted = _caches_ or _caches(model, clean_tokens, corrupted_tokens)
    check_metric(metric, clean_logits)
    hooks = _frozen_hooks(model, send, clean, corrupted, freeze_mlps)
    if isinstance(receivers, str):
        if receivers != "logits":
            raise InputError(f"receivers must be 'logits' or a list of heads, got {receivers!r}")
        with torch.no_grad():
            return check_metric(metric, model.run_with_hooks(clean_tokens, fwd_hooks=hooks))
    recv = _receiver_list(model, receivers, receiver_input)
    last_sender = max(c.layer for c in send)
    if min(layer for layer, _, _ in recv) <= last_sender:
        raise InputError("every receiver must be in a later layer than every sender (a path goes forward)")
    names = sorted({hk.name(x, layer) for layer, _, x in recv})
    with torch.no_grad():
        recorded = _record_with_hooks(model, clean_tokens, hooks, names)
    pos = slice(None) if receiver_pos is None else receiver_pos
    patch = []
    for name in names:
        heads = [h for layer, h, x in recv if hk.name(x, layer) == name]

        def hr(act, hook, name=name, heads=heads):
            act = act.clone()
            for h in heads:
                act[:, pos, h] = recorded[name][:, pos, h]
            return act

        patch.append((name, hr))
    with torch.no_grad():
        return check_metric(metric, model.run_with_hooks(clean_tokens, fwd_hooks=patch))


def _record_with_hooks(model, tokens, hooks, names) -> dict[str, torch.Tensor]:
    """Run with ``hooks`` and record the activations at ``names`` (after the hooks)."""
    store: dict[str, torch.Tensor] = {}
    rec = [(n, lambda act, hook, n=n: store.__setitem__(n, act.detach().clone())) for n in names]
    model.run_with_hooks(tokens, fwd_hooks=list(hooks) + rec)
    return store


def path_patching_sweep(
    model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, metric: Metric,
    receivers: Sequence | str = "logits", receiver_input: str | Sequence[str] = ("q", "k", "v"),
    receiver_pos: int | None = None, freeze_mlps: bool = False, progress: bool = True,
) -> torch.Tensor:
    """:func:`path_patching` with each head in turn as the sender: ``[layer, head]``.

    Heads that cannot send to the receivers (not in an earlier layer) are NaN.
    """
    check_pair(clean_tokens, corrupted_tokens, model)
    caches = _caches(model, clean_tokens, corrupted_tokens)
    L, H = model.cfg.n_layers, model.cfg.n_heads
    if isinstance(receivers, str):
        first = L
    else:
        first = min(c.layer for c in as_components(model, receivers))
    out = torch.full((L, H), float("nan"))
    items = [(layer, h) for layer in range(first) for h in range(H)]
    for layer, h in tqdm(items, desc="path patching", disable=not progress, leave=False):
        out[layer, h] = path_patching(model, clean_tokens, corrupted_tokens, metric, [(layer, h)], receivers,
                                      receiver_input, receiver_pos, freeze_mlps, _caches_=caches)
    return out
