"""Zoom In: features, circuits and universality in a tiny conv net (Olah et al. 2020).

A two-layer conv net trained in seconds on :mod:`mi_course.data.curves` (curves facing 8
directions, and straight lines). Layer 1 learns oriented *edge/line detectors*; some layer-2
units respond more to curves of one facing than to any line (*curve detectors*). Here:

* :func:`train_curve_net` trains it (seeded);
* :func:`tuning` measures each unit's response to clean lines or curves at every orientation;
* :func:`selectivity` and :func:`preferred_angle` summarise a tuning curve;
* :func:`kernel_orientation_map` reads a layer-2 unit off its weights: at each kernel
  position, which layer-1 orientation it pulls in;
* :func:`best_match` compares units of two seeds (universality).
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn
from tqdm.auto import tqdm

from mi_course.data import curves
from mi_course.errors import InputError
from mi_course import validation as check
from mi_course import threads


class CurveNet(nn.Module):
    """conv(1->c1, 5x5) ReLU maxpool2 -> conv(c1->c2, 5x5) ReLU -> global max -> linear(16 classes)."""

    def __init__(self, c1: int = 8, c2: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.head = nn.Linear(c2, curves.N_CLASSES)

    def layer1(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, 1, H, W] -> [n, c1, H, W]`` (post-ReLU). Each image is centred (mean 0) first."""
        return torch.relu(self.conv1(x - x.mean(dim=(-2, -1), keepdim=True)))

    def layer2(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, 1, H, W] -> [n, c2, H/2, W/2]`` (post-ReLU)."""
        return torch.relu(self.conv2(nn.functional.max_pool2d(self.layer1(x), 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer2(x).amax(dim=(-2, -1)))


def train_curve_net(seed: int = 0, steps: int = 400, batch: int = 64, lr: float = 3e-3, size: int = 24,
                    n_train: int = 2048, weight_decay: float = 1e-3, progress: bool = True) -> tuple[CurveNet, dict]:
    """Train a :class:`CurveNet` from scratch on ``n_train`` fixed images (seeded).

    Returns ``(net, info)`` with held-out accuracy and seconds. A few seconds on one CPU core.
    """
    torch.manual_seed(seed)
    net = CurveNet()
    threads.apply_for_model(net)  # a small net: one thread, unless the user chose otherwise
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    data_x, data_y = curves.make_batch(n_train, size, g)
    for _ in tqdm(range(steps), desc=f"curve net seed {seed}", disable=not progress, leave=False):
        idx = torch.randint(0, n_train, (batch,), generator=g)
        x, y = data_x[idx], data_y[idx]
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    x, y = curves.make_batch(512, size, torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        acc = float((net(x).argmax(-1) == y).float().mean())
    return net, {"accuracy": acc, "seconds": time.time() - t0, "final_loss": float(loss.detach())}


@torch.no_grad()
def tuning(net: CurveNet, layer: int, stimulus: str = "lines", n_angles: int = 16) -> torch.Tensor:
    """Max response of each unit of ``layer`` (1 or 2) to each probe image: ``[units, n_angles]``.

    ``stimulus="lines"``: orientations ``i * 180/n_angles``°; ``"curves"``: facings ``i * 360/n_angles``°.
    """
    if layer not in (1, 2):
        raise InputError(f"layer must be 1 or 2, got {layer!r}")
    if stimulus not in ("lines", "curves"):
        raise InputError(f"stimulus must be 'lines' or 'curves', got {stimulus!r}")
    x = curves.probe_lines(n_angles) if stimulus == "lines" else curves.probe_curves(n_angles)
    acts = net.layer1(x) if layer == 1 else net.layer2(x)
    return acts.amax(dim=(-2, -1)).T


def selectivity(tuning_curves: torch.Tensor, period: float = math.pi) -> torch.Tensor:
    """Orientation selectivity ``1 - circular variance`` of each tuning curve ``[units, n]`` (0..1),
    computed on the modulation above the curve's minimum (a unit that responds equally to every
    angle scores 0; one that responds to a single angle scores 1).

    ``period``: pi for lines (orientations), 2*pi for curves (directions).
    """
    check.finite("tuning_curves", tuning_curves)
    n = tuning_curves.shape[-1]
    ang = torch.arange(n) * (2 * math.pi / n)  # angles mapped onto the full circle
    r = tuning_curves - tuning_curves.amin(-1, keepdim=True)  # the modulation above the unit's floor
    vec = (r * torch.exp(1j * ang)).sum(-1)
    return (vec.abs() / r.sum(-1).clamp_min(1e-9)).real.float()


def preferred_angle(tuning_curves: torch.Tensor, period: float = math.pi) -> torch.Tensor:
    """Preferred orientation (radians, in ``[0, period)``) of each tuning curve ``[units, n]``."""
    n = tuning_curves.shape[-1]
    ang = torch.arange(n) * (2 * math.pi / n)
    vec = ((tuning_curves - tuning_curves.amin(-1, keepdim=True)) * torch.exp(1j * ang)).sum(-1)
    return torch.remainder(torch.angle(vec), 2 * math.pi) * period / (2 * math.pi)


def edge_detectors(net: CurveNet, min_selectivity: float = 0.45) -> list[int]:
    """Layer-1 units that respond to lines and are orientation-selective."""
    t = tuning(net, 1, "lines")
    s = selectivity(t)
    alive = t.amax(-1) > 0.1 * t.amax()
    return [int(i) for i in torch.nonzero((s >= min_selectivity) & alive).flatten()]


def curve_detectors(net: CurveNet, min_ratio: float = 1.15, min_selectivity: float = 0.4) -> list[int]:
    """Layer-2 units that respond more to their best curve than to any line, and prefer one facing."""
    tl, tc = tuning(net, 2, "lines"), tuning(net, 2, "curves")
    ratio = tc.amax(-1) / tl.amax(-1).clamp_min(1e-6)
    s = selectivity(tc)
    return [int(i) for i in torch.nonzero((ratio >= min_ratio) & (s >= min_selectivity)).flatten()]


def kernel_orientation_map(net: CurveNet, unit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a layer-2 unit off its weights: ``(angle [5, 5], strength [5, 5])``.

    At each kernel position, the positive weights onto layer-1 units are combined as a vector
    sum of those units' preferred orientations (doubled angles, as orientations repeat every
    180°), weighted by weight x the unit's selectivity. ``angle`` is in ``[0, pi)``.
    """
    if not 0 <= unit < net.conv2.out_channels:
        raise InputError(f"unit must be in 0..{net.conv2.out_channels - 1}, got {unit}")
    t1 = tuning(net, 1, "lines")
    pref = preferred_angle(t1)  # [c1]
    sel = selectivity(t1)
    w = net.conv2.weight[unit].detach().clamp_min(0)  # [c1, 5, 5]
    vec = (w * (sel * torch.exp(2j * pref))[:, None, None]).sum(0)
    return torch.remainder(torch.angle(vec), 2 * math.pi) / 2, vec.abs().float()


