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


def test_unit_tuning_dead_units_and_bad_input():
    torch.manual_seed(0)
    net = z.CurveNet().eval()
    with torch.no_grad():
        assert torch.allclose(z.unit_tuning(net.layer1(curves.probe_lines(16))), z.tuning(net, 1, "lines"))
    acts = torch.zeros(2, 3, 4, 4)
    acts[1, 0, 2, 2] = 0.5
    assert z.dead_units(acts).tolist() == [False, True, True]
    assert z.dead_units(acts, threshold=0.5).tolist() == [True, True, True]
    with pytest.raises(InputError):
        z.unit_tuning(torch.zeros(3, 4))
    with pytest.raises(InputError):
        z.feature_visualization(net, 2, 16)
    with pytest.raises(InputError):
        z.channel_ablation_effect(net, 0, torch.zeros(2, 24, 24))


@pytest.mark.slow
def test_week01_prose_claims_seed0():
    """Week 01's prose (seed 0, 250 steps): dead layer-2 units 4 and 7; curve detectors 2 and 5; feature
    visualisation (25 steps, lr 0.25) drives live units 1.7-2.9x their best clean curve, units 4, 7, 9, 14
    stay at 0; each detector needs five channels (drop >= 10%, at most 32%), sharing 0, 2, 5, 7."""
    torch.manual_seed(0)
    with torch.enable_grad():
        net, info = z.train_curve_net(seed=0, steps=250, progress=False)
    with torch.no_grad():
        data, _ = curves.make_batch(512, 24, torch.Generator().manual_seed(5))
        assert z.dead_units(net.layer2(data)).nonzero().flatten().tolist() == [4, 7]
        assert not z.dead_units(net.layer1(data)).any()
        assert z.curve_detectors(net) == [2, 5] and z.edge_detectors(net) == [2, 3, 4, 5, 6]
        tc = z.tuning(net, 2, "curves")
        for u in range(16):
            act = net.layer2(z.feature_visualization(net, 2, u))[0, u].amax().item()
            if u in (4, 7, 9, 14):
                assert act == 0.0, u
            else:
                assert 1.6 < act / tc[u].max().item() < 3.0, u
        needed = {}
        for u in (2, 5):
            best = curves.probe_curves(16)[int(tc[u].argmax())][None]
            drop = z.channel_ablation_effect(net, u, best) / tc[u].max()
            assert drop.max() < 0.33
            needed[u] = [c for c in range(8) if drop[c] >= 0.1]
        assert needed == {2: [0, 2, 4, 5, 7], 5: [0, 2, 3, 5, 7]}
