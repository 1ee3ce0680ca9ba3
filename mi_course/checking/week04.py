"""Checkers for week 04: Talking Heads (low-rank communication channels between heads).

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.methods import talking_heads


def _low_rank(d: int, r: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(d, r, generator=g) @ torch.randn(r, d, generator=g)


# -- 1. composition with each SVD component ----------------------------------------------------
def _comp_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for d, r in [(8, 3), (24, 6)]:
        sender = _low_rank(d, r, g)
        receiver = _low_rank(d, r, g) + 0.7 * sender.T  # reads part of what the sender writes
        out.append(Case(f"seed {seed}, d_model={d}, rank {r}", {"sender_ov": sender, "receiver": receiver}))
    return out


def _right_vectors(sender_ov, receiver):
    U, S, Vh = torch.linalg.svd(receiver)
    r = int((S > S[0] * 1e-6).sum())
    return torch.stack([(sender_ov @ Vh[i]).norm() / sender_ov.norm() for i in range(r)])


def _unnormalised(sender_ov, receiver):
    U, S, Vh = torch.linalg.svd(receiver)
    r = int((S > S[0] * 1e-6).sum())
    return torch.stack([(sender_ov @ U[:, i]).norm() for i in range(r)])


def _weighted(sender_ov, receiver):
    U, S, Vh = torch.linalg.svd(receiver)
    r = int((S > S[0] * 1e-6).sum())
    return torch.stack([S[i] * (sender_ov @ U[:, i]).norm() / sender_ov.norm() for i in range(r)])


COMPONENT_SCORES = Exercise(
    id="w04_component_composition_scores",
    title="component_composition_scores",
    reference=talking_heads.component_composition_scores,
    cases=_comp_cases,
    mistakes=[
        Mistake("right singular vectors", _right_vectors,
                "the receiver's *rows* read the sender's output, so use the left singular vectors (columns of U), "
                "not the rows of Vh."),
        Mistake("not normalised", _unnormalised,
                "divide by ||sender_ov||_F so that each score is a share between 0 and 1."),
        Mistake("weighted by s_i", _weighted,
                "the composition score of a rank-1 component does not depend on its singular value: "
                "||A @ s u v^T|| / (||A|| ||s u v^T||) = ||A u|| / ||A||."),
    ],
    hint="U, S, Vh = torch.linalg.svd(receiver); keep the r components with S > S[0]*1e-6; score_i = ||sender_ov @ U[:, i]|| / ||sender_ov||_F.",
    atol=1e-4,
)


def check_component_composition_scores(fn, seed: int | None = None) -> bool:
    """Check ``component_composition_scores(sender_ov, receiver) -> [r]``."""
    return check(COMPONENT_SCORES, fn, seed)


# -- 2. projecting a span out of the residual stream -------------------------------------------
def _proj_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, p, d, k in [(2, 3, 6, 2), (3, 7, 16, 4)]:
        base = torch.randn(d, k, generator=g)
        directions = base @ (torch.eye(k) + 0.8 * torch.randn(k, k, generator=g))  # correlated, unnormalised
        out.append(Case(f"seed {seed}, x [{b}, {p}, {d}], k={k} directions",
                        {"x": torch.randn(b, p, d, generator=g), "directions": directions}))
    return out


def _assume_orthonormal(x, directions):
    return x - (x @ directions) @ directions.T


def _normalise_only(x, directions):
    u = directions / directions.norm(dim=0, keepdim=True)
    return x - (x @ u) @ u.T


def _keep(x, directions):
    return x - talking_heads.project_out_span(x, directions)


PROJECT_OUT = Exercise(
    id="w04_project_out_span",
    title="project_out_span",
    reference=talking_heads.project_out_span,
    cases=_proj_cases,
    mistakes=[
        Mistake("assumed orthonormal", _assume_orthonormal,
                "x - (x D) D^T only removes the span when the columns of D are orthonormal. "
                "Orthonormalise them first (torch.linalg.qr)."),
        Mistake("normalised but not orthogonal", _normalise_only,
                "unit-length directions are not enough: they overlap, so their projections double-count. "
                "Orthonormalise them (torch.linalg.qr) before projecting."),
        Mistake("kept the span", _keep,
                "you returned the part of x *inside* the span; return what is left after removing it."),
    ],
    hint="Q, _ = torch.linalg.qr(directions); return x - (x @ Q) @ Q.T",
    atol=1e-4,
)


def check_project_out_span(fn, seed: int | None = None) -> bool:
    """Check ``project_out_span(x, directions) -> x without its component in span(directions)``."""
    return check(PROJECT_OUT, fn, seed)


# -- 3. effective rank of a channel ------------------------------------------------------------
def _rank_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = [Case("rank-1 channel", {"strengths": torch.tensor([5.0, 0.5, 0.3, 0.1]), "share": 0.9}),
           Case("flat spectrum", {"strengths": torch.ones(6), "share": 0.9})]
    for n in (8, 20):
        s = (torch.rand(n, generator=g) ** 3 * 4).sort(descending=True).values
        out.append(Case(f"seed {seed}, {n} random strengths", {"strengths": s, "share": 0.8}))
    return out


def _unsquared(strengths, share):
    c = strengths.double().cumsum(0) / strengths.double().sum()
    return int((c < share).sum()) + 1


def _off_by_one(strengths, share):
    s2 = strengths.double() ** 2
    return int(((s2.cumsum(0) / s2.sum()) < share).sum())


EFFECTIVE_RANK = Exercise(
    id="w04_effective_rank",
    title="effective_rank",
    reference=talking_heads.effective_rank,
    cases=_rank_cases,
    mistakes=[
        Mistake("singular values, not squared", _unsquared,
                "a component's share of the matrix is its *squared* singular value (||M||_F^2 = sum s_i^2)."),
        Mistake("off by one", _off_by_one,
                "you counted the components *before* the share is reached; include the one that reaches it "
                "(a rank-1 channel has effective rank 1, not 0)."),
    ],
    hint="c = cumsum(s**2) / sum(s**2); return the number of entries with c < share, plus one.",
)


def check_effective_rank(fn, seed: int | None = None) -> bool:
    """Check ``effective_rank(strengths, share) -> int``."""
    return check(EFFECTIVE_RANK, fn, seed)


EXERCISES = {ex.id: ex for ex in [COMPONENT_SCORES, PROJECT_OUT, EFFECTIVE_RANK]}
