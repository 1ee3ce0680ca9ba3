"""Toy Models of Superposition (Elhage et al. 2022), batched over instances, fast on CPU.

The ReLU output model: ``h = W x`` (n features into m < n hidden dimensions), ``x' = ReLU(W^T h + b)``,
trained to reconstruct sparse inputs (``x_i ~ U[0, 1]`` with probability ``1 - S``, else 0) under an
importance-weighted squared error. Many instances (different sparsities or importances) train at
once as one batched model, as in the paper's colab.

>>> model = ToyModel(n_features=5, n_hidden=2, feature_probability=1 - torch.tensor([0.0, 0.5, 0.9]),
...                  importance=0.9 ** torch.arange(5.0))
>>> train_toy_model(model, steps=5000)
>>> n_represented(model.W)          # [instances]: features with ||W_i|| > 0.5
"""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course import threads

__all__ = ["ToyModel", "generate_batch", "train_toy_model", "feature_norms", "n_represented", "superposition",
           "feature_dimensionality", "dims_per_feature", "intro_models", "importance_models", "phase_diagram",
           "PHASES"]


class ToyModel(nn.Module):
    """``n_instances`` independent ReLU-output toy models, trained together.

    ``W`` ``[instances, n_features, n_hidden]`` (row i: feature i's direction in the hidden
    space), ``b`` ``[instances, n_features]``. ``feature_probability`` ``[instances]`` (1 - S) or a
    float; ``importance`` ``[n_features]`` or ``[instances, n_features]``.
    """

    def __init__(self, n_features: int, n_hidden: int, n_instances: int | None = None,
                 feature_probability: torch.Tensor | float = 1.0, importance: torch.Tensor | float = 1.0,
                 relu_output: bool = True, seed: int = 0):
        super().__init__()
        fp = torch.as_tensor(feature_probability, dtype=torch.float).reshape(-1)
        n_instances = n_instances or fp.numel()
        if fp.numel() == 1:
            fp = fp.expand(n_instances).clone()
        if fp.numel() != n_instances:
            raise InputError(f"feature_probability has {fp.numel()} entries for {n_instances} instances")
        if ((fp <= 0) | (fp > 1)).any():
            raise InputError("feature_probability (1 - sparsity) must be in (0, 1]")
        imp = torch.as_tensor(importance, dtype=torch.float)
        if imp.ndim < 2 and imp.numel() in (1, n_features):
            imp = imp.expand(n_instances, n_features).clone()
        if imp.shape != (n_instances, n_features):
            raise InputError(f"importance must be [n_features] or [instances, n_features], got {list(imp.shape)}")
        g = torch.Generator().manual_seed(seed)
        w = torch.empty(n_instances, n_features, n_hidden)
        std = math.sqrt(2.0 / (n_features + n_hidden))  # xavier normal, as in the paper's colab
        w.normal_(0, std, generator=g)
        self.W = nn.Parameter(w)
        self.b = nn.Parameter(torch.zeros(n_instances, n_features))
        self.register_buffer("feature_probability", fp)
        self.register_buffer("importance", imp)
        self.relu_output = relu_output
        self.n_features, self.n_hidden, self.n_instances = n_features, n_hidden, n_instances

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[batch, instances, n_features]`` -> reconstruction of the same shape."""
        h = torch.einsum("bif,ifh->bih", x, self.W)
        out = torch.einsum("bih,ifh->bif", h, self.W) + self.b
        return torch.relu(out) if self.relu_output else out

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared error, mean over batch and features, summed over instances."""
        return (self.importance * (x - self(x)).pow(2)).mean(dim=(0, 2)).sum()


