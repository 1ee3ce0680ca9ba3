"""Feature splitting across dictionary sizes (Bricken et al. 2023, *Towards Monosemanticity*).

Train SAEs of several sizes on the same activation (say 256, 512, 1,024, 2,048 latents). A feature
of the small dictionary often reappears in the larger one as a *family*: several latents whose
decoder directions lie close to the small one's, each firing on a subset of its contexts (the
paper's example: one "base64" feature becomes several finer ones). This module measures that.

=========================  ====================================================================
step                       definition
=========================  ====================================================================
matching                   each latent of the larger SAE -> its nearest latent of the smaller
                           one by decoder cosine (:func:`nearest_parent`)
family tree                parent -> children with cosine >= ``threshold`` (:func:`family_tree`);
                           a *split*: a parent with >= 2 children
summary                    share of larger latents with a close match (cosine >= threshold),
                           mean max cosine, number of splits, children per split
                           (:func:`splitting_summary`)
activation sharing         on data, per family: P(parent on | child on) (children fire inside
                           the parent's contexts), P(child on | parent on), coverage
                           P(any child on | parent on), sibling overlap, the share of the
                           children's activation each child carries (:func:`activation_sharing`)
baseline                   the same summary for random unit decoders of the same shapes
                           (:func:`random_decoders_like`, :func:`splitting_report`)
=========================  ====================================================================

Shapes: a *decoder* is ``[n_latents, d]`` (one row per latent, as ``sae.W_dec``), or an SAE
(its ``decoder_directions`` are used); latents on data are ``[n_tokens, n_latents]``.

>>> tree = family_tree(sae_256, sae_1024, threshold=0.7)
>>> tree.families()[3]                       # [(child, cosine), ...] of parent 3
>>> activation_sharing(f_256[:, 3], f_1024[:, tree.children(3)])
>>> splitting_report([sae_256, sae_512, sae_1024], threshold=0.7)   # beside random decoders
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from mi_course.errors import InputError

__all__ = ["decoder_directions", "decoder_cosines", "nearest_parent", "SplitTree", "family_tree",
           "splitting_summary", "random_decoders_like", "splitting_report", "activation_sharing",
           "family_sharing"]


# ------------------------------------------------------------------------------------- matching
def decoder_directions(decoder, name: str = "decoder") -> torch.Tensor:
    """``[n_latents, d]`` unit decoder rows of ``decoder`` (a 2-D tensor or an SAE)."""
    if hasattr(decoder, "decoder_directions"):
        decoder = decoder.decoder_directions
    if not isinstance(decoder, torch.Tensor):
        raise InputError(f"{name} must be a decoder [n_latents, d] (a tensor) or an SAE, got {type(decoder).__name__}")
    if decoder.ndim != 2 or decoder.shape[0] < 1 or decoder.shape[1] < 1:
        raise InputError(f"{name} must be a decoder [n_latents, d], got shape {list(decoder.shape)}")
    d = decoder.detach().float()
    if not torch.isfinite(d).all():
        raise InputError(f"{name} holds NaN or inf")
    return d / d.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def decoder_cosines(small, large) -> torch.Tensor:
    """``[n_large, n_small]`` cosines between every decoder row of ``large`` and of ``small``."""
    s, l = decoder_directions(small, "small"), decoder_directions(large, "large")
    if s.shape[1] != l.shape[1]:
        raise InputError(f"the decoders live in different spaces: small has d={s.shape[1]}, large d={l.shape[1]} "
                         "(SAEs of one activation share d)")
    return l @ s.T


def nearest_parent(small, large) -> tuple[torch.Tensor, torch.Tensor]:
    """For each latent of ``large``, its nearest latent of ``small`` by decoder cosine.

    Returns ``(parent LongTensor [n_large], cosine [n_large])``. Cosines are signed: a latent whose
    direction is opposite to another's is not its refinement.
    """
    cos = decoder_cosines(small, large)
    best = cos.max(dim=-1)
    return best.indices, best.values


@dataclass
class SplitTree:
    """The matching of a larger SAE's latents to a smaller one's, and the families it implies.

    ``parent`` ``[n_large]`` (nearest smaller latent), ``cos`` ``[n_large]`` (its cosine),
    ``n_small``, ``threshold`` (a child needs ``cos >= threshold``).
    """

    parent: torch.Tensor
    cos: torch.Tensor
    n_small: int
    threshold: float

    def children(self, parent: int) -> list[int]:
        """Latents of the larger SAE whose nearest parent is ``parent`` with cosine >= threshold, best first."""
        if not isinstance(parent, int) or isinstance(parent, bool) or not 0 <= parent < self.n_small:
            raise InputError(f"parent must be an int in 0..{self.n_small - 1}, got {parent!r}")
        idx = ((self.parent == parent) & (self.cos >= self.threshold)).nonzero()[:, 0]
        return idx[self.cos[idx].argsort(descending=True)].tolist()

    def families(self) -> dict[int, list[tuple[int, float]]]:
        """``{parent: [(child, cosine), ...]}`` for every parent with at least one close child."""
        out: dict[int, list[tuple[int, float]]] = {}
        close = (self.cos >= self.threshold).nonzero()[:, 0]
        for c in close[self.cos[close].argsort(descending=True)].tolist():
            out.setdefault(int(self.parent[c]), []).append((c, float(self.cos[c])))
        return dict(sorted(out.items()))

    def n_children(self) -> torch.Tensor:
        """``[n_small]`` number of close children of each parent."""
        close = self.cos >= self.threshold
        return torch.bincount(self.parent[close], minlength=self.n_small)

    def splits(self) -> list[int]:
        """Parents with two or more close children (the features that split), most children first."""
        n = self.n_children()
        idx = (n >= 2).nonzero()[:, 0]
        return idx[n[idx].argsort(descending=True, stable=True)].tolist()


def _threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1 <= threshold <= 1:
        raise InputError(f"threshold must be a cosine in [-1, 1], got {threshold!r}")
    return float(threshold)


def family_tree(small, large, threshold: float = 0.7) -> SplitTree:
    """Match every latent of ``large`` to its nearest latent of ``small`` (decoder cosine) and
    group the close ones (cosine >= ``threshold``) under their parents."""
    threshold = _threshold(threshold)
    parent, cos = nearest_parent(small, large)
    return SplitTree(parent, cos, decoder_directions(small, "small").shape[0], threshold)


# -------------------------------------------------------------------------------------- summary
def _pair_summary(small: torch.Tensor, large: torch.Tensor, threshold: float) -> dict:
    tree = family_tree(small, large, threshold)
    n_ch = tree.n_children()
    split = n_ch >= 2
    return {
        "sizes": [small.shape[0], large.shape[0]],
        "close_share": float((tree.cos >= threshold).float().mean()),
        "mean_max_cos": float(tree.cos.mean()),
        "n_splits": int(split.sum()),
        "split_share": float(split.float().mean()),
        "children_per_split": float(n_ch[split].float().mean()) if split.any() else 0.0,
        "parents_with_a_child": float((n_ch >= 1).float().mean()),
    }


def splitting_summary(decoders: Sequence, threshold: float = 0.7) -> list[dict]:
    """One row per consecutive pair of ``decoders`` (smallest first; tensors ``[n_i, d]`` or SAEs).

    Each row: ``sizes`` [n_small, n_large]; ``close_share`` (share of the larger SAE's latents with a
    parent at cosine >= ``threshold``); ``mean_max_cos`` (mean over the larger SAE's latents of the
    best cosine); ``n_splits`` (parents with >= 2 close children), ``split_share`` (the same as a
    share of the smaller SAE's latents), ``children_per_split``; ``parents_with_a_child`` (share of
    the smaller SAE's latents that reappear at all).
    """
    threshold = _threshold(threshold)
    if isinstance(decoders, torch.Tensor) or not isinstance(decoders, (list, tuple)) or len(decoders) < 2:
        raise InputError("decoders must be a list of at least two decoders [n_i, d] (or SAEs), smallest first")
    dirs = [decoder_directions(d, f"decoders[{i}]") for i, d in enumerate(decoders)]
    if len({d.shape[1] for d in dirs}) > 1:
        raise InputError(f"the decoders live in different spaces: d = {[d.shape[1] for d in dirs]}")
    if any(a.shape[0] > b.shape[0] for a, b in zip(dirs, dirs[1:])):
        raise InputError(f"order the decoders smallest first, got sizes {[d.shape[0] for d in dirs]}")
    return [_pair_summary(a, b, threshold) for a, b in zip(dirs, dirs[1:])]


def random_decoders_like(decoders: Sequence, seed: int = 0) -> list[torch.Tensor]:
    """Random unit decoders ``[n_i, d]`` of the same shapes as ``decoders``: the chance level."""
    if isinstance(decoders, torch.Tensor) or not isinstance(decoders, (list, tuple)) or not decoders:
        raise InputError("decoders must be a non-empty list of decoders [n_i, d] (or SAEs)")
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, d in enumerate(decoders):
        n, dim = decoder_directions(d, f"decoders[{i}]").shape
        r = torch.randn(n, dim, generator=g)
        out.append(r / r.norm(dim=-1, keepdim=True))
    return out


def splitting_report(decoders: Sequence, threshold: float = 0.7, seed: int = 0) -> dict:
    """``{"trained": splitting_summary(decoders), "random": the same for random decoders of the same shapes}``."""
    return {"trained": splitting_summary(decoders, threshold),
            "random": splitting_summary(random_decoders_like(decoders, seed), threshold), "threshold": threshold}


# --------------------------------------------------------------------------- activation sharing
def activation_sharing(parent_acts: torch.Tensor, child_acts: torch.Tensor) -> dict:
    """How a parent latent's contexts are shared among its children, on the same tokens.

    ``parent_acts`` ``[n]`` (the smaller SAE's latent), ``child_acts`` ``[n, n_children]`` (the larger
    SAE's latents in its family). A latent is *on* where its activation is > 0. Returns:

    - ``within_parent`` ``[n_children]``: P(parent on | child on): near 1 when each child fires on a
      subset of the parent's contexts (0 for a child that never fires);
    - ``share_of_parent`` ``[n_children]``: P(child on | parent on);
    - ``coverage``: P(any child on | parent on);
    - ``sibling_overlap``: mean over pairs of children of P(both on | either on) (0 with < 2 children);
    - ``activation_share`` ``[n_children]``: each child's share of the children's summed activation on
      the parent's contexts;
    - ``parent_frequency``, ``child_frequency`` ``[n_children]``: firing rates over all ``n`` tokens.
    """
    if not isinstance(parent_acts, torch.Tensor) or not isinstance(child_acts, torch.Tensor):
        raise InputError("parent_acts and child_acts must be tensors ([n] and [n, n_children])")
    if parent_acts.ndim != 1:
        raise InputError(f"parent_acts must be one latent's activations [n], got shape {list(parent_acts.shape)}")
    if child_acts.ndim == 1:
        child_acts = child_acts[:, None]
    if child_acts.ndim != 2 or child_acts.shape[0] != parent_acts.shape[0]:
        raise InputError(f"child_acts must be [n, n_children] with n={parent_acts.shape[0]} (the same tokens), "
                         f"got shape {list(child_acts.shape)}")
    if parent_acts.shape[0] == 0:
        raise InputError("parent_acts is empty: pass activations on at least one token")
    p_on = parent_acts > 0
    c_on = child_acts > 0
    pf, cf = p_on.float(), c_on.float()
    within = (cf * pf[:, None]).sum(0) / cf.sum(0).clamp_min(1)
    share = (cf * pf[:, None]).sum(0) / pf.sum().clamp_min(1)
    coverage = float(c_on[p_on].any(-1).float().mean()) if p_on.any() else 0.0
    k = c_on.shape[1]
    if k >= 2:
        both = cf.T @ cf                                       # [k, k] tokens where both fire
        either = cf.sum(0)[:, None] + cf.sum(0)[None, :] - both
        iu = torch.triu_indices(k, k, 1)
        sib = float((both[iu[0], iu[1]] / either[iu[0], iu[1]].clamp_min(1)).mean())
    else:
        sib = 0.0
    mass = child_acts.float().clamp_min(0)[p_on].sum(0)
    return {"within_parent": within, "share_of_parent": share, "coverage": coverage, "sibling_overlap": sib,
            "activation_share": mass / mass.sum().clamp_min(1e-12),
            "parent_frequency": float(pf.mean()), "child_frequency": cf.mean(0)}


def family_sharing(tree: SplitTree, small_latents: torch.Tensor, large_latents: torch.Tensor,
                   parents: Sequence[int] | None = None) -> dict[int, dict]:
    """:func:`activation_sharing` of every family of ``tree`` (or of ``parents``) with >= 1 child.

    ``small_latents`` ``[n, n_small]`` and ``large_latents`` ``[n, n_large]``: both SAEs' latents
    on the same ``n`` tokens. Returns ``{parent: {"children": [...], "cos": [...], **sharing}}``.
    """
    if not isinstance(tree, SplitTree):
        raise InputError(f"tree must be a SplitTree (from family_tree), got {type(tree).__name__}")
    for name, t, n in (("small_latents", small_latents, tree.n_small), ("large_latents", large_latents, len(tree.parent))):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != n:
            raise InputError(f"{name} must be [n_tokens, {n}], got {list(getattr(t, 'shape', [])) or type(t).__name__}")
    if small_latents.shape[0] != large_latents.shape[0]:
        raise InputError(f"small_latents cover {small_latents.shape[0]} tokens, large_latents {large_latents.shape[0]}")
    fams = tree.families()
    out = {}
    for p in (sorted(fams) if parents is None else [int(p) for p in parents]):
        kids = tree.children(p)
        if not kids:
            continue
        s = activation_sharing(small_latents[:, p], large_latents[:, kids])
        out[p] = {"children": kids, "cos": [round(float(tree.cos[c]), 4) for c in kids], **s}
    return out
