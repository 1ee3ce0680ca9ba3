"""Names of the hook points of the zoo's models: the one place the package spells them.

TransformerLens 4's ``TransformerBridge`` keeps the classic names (``blocks.L.hook_resid_pre``,
``blocks.L.attn.hook_z``, ...). Build them here instead of by hand:

>>> from mi_course.zoo import hooks
>>> hooks.resid_pre(1), hooks.z(0), hooks.mlp_post(2)
('blocks.1.hook_resid_pre', 'blocks.0.attn.hook_z', 'blocks.2.mlp.hook_post')
>>> model.run_with_cache(tokens, names_filter=hooks.only("pattern"))

:data:`SITES` is the table of per-layer activations: for each, its hook and which dimensions of the
activation are heads and positions (activation patching, attribution patching and the components
of :mod:`mi_course.methods.components` all read it).

==============  ==================================  ==============================
site            hook (layer L)                      activation
==============  ==================================  ==============================
``resid_pre``   ``blocks.L.hook_resid_pre``         ``[batch, pos, d_model]``
``resid_mid``   ``blocks.L.hook_resid_mid``         ``[batch, pos, d_model]``
``resid_post``  ``blocks.L.hook_resid_post``        ``[batch, pos, d_model]``
``attn_out``    ``blocks.L.hook_attn_out``          ``[batch, pos, d_model]``
``mlp_out``     ``blocks.L.hook_mlp_out``           ``[batch, pos, d_model]``
``q/k/v/z``     ``blocks.L.attn.hook_q`` ...        ``[batch, pos, head, d_head]``
``pattern``     ``blocks.L.attn.hook_pattern``      ``[batch, head, query, key]``
``attn_scores`` ``blocks.L.attn.hook_attn_scores``  ``[batch, head, query, key]``
``mlp_in``      ``blocks.L.mlp.hook_in``            ``[batch, pos, d_model]``
``mlp_pre``     ``blocks.L.mlp.hook_pre``           ``[batch, pos, d_mlp]``
``mlp_post``    ``blocks.L.mlp.hook_post``          ``[batch, pos, d_mlp]``
==============  ==================================  ==============================

Not per layer: :data:`EMBED`, :data:`POS_EMBED`, :data:`FINAL_IN`, :data:`FINAL_SCALE`, :data:`FINAL_OUT`.
Inside a hook, ``hook.name`` is the bridge's *internal* name: never parse it, compare with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mi_course.errors import InputError

EMBED = "hook_embed"
POS_EMBED = "hook_pos_embed"
FINAL_IN = "ln_final.hook_in"  # the residual stream after the last layer, before the final LayerNorm
FINAL_SCALE = "ln_final.hook_scale"
FINAL_OUT = "ln_final.hook_out"


def _layer(layer) -> int:
    from mi_course.validation import integer

    try:
        return integer("layer", layer, 0)
    except InputError as err:
        raise InputError(f"a layer number must be an int >= 0, got {layer!r} ({type(layer).__name__})") from err


@dataclass(frozen=True)
class Site:
    """A per-layer activation: ``hook`` is the name's template (``{layer}``), ``head_dim`` the dimension
    of heads (``None``: no heads), ``pos_dim`` the dimension of (query) positions."""

    hook: str
    head_dim: int | None
    pos_dim: int

    def __call__(self, layer: int) -> str:
        """The hook name at ``layer``."""
        return self.hook.format(layer=_layer(layer))

    @property
    def suffix(self) -> str:
        return self.hook.split("{layer}.", 1)[1]

    def matches(self, name: str) -> bool:
        """Whether hook name ``name`` is this site at some layer."""
        return name.startswith("blocks.") and name.endswith("." + self.suffix)


SITES: dict[str, Site] = {
    "resid_pre": Site("blocks.{layer}.hook_resid_pre", None, 1),
    "resid_mid": Site("blocks.{layer}.hook_resid_mid", None, 1),
    "resid_post": Site("blocks.{layer}.hook_resid_post", None, 1),
    "attn_out": Site("blocks.{layer}.hook_attn_out", None, 1),
    "mlp_out": Site("blocks.{layer}.hook_mlp_out", None, 1),
    "z": Site("blocks.{layer}.attn.hook_z", 2, 1),
    "q": Site("blocks.{layer}.attn.hook_q", 2, 1),
    "k": Site("blocks.{layer}.attn.hook_k", 2, 1),
    "v": Site("blocks.{layer}.attn.hook_v", 2, 1),
    "pattern": Site("blocks.{layer}.attn.hook_pattern", 1, 2),
    "attn_scores": Site("blocks.{layer}.attn.hook_attn_scores", 1, 2),
    "mlp_in": Site("blocks.{layer}.mlp.hook_in", None, 1),
    "mlp_pre": Site("blocks.{layer}.mlp.hook_pre", None, 1),
    "mlp_post": Site("blocks.{layer}.mlp.hook_post", None, 1),
    "ln1_scale": Site("blocks.{layer}.ln1.hook_scale", None, 1),
}

resid_pre = SITES["resid_pre"]
resid_mid = SITES["resid_mid"]
resid_post = SITES["resid_post"]
attn_out = SITES["attn_out"]
mlp_out = SITES["mlp_out"]
z = SITES["z"]
q = SITES["q"]
k = SITES["k"]
v = SITES["v"]
pattern = SITES["pattern"]
attn_scores = SITES["attn_scores"]
mlp_in = SITES["mlp_in"]
mlp_pre = SITES["mlp_pre"]
mlp_post = SITES["mlp_post"]
ln1_scale = SITES["ln1_scale"]


def site(name: str) -> Site:
    """The :class:`Site` called ``name`` (``"resid_pre"``, ``"z"``, ...), or a clear error."""
    if name not in SITES:
        raise InputError(f"unknown activation {name!r}; choose one of {', '.join(SITES)}")
    return SITES[name]


def name(site_name: str, layer: int) -> str:
    """``name("z", 1) == "blocks.1.attn.hook_z"``."""
    return site(site_name)(layer)


def only(*site_names: str) -> Callable[[str], bool]:
    """A ``names_filter`` for ``run_with_cache`` keeping the given sites at every layer."""
    chosen = [site(s) for s in site_names]
    return lambda n: any(s.matches(n) for s in chosen)


def at_layers(site_name: str, layers) -> list[str]:
    """The hook names of one site at each of ``layers``."""
    s = site(site_name)
    return [s(layer) for layer in layers]
