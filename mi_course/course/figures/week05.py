"""Week 05 figures, computed from the shipped ``ioi-lm`` on the notebook's prompts."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.data import ioi
from mi_course.methods import activation_patching as ap
from mi_course.methods import attribution_patching as atp
from mi_course.methods import circuit_discovery as cd
from mi_course.methods import logit_attribution as la
from mi_course.methods import metrics
from mi_course.viz.patching import plot_patching


@lru_cache(maxsize=1)
def _setup():
    model = zoo.load("ioi-lm")
    ds = ioi.make_ioi(24, seed=0, templates=0)
    abc = ds.abc(seed=1)
    metric = metrics.ioi_metric(ds)
    clean, corrupted = float(metric(model(ds.tokens))), float(metric(model(abc.tokens)))
    return model, ds, abc, metric, metrics.normalized(metric, clean, corrupted)


def dla_heads():
    model, ds, _, _, _ = _setup()
    dla = la.dla_by_head(model, ds.tokens, ds.io, ds.s, ds.end)
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    m = float(dla.abs().max())
    im = ax.imshow(dla, cmap="RdBu", vmin=-m, vmax=m)
    for layer in range(dla.shape[0]):
        for h in range(dla.shape[1]):
            ax.text(h, layer, f"{dla[layer, h]:.1f}", ha="center", va="center", fontsize=8)
    ax.set_xlabel("head"); ax.set_ylabel("layer"); ax.set_title("direct logit attribution")
    fig.colorbar(im, ax=ax)
    return fig


def resid_patching():
    model, ds, abc, _, norm = _setup()
    res = ap.activation_patching(model, ds.tokens, abc.tokens, norm, "resid_pre", by_pos=True, progress=False)
    fig, ax = plt.subplots(figsize=(9, 2.8))
    plot_patching(res, ds.position_labels(), "residual stream patching (share restored)", ax=ax)
    return fig


def atp_scatter():
    model, ds, abc, _, norm = _setup()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    for ax, (name, by_pos) in zip(axes, [("z", False), ("resid_pre", True), ("mlp_out", True)]):
        act = ap.activation_patching(model, ds.tokens, abc.tokens, norm, name, by_pos, progress=False)
        att = atp.attribution_patching(model, ds.tokens, abc.tokens, norm, name, by_pos)
        r = torch.corrcoef(torch.stack([act.flatten(), att.flatten()]))[0, 1]
        ax.scatter(act.flatten(), att.flatten(), s=8)
        lo, hi = float(min(act.min(), att.min())), float(max(act.max(), att.max()))
        ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8)
        ax.set_title(f"{name} (r = {r:.2f})"); ax.set_xlabel("activation patching")
    axes[0].set_ylabel("attribution patching")
    fig.tight_layout()
    return fig


def circuit_graph():
    """The 40 strongest EAP edges, drawn layer by layer."""
    model, ds, abc, metric, _ = _setup()
    circuit = cd.prune(cd.edge_attribution_patching(model, ds.tokens, abc.tokens, metric), top_k=40)
    H = model.cfg.n_heads

    def xy(node: str) -> tuple[float, float]:
        node = node.rsplit(".", 1)[0] if node.count(".") == 2 else node
        if node == "embed":
            return (H - 1) / 2, 0
        if node == "logits":
            return (H - 1) / 2, 2 * model.cfg.n_layers + 1
        if node.startswith("MLP"):
            return H + 0.5, 2 * int(node[3:]) + 1.5
        layer, h = node.split(".")
        return int(h), 2 * int(layer) + 1

    fig, ax = plt.subplots(figsize=(6, 5))
    top = max(abs(s) for _, _, s in circuit.edges)
    for u, d, s in circuit.edges:
        (x0, y0), (x1, y1) = xy(u), xy(d)
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", lw=0.5 + 3 * abs(s) / top,
                                                          color="tab:blue" if s > 0 else "tab:red", alpha=0.7))
    for n in ["embed", "logits"] + circuit.nodes:
        x, y = xy(n)
        ax.text(x, y, n, ha="center", va="center", bbox=dict(boxstyle="round", fc="white"), fontsize=9)
    ax.set_xlim(-1, H + 1.5); ax.set_ylim(-0.7, 2 * model.cfg.n_layers + 1.7); ax.axis("off")
    ax.set_title("edge attribution patching: 40 strongest edges")
    return fig
