"""Week 01's tiny conv net: data, training, tuning curves, detectors and universality measures."""

import math

import pytest
import torch

from mi_course.data import curves
from mi_course.errors import InputError
from mi_course.methods import zoom_in as z


def test_images_and_labels():
    x, y = curves.make_batch(32, 24, torch.Generator().manual_seed(0))
    assert x.shape == (32, 1, 24, 24) and y.shape == (32,)
    assert 0 <= x.min() and x.max() <= 1 and set(y.tolist()) <= set(range(curves.N_CLASSES))
    # a line through the centre at 0 degrees is bright along the middle row
    line = curves.render_line(0.0, 24)
    assert line[11:13].mean() > 0.5 and line[:5].mean() < 0.05
    with pytest.raises(InputError):
        curves.make_batch(0)


def test_selectivity_and_preferred_angle():
    n = 16
    ang = torch.arange(n) * (2 * math.pi / n)
    sharp = 1 + torch.exp((torch.cos(ang - ang[4]) - 1) / 0.2)
    flat = torch.ones(n)
    s = z.selectivity(torch.stack([sharp, flat]))
    assert s[0] > 0.5 and s[1] == 0
    assert z.preferred_angle(sharp[None])[0] == pytest.approx(math.pi * 4 / n, abs=1e-3)
    idx, corr = z.best_match(torch.stack([sharp, flat + ang]), torch.stack([flat + ang, 3 * sharp]))
    assert idx.tolist() == [1, 0] and corr.min() > 0.99


@pytest.mark.slow
def test_short_training_learns_and_finds_edge_detectors():
    net, info = z.train_curve_net(seed=0, steps=150, progress=False)
    assert info["accuracy"] > 0.8
    t = z.tuning(net, 1, "lines")
    assert t.shape == (8, 16)
    assert len(z.edge_detectors(net, 0.3)) >= 2
    ang, strength = z.kernel_orientation_map(net, 0)
    assert ang.shape == (5, 5) and (ang >= 0).all() and (ang < math.pi).all()
    with pytest.raises(InputError):
        z.tuning(net, 3)
    with pytest.raises(InputError):
        z.kernel_orientation_map(net, 99)
