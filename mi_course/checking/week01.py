"""Checkers for week 01: Zoom In (features, circuits and universality in a tiny conv net)."""

from __future__ import annotations

import math

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.methods import zoom_in


def _tuning_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for units, n in [(3, 8), (6, 16)]:
        ang = torch.arange(n) * (2 * math.pi / n)
        pref = torch.rand(units, 1, generator=g) * 2 * math.pi
        width = 0.5 + torch.rand(units, 1, generator=g)
        floor = 1 + 2 * torch.rand(units, 1, generator=g)  # every unit has a baseline response
        curves = floor + 2 * torch.exp((torch.cos(ang - pref) - 1) / width ** 2)
        curves = curves + 0.05 * torch.rand(units, n, generator=g)
        curves[0] = floor[0]  # one untuned unit
        out.append(Case(f"seed {seed}, {units} units x {n} angles", {"tuning_curves": curves}))
    return out


def _no_floor(tuning_curves):
    n = tuning_curves.shape[-1]
    ang = torch.arange(n) * (2 * math.pi / n)
    r = tuning_curves.clamp_min(0)
    return ((r * torch.exp(1j * ang)).sum(-1).abs() / r.sum(-1).clamp_min(1e-9)).float()


def _max_over_mean(tuning_curves):
    r = tuning_curves - tuning_curves.amin(-1, keepdim=True)
    return (r.amax(-1) - r.mean(-1)) / r.amax(-1).clamp_min(1e-9)


SELECTIVITY = Exercise(
    id="w01_selectivity",
    title="selectivity",
    reference=zoom_in.selectivity,
    cases=_tuning_cases,
    mistakes=[
        Mistake("baseline kept", _no_floor,
                "subtract each unit's minimum response first: a unit that fires at 1.0 for every angle plus a small "
                "bump is not very selective, but its raw curve makes the vector sum look small only by accident."),
        Mistake("peak vs mean", _max_over_mean,
                "use the circular variance: the length of the vector sum of the responses at their angles, "
                "divided by the sum of the responses (after subtracting the minimum)."),
    ],
    hint="r = tuning - min over angles; angles = 2*pi*i/n; selectivity = |sum r*exp(i*angle)| / sum r (0 for a flat curve).",
    atol=1e-4,
)


def check_selectivity(fn, seed: int | None = None) -> bool:
    """Check ``selectivity(tuning_curves [units, n]) -> [units]``."""
    return check(SELECTIVITY, fn, seed)


def _match_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for ua, ub, n in [(3, 4, 8), (8, 6, 16)]:
        b = torch.rand(ub, n, generator=g) * 3
        perm = torch.randint(0, ub, (ua,), generator=g)
        a = 2 * b[perm] + 0.3 * torch.rand(ua, n, generator=g) + 1  # scaled, shifted, noisy copies
        out.append(Case(f"seed {seed}, {ua} units vs {ub} units, {n} angles", {"tuning_a": a, "tuning_b": b}))
    return out


def _dot_not_corr(tuning_a, tuning_b):
    corr = tuning_a @ tuning_b.T
    best = corr.max(-1)
    return best.indices, best.values


def _no_centering(tuning_a, tuning_b):
    a = tuning_a / tuning_a.norm(dim=-1, keepdim=True)
    b = tuning_b / tuning_b.norm(dim=-1, keepdim=True)
    best = (a @ b.T).max(-1)
    return best.indices, best.values


BEST_MATCH = Exercise(
    id="w01_best_match",
    title="best_match",
    reference=zoom_in.best_match,
    cases=_match_cases,
    mistakes=[
        Mistake("dot product", _dot_not_corr,
                "compare tuning *shapes*: use the correlation (centre each curve, then normalise it), not the raw dot product."),
        Mistake("cosine without centring", _no_centering,
                "subtract each curve's mean before normalising: otherwise every pair of positive curves looks similar."),
    ],
    hint="centre each row, divide by its norm, corr = a @ b.T; return corr.max(-1) as (indices, values).",
    atol=1e-4,
)


def check_best_match(fn, seed: int | None = None) -> bool:
    """Check ``best_match(tuning_a, tuning_b) -> (index [units_a], correlation [units_a])``."""
    return check(BEST_MATCH, fn, seed)


EXERCISES = {ex.id: ex for ex in [SELECTIVITY, BEST_MATCH]}
