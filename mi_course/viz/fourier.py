"""Matplotlib figures for week 06 (grokking): training curves, Fourier spectra, progress measures.

Every function returns the ``matplotlib.figure.Figure`` so a notebook shows it and a test can
inspect it without a display.
"""

from __future__ import annotations

from typing import Sequence

import torch

from mi_course.errors import InputError

# The phase boundaries of the paper's mainline run (Nanda et al. 2023), for reference lines.
PAPER_PHASES = (1400, 9400, 14000)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def training_curves(epochs: torch.Tensor, train_loss: torch.Tensor, test_loss: torch.Tensor,
                    test_acc: torch.Tensor | None = None, phases: Sequence[int] = (), title: str = ""):
    """Train/test loss (log scale) against epoch, optional test accuracy, and phase lines."""
    if len(epochs) != len(train_loss) or len(epochs) != len(test_loss):
        raise InputError("epochs, train_loss and test_loss must have the same length.")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(epochs, train_loss, label="train loss")
    ax.plot(epochs, test_loss, label="test loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats)")
    for x in phases:
        if x is not None:
            ax.axvline(x, color="grey", ls=":", lw=1)
    if test_acc is not None:
        ax2 = ax.twinx()
        ax2.plot(epochs, test_acc, color="tab:green", alpha=0.6, label="test accuracy")
        ax2.set_ylabel("test accuracy")
        ax2.set_ylim(0, 1.02)
        ax2.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title(title or "memorisation, then generalisation")
    fig.tight_layout()
    return fig


def frequency_spectrum(norms: torch.Tensor, key_freqs: Sequence[int] = (), title: str = ""):
    """Bar chart of a per-frequency norm (from ``frequency_norms``), key frequencies highlighted."""
    if not isinstance(norms, torch.Tensor) or norms.ndim != 1:
        raise InputError("norms must be a 1-D tensor from fourier.frequency_norms.")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3))
    ks = list(range(1, len(norms)))
    colors = ["tab:red" if k in set(key_freqs) else "tab:blue" for k in ks]
    ax.bar(ks, norms[1:].tolist(), color=colors)
    ax.set_xlabel("frequency k (w_k = 2 pi k / p)")
    ax.set_ylabel("squared norm")
    ax.set_title(title or "norm per frequency (key frequencies in red)")
    fig.tight_layout()
    return fig


def fourier_heatmap(coeffs: torch.Tensor, names: Sequence[str] | None = None, title: str = "", max_ticks: int = 40,
                    colorbar_label: str = "norm over neurons"):
    """Heatmap of a 2-D Fourier coefficient grid ``[p, p]`` (rows: a-component, columns: b-component).

    Every row and column is labelled when there are at most ``max_ticks`` of them (otherwise every
    n-th); the title sits above the whole figure (wrapped), clear of the colour bar, which is labelled.
    """
    import textwrap

    if not isinstance(coeffs, torch.Tensor) or coeffs.ndim != 2:
        raise InputError("coeffs must be a 2-D tensor, e.g. fourier_transform_2d(x).norm(dim=-1).")
    if names is not None and len(names) < max(coeffs.shape):
        raise InputError(f"names must label every row and column: got {len(names)} names for a "
                         f"{list(coeffs.shape)} grid.")
    plt = _plt()
    n = max(coeffs.shape)
    size = 5.5 if n <= 30 else 5.0
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(coeffs.abs().numpy(), cmap="Blues")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label(colorbar_label)
    if names is not None:
        step = max(1, -(-n // max_ticks))
        ticks = list(range(0, n, step))
        fs = 7 if n <= 30 else 6
        ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=fs)
        ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=fs)
    ax.set_xlabel("component in b")
    ax.set_ylabel("component in a")
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 60)), fontsize=10)
    fig.tight_layout()
    return fig


def progress_measures(measures: dict, phases: Sequence[int] = (), title: str = ""):
    """The paper's progress measures against epoch (from ``grokking.progress_measures``).

    Left: train, test, restricted and excluded loss (log scale). Right: sum of squared weights.
    """
    need = ("epoch", "train_loss", "test_loss", "restricted_loss", "excluded_loss", "sum_sq_weights")
    missing = [k for k in need if k not in measures]
    if missing:
        raise InputError(f"measures is missing {missing}; pass the dict from grokking.progress_measures.")
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    e = measures["epoch"]
    for key, style in [("train_loss", "-"), ("test_loss", "-"), ("restricted_loss", "--"), ("excluded_loss", "--")]:
        ax.plot(e, measures[key], style, marker=".", label=key.replace("_", " "))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=8)
    bx.plot(e, measures["sum_sq_weights"], marker=".", color="tab:purple")
    bx.set_xlabel("epoch")
    bx.set_ylabel("sum of squared weights")
    for a in (ax, bx):
        for x in phases:
            if x is not None:
                a.axvline(x, color="grey", ls=":", lw=1)
    fig.suptitle(title or "progress measures across training")
    fig.tight_layout()
    return fig
