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
