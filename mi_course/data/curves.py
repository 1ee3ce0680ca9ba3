"""Synthetic images of lines and curves at known orientations (week 01, "Zoom In").

Each image is ``[1, size, size]`` in ``[0, 1]``: one anti-aliased stroke on a dark background,
jittered in position, length/radius and angle, with a little pixel noise. Classes ``0 .. 7``:
a curve whose outer (convex) side faces ``k * 45``°; class ``8``: a straight line at any
orientation. To tell the classes apart a network must respond to curvature, not just to
orientation, which is what makes curve detectors useful to it.
"""

from __future__ import annotations

import math

import torch

from mi_course.errors import InputError

N_LINE, N_CURVE = 8, 8
#: class 0..7: a curve facing k * 45 degrees; class 8: a straight line (any orientation)
N_CLASSES = N_CURVE + 1
LINE_CLASS = N_CURVE


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    c = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(-c, c, indexing="ij")  # y up, x right
    return x, y


def render_line(angle: float, size: int = 24, center: tuple[float, float] = (0.0, 0.0), length: float = 14.0,
                width: float = 0.9) -> torch.Tensor:
    """A straight stroke through ``center`` at ``angle`` (radians from the x axis): ``[size, size]``."""
    x, y = _grid(size)
    px, py = x - center[0], y - center[1]
    ux, uy = math.cos(angle), math.sin(angle)
    t = (px * ux + py * uy).clamp(-length / 2, length / 2)
    d = torch.sqrt((px - t * ux) ** 2 + (py - t * uy) ** 2)
    return torch.exp(-(d**2) / (2 * width**2))


def render_curve(facing: float, size: int = 24, center: tuple[float, float] = (0.0, 0.0), radius: float = 8.0,
                 arc: float = 1.6, width: float = 0.9) -> torch.Tensor:
    """An arc whose middle is at ``center`` and whose convex side faces ``facing`` (radians)."""
    x, y = _grid(size)
    cx = center[0] - radius * math.cos(facing)
    cy = center[1] - radius * math.sin(facing)
    px, py = x - cx, y - cy
    rho = torch.sqrt(px**2 + py**2)
    phi = torch.atan2(py, px)
    dphi = torch.remainder(phi - facing + math.pi, 2 * math.pi) - math.pi
    inside = dphi.abs() <= arc / 2
    d_arc = (rho - radius).abs()
    ends = []
    for s in (-1, 1):
        a = facing + s * arc / 2
        ex, ey = cx + radius * math.cos(a), cy + radius * math.sin(a)
        ends.append(torch.sqrt((x - ex) ** 2 + (y - ey) ** 2))
    d = torch.where(inside, d_arc, torch.minimum(*ends))
    return torch.exp(-(d**2) / (2 * width**2))


def line_angle(k: int) -> float:
    return k * math.pi / N_LINE


def curve_facing(k: int) -> float:
    return k * 2 * math.pi / N_CURVE


def make_batch(n: int, size: int = 24, generator: torch.Generator | None = None, noise: float = 0.05
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [n, 1, size, size], labels [n])``: curves (8 classes) and lines (1 class), random jitter."""
    if n < 1 or size < 12:
        raise InputError("need n >= 1 images of size >= 12")
    g = generator or torch.Generator().manual_seed(0)
    labels = torch.randint(0, N_CLASSES, (n,), generator=g)
    u = torch.rand(n, 6, generator=g)
    imgs = torch.empty(n, 1, size, size)
    shift = size / 8
    for i in range(n):
        lab = int(labels[i])
        center = (float(u[i, 0] - 0.5) * 2 * shift, float(u[i, 1] - 0.5) * 2 * shift)
        jitter = float(u[i, 2] - 0.5) * 0.15
        if lab == LINE_CLASS:
            img = render_line(float(u[i, 5]) * math.pi, size, center, length=size * (0.45 + 0.2 * float(u[i, 3])))
        else:
            img = render_curve(curve_facing(lab) + jitter, size, center,
                               radius=size * (0.22 + 0.12 * float(u[i, 3])), arc=1.5 + 0.6 * float(u[i, 4]))
        imgs[i, 0] = img
    imgs = imgs + noise * torch.randn(imgs.shape, generator=g)
    return imgs.clamp(0, 1), labels


def probe_lines(n_angles: int = 16, size: int = 24) -> torch.Tensor:
    """Clean centred lines at ``n_angles`` orientations over 180°: ``[n_angles, 1, size, size]``."""
    return torch.stack([render_line(math.pi * i / n_angles, size, length=size * 0.55) for i in range(n_angles)])[:, None]


def probe_curves(n_angles: int = 16, size: int = 24) -> torch.Tensor:
    """Clean centred arcs facing ``n_angles`` directions over 360°: ``[n_angles, 1, size, size]``."""
    return torch.stack([render_curve(2 * math.pi * i / n_angles, size, radius=size * 0.28, arc=1.8)
                        for i in range(n_angles)])[:, None]
