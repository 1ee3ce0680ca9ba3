"""Toy Models of Superposition: geometry measures on known configurations, and the sparsity effect."""

import math

import pytest
import torch

from mi_course.errors import InputError
from mi_course.methods import toy_models as T


def _polygon(n):
    a = torch.arange(n) * 2 * math.pi / n
    return torch.stack([a.cos(), a.sin()], -1)


def test_geometry_of_known_configurations():
    ortho = torch.eye(2)
    pair = torch.tensor([[1.0], [-1.0]])
    pent = _polygon(5)
    assert T.feature_dimensionality(ortho).flatten().tolist() == pytest.approx([1, 1])
    assert T.feature_dimensionality(pair).flatten().tolist() == pytest.approx([0.5, 0.5])
    assert T.feature_dimensionality(pent).flatten().tolist() == pytest.approx([0.4] * 5)  # 2/5, as in the paper
    assert T.dims_per_feature(pent).item() == pytest.approx(0.4)
    assert T.n_represented(torch.tensor([[1.0, 0], [0.1, 0.1], [0, 0.9]])).item() == 2
    assert T.superposition(ortho).abs().max() < 1e-6 and T.superposition(pair).flatten().tolist() == pytest.approx([1, 1])
    with pytest.raises(InputError):
        T.feature_norms(torch.zeros(5))


def test_sparsity_brings_superposition():
    torch.manual_seed(0)
    m = T.intro_models(sparsities=(0.0, 0.95))
    losses = T.train_toy_model(m, steps=1500, batch=512, lr=3e-3, progress=False)
    assert losses[-1] < losses[0]
    n = T.n_represented(m.W)
    dpf = T.dims_per_feature(m.W)
    assert n[1] > n[0] and n[1] >= 4
    assert dpf[0] > 0.75 and dpf[1] < 0.6


def test_phase_diagram_dense_row():
    out = T.phase_diagram(torch.tensor([1.0]), torch.tensor([0.2, 5.0]), steps=1000, batch=256, lr=1e-2,
                          progress=False)
    # dense features: the more important one takes the only dimension, no superposition
    assert out["phase"].tolist() == [[0, 1]]
    assert out["W"].shape == (1, 2, 2, 1)


def test_bad_toy_input():
    with pytest.raises(InputError, match="feature_probability"):
        T.ToyModel(5, 2, feature_probability=torch.tensor([0.0]))
    with pytest.raises(InputError, match="importance"):
        T.ToyModel(5, 2, feature_probability=0.5, importance=torch.ones(4))