def generate_batch(batch: int, n_features: int, feature_probability: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``[batch, instances, n_features]``: each feature U[0, 1] with its instance's probability, else 0."""
    fp = torch.as_tensor(feature_probability, dtype=torch.float)
    shape = (batch, fp.numel(), n_features)
    on = torch.rand(shape, generator=generator) <= fp[None, :, None]
    return torch.rand(shape, generator=generator) * on


def train_toy_model(model: ToyModel, steps: int = 5000, batch: int = 1024, lr: float = 1e-3, seed: int = 0,
                    progress: bool = True) -> list[float]:
    """AdamW (lr 1e-3, constant) on fresh batches, as in the paper's colab. Returns the loss every 100 steps."""
    threads.apply_for_model(model)  # small: one thread, unless the user chose otherwise
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in tqdm(range(steps), desc="toy model", disable=not progress, leave=False):
        x = generate_batch(batch, model.n_features, model.feature_probability, g)
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            losses.append(loss.item())
    return losses


# ------------------------------------------------------------------------------------- analysis
def _w(W: torch.Tensor) -> torch.Tensor:
    if not isinstance(W, torch.Tensor) or W.ndim not in (2, 3):
        raise InputError(f"W must be [n_features, n_hidden] or [instances, n_features, n_hidden], "
                         f"got {getattr(W, 'shape', type(W))}")
    return (W if W.ndim == 3 else W[None]).detach().float()


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """``[instances, n_features]`` ||W_i||: about 1 if feature i is represented, about 0 if not."""
    return _w(W).norm(dim=-1)


def n_represented(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """``[instances]`` number of features with ``||W_i|| > threshold``."""
    return (feature_norms(W) > threshold).sum(-1)


def superposition(W: torch.Tensor) -> torch.Tensor:
    """``[instances, n_features]`` sum over other features j of (W_i_hat . W_j)^2: interference with feature i."""
    w = _w(W)
    unit = w / w.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    dots = torch.einsum("ifh,igh->ifg", unit, w).pow(2)
    return dots.sum(-1) - dots.diagonal(dim1=-2, dim2=-1)


def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """``[instances, n_features]`` D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2 (1: own dimension, 1/2: antipodal pair)."""
    w = _w(W)
    unit = w / w.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    denom = torch.einsum("ifh,igh->ifg", unit, w).pow(2).sum(-1)
    return w.norm(dim=-1).pow(2) / denom.clamp_min(1e-12)


def dims_per_feature(W: torch.Tensor) -> torch.Tensor:
    """``[instances]`` m / ||W||_F^2: hidden dimensions per (fully) represented feature."""
    w = _w(W)
    return w.shape[-1] / w.pow(2).sum(dim=(-1, -2)).clamp_min(1e-12)


# ----------------------------------------------------------------------------- the paper's setups
def intro_models(sparsities=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99), n_features: int = 5, n_hidden: int = 2,
                 importance_decay: float = 0.9, seed: int = 0) -> ToyModel:
    """The intro figure: 5 features into 2 dimensions, importance 0.9^i, one instance per sparsity S."""
    S = torch.as_tensor(sparsities, dtype=torch.float)
    return ToyModel(n_features, n_hidden, feature_probability=1 - S,
                    importance=importance_decay ** torch.arange(float(n_features)), seed=seed)


def importance_models(sparsities=(0.0, 0.7, 0.9, 0.97, 0.99), n_features: int = 20, n_hidden: int = 5,
                      importance_decay: float = 0.7, seed: int = 0) -> ToyModel:
    """20 features into 5 dimensions with importance 0.7^i, one instance per sparsity."""
    return intro_models(sparsities, n_features, n_hidden, importance_decay, seed)


#: Phase-diagram classes for feature 2 (the one whose importance varies), n=2 into m=1.
PHASES = {0: "not represented", 1: "dedicated dimension", 2: "superposition"}


def phase_diagram(densities: torch.Tensor, relative_importance: torch.Tensor, steps: int = 3000,
                  batch: int = 1024, lr: float = 1e-3, seed: int = 0, progress: bool = True) -> dict:
    """The n=2, m=1 phase diagram: what happens to feature 2 as its density and importance vary.

    Feature 1 has importance 1, feature 2 ``relative_importance``; both features have density
    ``1 - S``. One instance per grid cell, trained together. Each cell is classified (see
    :data:`PHASES`): 0 if ``||W_2|| < 0.5``; 1 if feature 2 is represented and feature 1 is not
    (it has the dimension to itself); 2 if both are represented (necessarily sharing it, as an
    antipodal pair). Returns ``{"phase": [n_density, n_importance] long, "W": ..., "densities": ...,
    "relative_importance": ...}``.
    """
    d = torch.as_tensor(densities, dtype=torch.float)
    r = torch.as_tensor(relative_importance, dtype=torch.float)
    dd, rr = torch.meshgrid(d, r, indexing="ij")
    imp = torch.stack([torch.ones_like(rr.flatten()), rr.flatten()], -1)
    model = ToyModel(2, 1, feature_probability=dd.flatten(), importance=imp, seed=seed)
    train_toy_model(model, steps=steps, batch=batch, lr=lr, seed=seed, progress=progress)
    norms = feature_norms(model.W)
    on1, on2 = norms[:, 0] > 0.5, norms[:, 1] > 0.5
    phase = torch.where(~on2, 0, torch.where(on1, 2, 1)).view(len(d), len(r))
    return {"phase": phase, "W": model.W.detach().view(len(d), len(r), 2, 1), "densities": d,
            "relative_importance": r}