def best_match(tuning_a: torch.Tensor, tuning_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each unit of A, the unit of B with the most correlated tuning curve.

    tuning_a: ``[units_a, n]``, tuning_b: ``[units_b, n]``. Returns ``(index [units_a], correlation [units_a])``.
    """
    if tuning_a.shape[-1] != tuning_b.shape[-1]:
        raise InputError("both tuning curves must be sampled at the same angles")
    a = tuning_a - tuning_a.mean(-1, keepdim=True)
    b = tuning_b - tuning_b.mean(-1, keepdim=True)
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    corr = a @ b.T
    best = corr.max(-1)
    return best.indices, best.values


# --- Week 01, in depth: responses, dead units, feature visualisation, circuits by ablation -----
def unit_tuning(acts: torch.Tensor) -> torch.Tensor:
    """Each unit's strongest response to each stimulus: ``[n_stimuli, units, H, W] -> [units, n_stimuli]``
    (max over space: a unit "sees" a stimulus if it fires anywhere on it)."""
    if not isinstance(acts, torch.Tensor) or acts.dim() != 4:
        raise InputError("acts must be a [n_stimuli, units, H, W] tensor")
    return acts.amax(dim=(-2, -1)).T


def dead_units(acts: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Units that never fire above ``threshold`` on any image or position: ``[n, units, H, W] -> bool [units]``."""
    if not isinstance(acts, torch.Tensor) or acts.dim() != 4:
        raise InputError("acts must be a [n_images, units, H, W] tensor")
    return acts.amax(dim=(0, 2, 3)) <= threshold


def feature_visualization(net: CurveNet, layer: int, unit: int, steps: int = 25, lr: float = 0.25,
                          l2: float = 0.01, seed: int = 0, size: int = 24) -> torch.Tensor:
    """Feature visualisation by optimisation (Olah et al. 2017): the image ``[1, 1, size, size]`` that
    maximises a unit's strongest response.

    Start from ``0.1 * randn`` (``torch.Generator().manual_seed(seed)``); ``steps`` times: objective =
    the unit's max over space minus ``l2 * sum(x**2)``; one plain gradient-*ascent* step
    ``x += lr * grad``; clamp ``x`` to ``[-1, 1]``. Deterministic, so it can be checked exactly.
    """
    if layer not in (1, 2):
        raise InputError(f"layer must be 1 or 2, got {layer!r}")
    n_units = net.conv1.out_channels if layer == 1 else net.conv2.out_channels
    if not 0 <= unit < n_units:
        raise InputError(f"unit must be in 0..{n_units - 1}, got {unit}")
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(1, 1, size, size, generator=g)
    for _ in range(int(steps)):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            acts = net.layer1(x) if layer == 1 else net.layer2(x)
            objective = acts[0, unit].amax() - l2 * x.pow(2).sum()
            (grad,) = torch.autograd.grad(objective, x)
        x = (x + lr * grad).clamp(-1.0, 1.0)
    return x.detach()


@torch.no_grad()
def channel_ablation_effect(net: CurveNet, unit: int, images: torch.Tensor) -> torch.Tensor:
    """A circuit read by ablation: for each layer-1 channel, the drop in layer-2 ``unit``'s strongest
    response (mean over ``images``) when that channel is zeroed. ``images [n, 1, H, W] -> [c1]``;
    positive = the channel excites the unit."""
    if not 0 <= unit < net.conv2.out_channels:
        raise InputError(f"unit must be in 0..{net.conv2.out_channels - 1}, got {unit}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise InputError("images must be [n, 1, H, W]")
    h = torch.nn.functional.max_pool2d(net.layer1(images), 2)
    base = torch.relu(net.conv2(h))[:, unit].amax(dim=(-2, -1)).mean()
    out = torch.zeros(net.conv1.out_channels)
    for c in range(net.conv1.out_channels):
        h2 = h.clone()
        h2[:, c] = 0.0
        out[c] = base - torch.relu(net.conv2(h2))[:, unit].amax(dim=(-2, -1)).mean()
    return out
