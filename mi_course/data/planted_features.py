"""Synthetic activations built from known ("planted") sparse features, to test whether an SAE finds them.

Sharkey, Braun and Millidge (2022): ``n_features`` random unit directions in ``d`` dimensions;
each input is a sparse non-negative combination of them, feature i on with probability
``p_i = expected_active / n_features * decay**i`` (normalised so the expected number of active
features is ``expected_active``) with a U[0, 1] coefficient.

>>> data = PlantedFeatures(d=64, n_features=128, expected_active=3, seed=0)
>>> x, coeffs = data.sample(1024, torch.Generator().manual_seed(1))   # [1024, 64], [1024, 128]
"""

from __future__ import annotations

import torch

from mi_course.errors import InputError


class PlantedFeatures:
    """Ground-truth feature directions (``.directions`` ``[n_features, d]``) and a sampler."""

    def __init__(self, d: int = 64, n_features: int = 128, expected_active: float = 3.0, decay: float = 0.99,
                 seed: int = 0):
        if d < 1 or n_features < 1:
            raise InputError(f"d and n_features must be positive, got {d}, {n_features}")
        if not 0 < expected_active <= n_features:
            raise InputError(f"expected_active must be in (0, n_features], got {expected_active}")
        if not 0 < decay <= 1:
            raise InputError(f"decay must be in (0, 1], got {decay}")
        g = torch.Generator().manual_seed(seed)
        dirs = torch.randn(n_features, d, generator=g)
        self.directions = dirs / dirs.norm(dim=-1, keepdim=True)
        p = decay ** torch.arange(n_features, dtype=torch.float)
        self.probabilities = (p * expected_active / p.sum()).clamp(max=1.0)
        self.d, self.n_features = d, n_features

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [n, d], coeffs [n, n_features])`` with ``x = coeffs @ directions``."""
        on = torch.rand(n, self.n_features, generator=generator) < self.probabilities
        coeffs = torch.rand(n, self.n_features, generator=generator) * on
        return coeffs @ self.directions, coeffs


class PlantedHierarchy:
    """Planted features that *split*: ``n_parents`` random unit parent directions, each with
    ``n_children`` children that are small perturbations of it (``normalize(parent + spread * r)``,
    ``r`` a random unit direction orthogonal to the parent), the ground truth of feature splitting.

    Sampling: each parent is on with probability ``p_parent``; when on, exactly one of its children
    (uniformly) is on, with a U[0.5, 1] coefficient, so the parent fires whenever any of its children
    does and siblings never fire together. ``x = sum of coefficient * child direction``.

    ``parents`` ``[n_parents, d]``, ``children`` ``[n_parents, n_children, d]`` (unit rows);
    ``family`` ``[n_parents * n_children]``: the parent of each flattened child.

    >>> h = PlantedHierarchy(d=32, n_parents=8, n_children=3, seed=0)
    >>> x, parent_coeffs, child_coeffs = h.sample(1024, torch.Generator().manual_seed(1))
    """

    def __init__(self, d: int = 32, n_parents: int = 8, n_children: int = 3, spread: float = 0.6,
                 p_parent: float = 0.15, seed: int = 0):
        if d < 2 or n_parents < 1 or n_children < 1:
            raise InputError(f"d >= 2, n_parents >= 1 and n_children >= 1 are needed, got {d}, {n_parents}, {n_children}")
        if not spread > 0:
            raise InputError(f"spread must be positive (children are perturbations of the parent), got {spread}")
        if not 0 < p_parent <= 1:
            raise InputError(f"p_parent must be in (0, 1], got {p_parent}")
        g = torch.Generator().manual_seed(seed)
        par = torch.randn(n_parents, d, generator=g)
        par = par / par.norm(dim=-1, keepdim=True)
        r = torch.randn(n_parents, n_children, d, generator=g)
        r = r - (r * par[:, None]).sum(-1, keepdim=True) * par[:, None]  # orthogonal to the parent
        r = r / r.norm(dim=-1, keepdim=True)
        ch = par[:, None] + spread * r
        self.parents = par
        self.children = ch / ch.norm(dim=-1, keepdim=True)
        self.family = torch.arange(n_parents).repeat_interleave(n_children)
        self.d, self.n_parents, self.n_children, self.p_parent = d, n_parents, n_children, p_parent

    @property
    def child_directions(self) -> torch.Tensor:
        """``[n_parents * n_children, d]`` the children, family by family."""
        return self.children.reshape(-1, self.d)

    def sample(self, n: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x [n, d], parent_coeffs [n, n_parents], child_coeffs [n, n_parents * n_children])``."""
        on = torch.rand(n, self.n_parents, generator=generator) < self.p_parent
        which = torch.randint(0, self.n_children, (n, self.n_parents), generator=generator)
        coeff = (0.5 + 0.5 * torch.rand(n, self.n_parents, generator=generator)) * on
        child = torch.zeros(n, self.n_parents, self.n_children).scatter(-1, which[..., None], coeff[..., None])
        child = child.reshape(n, -1)
        return child @ self.child_directions, coeff, child
