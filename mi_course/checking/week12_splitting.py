"""Checkers for week 12's feature-splitting exercises (Bricken et al. 2023): SAEs of several sizes on
one activation, the larger one's latents matched to the smaller one's by decoder cosine.

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.feature_splitting`) on fixed and random cases built from a planted
hierarchy (parents, children that are small perturbations of them), and recognises the common
mistakes listed with each exercise. Gathered into ``week12.EXERCISES``.

===============================  ====  ==========================================================
exercise                         ★     what you write
===============================  ====  ==========================================================
``nearest_parent``               ★★    each larger-SAE latent's nearest smaller-SAE latent and
                                       its (signed) decoder cosine
``count_splits``                 ★     parents with two or more children above a cosine threshold
``within_parent``                ★     P(parent on | child on) for each child, on data
===============================  ====  ==========================================================
"""

from __future__ import annotations

import torch

from mi_course.checking import core
from mi_course.checking.core import Case, Exercise, Mistake, yours_or_reference  # noqa: F401
from mi_course.data.planted_features import PlantedHierarchy
from mi_course.methods import feature_splitting as fs


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- 1. nearest parent by decoder cosine ------------------------------------------------------------
def nearest_parent(small_decoder: torch.Tensor, large_decoder: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(parent LongTensor [n_large], cosine [n_large])``: for each row of ``large_decoder``
    ``[n_large, d]``, the row of ``small_decoder`` ``[n_small, d]`` with the largest cosine, and that cosine."""
    return fs.nearest_parent(small_decoder, large_decoder)


def _parent_cases(seed: int) -> list[Case]:
    """Small decoder: planted parents with unequal norms (plus a few unrelated rows); large decoder: the
    children, shuffled, plus rows nearly opposite to a parent (a negative cosine larger in size than any
    positive one)."""
    g = _g(seed)
    out = []
    sizes = [(16, 5, 3), (24, 6, 2)] if seed == 0 else [(int(torch.randint(12, 33, (1,), generator=g)),
                                                         int(torch.randint(3, 8, (1,), generator=g)),
                                                         int(torch.randint(2, 5, (1,), generator=g)))]
    for d, n_par, n_ch in sizes:
        h = PlantedHierarchy(d=d, n_parents=n_par, n_children=n_ch, spread=0.7, seed=int(torch.randint(0, 10**6, (1,), generator=g)))
        norms = torch.rand(n_par + 2, 1, generator=g) * 3 + 0.3
        small = torch.cat([h.parents, torch.randn(2, d, generator=g)])
        small = small / small.norm(dim=-1, keepdim=True) * norms
        opposite = -h.parents[:2] + 0.1 * torch.randn(2, d, generator=g)
        large = torch.cat([h.child_directions, opposite])
        large = large[torch.randperm(large.shape[0], generator=g)] * (torch.rand(large.shape[0], 1, generator=g) + 0.5)
        out.append(Case(f"seed {seed}, d={d}, {n_par} parents x {n_ch} children", {
            "small_decoder": small, "large_decoder": large}))
    return out


def _np_dot(small_decoder, large_decoder):
    sims = large_decoder @ small_decoder.T
    best = sims.max(-1)
    return best.indices, best.values


def _np_wrong_way(small_decoder, large_decoder):
    s = small_decoder / small_decoder.norm(dim=-1, keepdim=True)
    l = large_decoder / large_decoder.norm(dim=-1, keepdim=True)
    best = (s @ l.T).max(-1)                 # each SMALL latent's nearest large one
    return best.indices, best.values


def _np_abs(small_decoder, large_decoder):
    s = small_decoder / small_decoder.norm(dim=-1, keepdim=True)
    l = large_decoder / large_decoder.norm(dim=-1, keepdim=True)
    best = (l @ s.T).abs().max(-1)
    return best.indices, best.values


NEAREST_PARENT = Exercise(
    id="w12_nearest_parent",
    title="nearest_parent",
    reference=nearest_parent,
    cases=_parent_cases,
    mistakes=[
        Mistake("dot products, not cosines", _np_dot,
                "normalise the decoder rows to unit length first: decoder norms differ between latents (and "
                "between SAEs), and a long row would win every match."),
        Mistake("matched the wrong way round", _np_wrong_way,
                "match each latent of the LARGER SAE to its nearest latent of the smaller one: the result has "
                "one entry per row of large_decoder (n_large), the max is over the smaller SAE's latents."),
        Mistake("absolute cosine", _np_abs,
                "keep the sign: a latent pointing OPPOSITE to another (cosine near -1) is not its refinement. "
                "Take the max of the signed cosine."),
    ],
    hint="compare directions: normalise the rows of both decoders, then get one cosine per (large latent, small "
         "latent) pair, [n_large, n_small]; for each large latent, its best small latent and that cosine.",
)


def check_nearest_parent(fn, seed: int | None = None) -> bool:
    """Check ``nearest_parent(small_decoder [n_small, d], large_decoder [n_large, d]) -> (parent [n_large], cos [n_large])``."""
    return core.check(NEAREST_PARENT, fn, seed)


# -- 2. counting splits -----------------------------------------------------------------------------
def count_splits(parent: torch.Tensor, cos: torch.Tensor, n_small: int, threshold: float) -> int:
    """Number of parents (of ``n_small``) with at least two children: larger-SAE latents whose nearest
    parent it is (``parent [n_large]``) with cosine ``cos [n_large]`` >= ``threshold``."""
    return len(fs.SplitTree(parent, cos, n_small, threshold).splits())


def _split_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for threshold in ([0.6, 0.8] if seed == 0 else [round(float(torch.rand(1, generator=g)) * 0.4 + 0.5, 2)]):
        n_small = int(torch.randint(6, 12, (1,), generator=g))
        n_large = n_small * 3
        perm = torch.randperm(n_small, generator=g)
        parent = perm[2:][torch.randint(0, n_small - 2, (n_large,), generator=g)]
        cos = torch.rand(n_large, generator=g) * 0.8 + 0.2
        parent[:4] = perm[0]                         # a split, with children on both sides of any threshold
        cos[:4] = torch.tensor([0.95, 0.92, 0.3, 0.35])
        parent[4:6] = perm[1]                        # two children, one close: reappears, does not split
        cos[4:6] = torch.tensor([0.97, 0.2])
        order = torch.randperm(n_large, generator=g)
        parent, cos = parent[order], cos[order]
        out.append(Case(f"seed {seed}, threshold {threshold}", {
            "parent": parent, "cos": cos, "n_small": n_small, "threshold": threshold}))
    return out


SPLITS = Exercise(
    id="w12_count_splits",
    title="count_splits",
    reference=count_splits,
    cases=_split_cases,
    mistakes=[
        Mistake("threshold ignored", lambda parent, cos, n_small, threshold: int(
            (torch.bincount(parent, minlength=n_small) >= 2).sum()),
                "a child must be CLOSE to its parent: count only larger-SAE latents with cos >= threshold."),
        Mistake("one child is a split", lambda parent, cos, n_small, threshold: int(
            (torch.bincount(parent[cos >= threshold], minlength=n_small) >= 1).sum()),
                "a parent with one close child has only reappeared; it SPLITS when two or more children share it."),
    ],
    hint="first keep only the close children (cos >= threshold), then count how many of them each parent has "
         "(torch.bincount counts occurrences of each index); a parent splits with two or more.",
)


def check_count_splits(fn, seed: int | None = None) -> bool:
    """Check ``count_splits(parent [n_large], cos [n_large], n_small, threshold) -> int``."""
    return core.check(SPLITS, fn, seed)


# -- 3. children fire inside the parent's contexts --------------------------------------------------
def within_parent(parent_acts: torch.Tensor, child_acts: torch.Tensor) -> torch.Tensor:
    """``[n_children]``: for each child (a column of ``child_acts [n, n_children]``), the share of the
    tokens it fires on (> 0) where the parent (``parent_acts [n]``) fires too: P(parent on | child on)."""
    return fs.activation_sharing(parent_acts, child_acts)["within_parent"]


def _within_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for n_ch, p_parent in ([(3, 0.3), (4, 0.6)] if seed == 0 else
                           [(int(torch.randint(2, 6, (1,), generator=g)), float(torch.rand(1, generator=g)) * 0.5 + 0.2)]):
        h = PlantedHierarchy(d=8, n_parents=2, n_children=n_ch, p_parent=p_parent, seed=seed)
        _, pc, cc = h.sample(200, g)
        child = cc[:, :n_ch].clone()
        # a learned child also fires a little outside its parent: some noise activations
        noise = (torch.rand(200, n_ch, generator=g) < 0.05) * torch.rand(200, n_ch, generator=g)
        child = torch.where(child > 0, child, noise)
        child[0, :] = 0.4                          # every child fires at least once
        parent = pc[:, 0] * (1 + torch.rand(200, generator=g))
        out.append(Case(f"seed {seed}, {n_ch} children, parent on {p_parent:.2f}", {
            "parent_acts": parent, "child_acts": child}))
    return out


def _within_reversed(parent_acts, child_acts):
    p, c = (parent_acts > 0).float(), (child_acts > 0).float()
    return (c * p[:, None]).sum(0) / p.sum()


def _within_joint(parent_acts, child_acts):
    p, c = (parent_acts > 0).float(), (child_acts > 0).float()
    return (c * p[:, None]).mean(0)


WITHIN = Exercise(
    id="w12_within_parent",
    title="within_parent",
    reference=within_parent,
    cases=_within_cases,
    mistakes=[
        Mistake("P(child | parent)", _within_reversed,
                "that is the share of the PARENT's contexts the child takes. Condition on the child: among the "
                "tokens where the child fires, how often does the parent fire?"),
        Mistake("joint, not conditional", _within_joint,
                "you divided by all tokens: divide the count of tokens where both fire by the number of tokens "
                "where the CHILD fires."),
    ],
    hint="P(parent on | child on): among the tokens where a child fires, the share where the parent fires too. "
         "Work with 'fires' masks (> 0); the parent's [n] must line up with the children's [n, n_children].",
)


def check_within_parent(fn, seed: int | None = None) -> bool:
    """Check ``within_parent(parent_acts [n], child_acts [n, n_children]) -> [n_children]``."""
    return core.check(WITHIN, fn, seed)


EXERCISES = {ex.id: ex for ex in (NEAREST_PARENT, SPLITS, WITHIN)}
