"""Names for the parts of a transformer that ablation, patching and circuit evaluation act on.

A :class:`Component` is a head, an MLP layer, one MLP neuron, an attention layer's output,
or the residual stream at one position, and knows which hook holds its activation:

====================  ==============================  ===================================
component             hook                            activation slice
====================  ==============================  ===================================
``head(L, H)``        ``blocks.L.attn.hook_z``        ``[:, pos?, H]``  of [b, p, head, d_head]
``mlp(L)``            ``blocks.L.hook_mlp_out``       ``[:, pos?]``     of [b, p, d_model]
``attn(L)``           ``blocks.L.hook_attn_out``      ``[:, pos?]``     of [b, p, d_model]
``neuron(L, N)``      ``blocks.L.mlp.hook_post``      ``[:, pos?, N]``  of [b, p, d_mlp]
``resid(L, pos)``     ``blocks.L.hook_resid_pre``     ``[:, pos]``      of [b, p, d_model]
====================  ==============================  ===================================

``pos=None`` means every position. A plain ``(layer, head)`` tuple is read as a head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from mi_course.errors import InputError
from mi_course.zoo import hooks as hk

KINDS = ("head", "mlp", "attn", "neuron", "resid")
# Each kind of component is one of the zoo's hook sites (mi_course.zoo.hooks.SITES): one table of places.
SITE_OF_KIND = {"head": "z", "mlp": "mlp_out", "attn": "attn_out", "neuron": "mlp_post", "resid": "resid_pre"}


@dataclass(frozen=True, order=True)
class Component:
    kind: str
    layer: int
    index: int | None = None  # head or neuron number
    pos: int | None = None  # one position, or None for all

    def __str__(self) -> str:
        at = "" if self.pos is None else f"@{self.pos}"
        if self.kind == "head":
            return f"{self.layer}.{self.index}{at}"
        if self.kind == "neuron":
            return f"MLP{self.layer}.n{self.index}{at}"
        if self.kind == "resid":
            return f"resid_pre{self.layer}{at}"
        return f"{self.kind.upper()}{self.layer}{at}"

    @property
    def hook_name(self) -> str:
        return hk.SITES[SITE_OF_KIND[self.kind]](self.layer)

    def index_tuple(self) -> tuple:
        """Index into the hook's activation ``[batch, pos, ...]`` selecting this component."""
        pos = slice(None) if self.pos is None else self.pos
        if self.kind in ("head", "neuron"):
            return (slice(None), pos, self.index)
        return (slice(None), pos)


def head(layer: int, h: int, pos: int | None = None) -> Component:
    return Component("head", int(layer), int(h), pos)


def mlp(layer: int, pos: int | None = None) -> Component:
    return Component("mlp", int(layer), None, pos)


def attn(layer: int, pos: int | None = None) -> Component:
    return Component("attn", int(layer), None, pos)


def neuron(layer: int, n: int, pos: int | None = None) -> Component:
    return Component("neuron", int(layer), int(n), pos)


def resid(layer: int, pos: int | None = None) -> Component:
    return Component("resid", int(layer), None, pos)


def all_heads(model) -> list[Component]:
    return [head(L, H) for L in range(model.cfg.n_layers) for H in range(model.cfg.n_heads)]


def all_mlps(model) -> list[Component]:
    return [mlp(L) for L in range(model.cfg.n_layers)]


def as_component(model, c) -> Component:
    """Validate ``c`` (a Component or a ``(layer, head)`` tuple) against ``model``'s shape."""
    if isinstance(c, tuple) and len(c) == 2 and all(isinstance(x, int) for x in c):
        c = head(*c)
    if not isinstance(c, Component):
        raise InputError(f"expected a Component (components.head(L, H), mlp(L), ...) or a (layer, head) "
                         f"tuple, got {c!r}")
    if c.kind not in KINDS:
        raise InputError(f"unknown component kind {c.kind!r}; kinds: {', '.join(KINDS)}")
    cfg = model.cfg
    if not 0 <= c.layer < cfg.n_layers:
        raise InputError(f"{c}: layer {c.layer} does not exist (the model has {cfg.n_layers} layers)")
    if c.kind == "head" and not (c.index is not None and 0 <= c.index < cfg.n_heads):
        raise InputError(f"head {c.layer}.{c.index} does not exist: {cfg.n_heads} heads per layer")
    if c.kind == "neuron" and not (c.index is not None and 0 <= c.index < cfg.d_mlp):
        raise InputError(f"{c}: neuron index must be in 0..{cfg.d_mlp - 1}")
    if c.kind in ("mlp", "neuron") and getattr(cfg, "attn_only", False):
        raise InputError(f"{c}: this model is attention-only and has no MLPs")
    if c.kind == "resid" and c.pos is None:
        raise InputError(f"{c}: a residual-stream component needs a position (resid(layer, pos))")
    return c


def as_components(model, cs: Iterable) -> list[Component]:
    if isinstance(cs, (Component, str)) or (isinstance(cs, tuple) and len(cs) == 2 and isinstance(cs[0], int)):
        cs = [cs]
    return [as_component(model, c) for c in cs]
