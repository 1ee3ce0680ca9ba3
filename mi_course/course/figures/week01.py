"""Week 01 figures (Zoom In), from a tiny conv net trained in seconds (seed 0, as in the notebook)."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course.methods import zoom_in as z


@lru_cache(maxsize=1)
def _net():
    with torch.enable_grad():
        net, _ = z.train_curve_net(seed=0, steps=250, progress=False)
    return net


def layer1():
    net = _net()
    t1 = z.tuning(net, 1, "lines")
    sel = z.selectivity(t1)
    angles = [180 * i / 16 for i in range(16)]
    fig, axes = plt.subplots(2, 8, figsize=(13, 3.4))
    for u in range(8):
        axes[0, u].imshow(net.conv1.weight[u, 0].detach(), cmap="RdBu_r")
        axes[0, u].axis("off")
        axes[0, u].set_title(f"unit {u} (sel {sel[u]:.2f})", fontsize=8)
        axes[1, u].plot(angles, t1[u])
        axes[1, u].set_xticks([0, 90, 180])
        axes[1, u].tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def curve_detectors():
    net = _net()
    tl, tc = z.tuning(net, 2, "lines"), z.tuning(net, 2, "curves")
    units = z.curve_detectors(net)
    fig, axes = plt.subplots(1, max(len(units), 1), figsize=(4 * max(len(units), 1), 2.6), squeeze=False)
    for ax, u in zip(axes[0], units):
        ax.plot([360 * i / 16 for i in range(16)], tc[u], label="curves (facing)")
        ax.plot([180 * i / 16 for i in range(16)], tl[u], label="lines (orientation)")
        ax.set(title=f"layer-2 unit {u}", xlabel="degrees")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def feature_visualizations():
    """Feature visualisation by optimisation of every layer-2 unit (25 ascent steps from noise)."""
    net = _net()
    fig, axes = plt.subplots(1, 16, figsize=(16, 1.5))
    with torch.no_grad():
        for u, ax in enumerate(axes):
            img = z.feature_visualization(net, 2, u)
            ax.imshow(img[0, 0], cmap="gray")
            ax.set_title(f"{u} ({net.layer2(img)[0, u].amax():.0f})", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return fig


def channel_ablation():
    """Relative drop of each curve detector's response on its best curve when one layer-1 channel is zeroed."""
    from mi_course.data import curves

    net = _net()
    with torch.no_grad():
        tc = z.tuning(net, 2, "curves")
        units = z.curve_detectors(net)
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for k, u in enumerate(units):
            best = curves.probe_curves(16)[int(tc[u].argmax())][None]
            drop = z.channel_ablation_effect(net, u, best) / tc[u].max()
            ax.bar(torch.arange(8) + 0.4 * k - 0.2, drop, width=0.4, label=f"curve detector {u}")
    ax.axhline(0.1, color="gray", ls=":", lw=1)
    ax.set_xlabel("zeroed layer-1 channel"); ax.set_ylabel("relative drop"); ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
