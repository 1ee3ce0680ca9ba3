"""Week 02 figures, computed from the shipped ``attn-only-2l``."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import ablation, circuits, induction

SEQ_LEN = 24


@lru_cache(maxsize=1)
def _model_and_tokens():
    return zoo.load("attn-only-2l"), repeated_random_tokens(16, SEQ_LEN, 128, seed=7)


def head_scores():
    model, tokens = _model_and_tokens()
    s = induction.head_scores(model, tokens, SEQ_LEN)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
    for ax, key in zip(axes, ["prev_token", "induction"]):
        im = ax.imshow(s[key], cmap="Blues", vmin=0, vmax=1)
        for (l, h), v in zip([(l, h) for l in range(2) for h in range(4)], s[key].flatten()):
            ax.text(h, l, f"{v:.2f}", ha="center", va="center", color="white" if v > 0.5 else "black")
        ax.set_title(key.replace("_", "-") + " score")
        ax.set_xlabel("head"); ax.set_ylabel("layer"); ax.set_xticks(range(4)); ax.set_yticks(range(2))
    fig.colorbar(im, ax=axes)
    return fig


def induction_pattern():
    model, tokens = _model_and_tokens()
    from mi_course.viz.attention import plot_attention

    _, cache = model.run_with_cache(tokens[:1, :17])
    names = zoo.card("attn-only-2l").token_names
    toks = [names[t] for t in tokens[0, :17]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    plot_attention(cache["pattern", 0][0, 3], toks, "head 0.3 (previous token)", axes[0])
    t2 = repeated_random_tokens(1, 8, 128, seed=3)
    _, c2 = model.run_with_cache(t2)
    plot_attention(c2["pattern", 1][0, 1], [names[t] for t in t2[0]], "head 1.1 on a repeated sequence", axes[1])
    fig.tight_layout()
    return fig


def ablations():
    model, tokens = _model_and_tokens()
    rep = torch.zeros(2, 4)
    for layer in range(2):
        for head in range(4):
            rep[layer, head] = induction.repeated_half_losses(ablation.ablated_head_loss(model, tokens, layer, head), SEQ_LEN)[1]
    base = induction.repeated_half_losses(induction.per_token_loss(model(tokens), tokens), SEQ_LEN)
    fig, ax = plt.subplots(figsize=(7, 3))
    labels = [f"{l}.{h}" for l in range(2) for h in range(4)]
    ax.bar(labels, rep.flatten(), color=["tab:orange" if l == "0.3" else "tab:blue" for l in labels])
    ax.axhline(base[1], color="k", ls="--", label=f"no ablation ({base[1]:.2f})")
    ax.axhline(base[0], color="gray", ls=":", label=f"first (unrepeated) half ({base[0]:.2f})")
    ax.set_ylabel("loss on repeated half (nats)"); ax.set_xlabel("zero-ablated head"); ax.legend()
    return fig


def composition():
    model, _ = _model_and_tokens()
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8))
    for ax, kind in zip(axes, "QKV"):
        im = ax.imshow(circuits.composition_scores(model, kind)[0, :, 1, :], cmap="Reds", vmin=0, vmax=0.3)
        ax.set_title(f"{kind}-composition"); ax.set_xlabel("layer-1 head"); ax.set_ylabel("layer-0 head")
    fig.colorbar(im, ax=axes)
    fig.suptitle(f"random baseline {circuits.baseline_composition_score(64, 16):.2f}", y=1.02)
    return fig


def phase_change():
    """The shipped model's own training history (on its card): no retraining while building the deck."""
    from mi_course.training.induction_recipe import history

    h = history()
    n = len([s for s in h["step"] if s <= 1000])
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(h["step"][:n], h["induction_L1"][:n], label="best layer-1 induction score")
    ax.plot(h["step"][:n], h["prev_token_L0"][:n], label="best layer-0 prev-token score")
    ax.set_xlabel("training step (first 1,000 of 3,000)"); ax.set_ylabel("score"); ax.set_ylim(0, 1)
    loss = ax.twinx()
    loss.plot(h["step"][:n], h["loss"][:n], color="tab:gray", lw=0.8, label="training loss")
    loss.set_ylabel("loss (nats)")
    handles = ax.get_legend_handles_labels()[0] + loss.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="center left", fontsize=8)
    fig.tight_layout()
    return fig


def k_composition_circuit():
    """Top-1 diagonal of the full K-composition circuit through each layer-0 head, and of the direct QK circuit."""
    model, _ = _model_and_tokens()
    W_E = model.W_E.detach()
    table = torch.zeros(4, 5)
    for h in range(4):
        w1 = circuits.head_weights(model, 1, h)
        table[h, 0] = circuits.top1_diagonal_fraction(circuits.full_qk_circuit(W_E, w1["W_Q"], w1["W_K"]).AB[1:, 1:])
        for h0 in range(4):
            w0 = circuits.head_weights(model, 0, h0)
            kc = circuits.k_composition_circuit(W_E, w1["W_Q"], w1["W_K"], w0["W_V"], w0["W_O"]).AB[1:, 1:]
            table[h, 1 + h0] = circuits.top1_diagonal_fraction(kc)
    w1, w0 = circuits.head_weights(model, 1, 1), circuits.head_weights(model, 0, 3)
    kc = circuits.k_composition_circuit(W_E, w1["W_Q"], w1["W_K"], w0["W_V"], w0["W_O"]).AB[1:41, 1:41]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.3, 1]})
    im = axes[0].imshow(table, cmap="Greens", vmin=0, vmax=1)
    for (i, j), v in zip([(i, j) for i in range(4) for j in range(5)], table.flatten()):
        axes[0].text(j, i, f"{v:.0%}", ha="center", va="center", color="white" if v > 0.6 else "black")
    axes[0].set_xticks(range(5), ["direct QK", "via 0.0", "via 0.1", "via 0.2", "via 0.3"])
    axes[0].set_yticks(range(4), [f"head 1.{h}" for h in range(4)])
    axes[0].set_title("top-1 diagonal fraction (chance 0.8%)", fontsize=10)
    axes[1].imshow(kc - kc.mean(-1, keepdim=True), cmap="RdBu_r")
    axes[1].set_title("K-composition circuit 0.3 -> 1.1 (40 tokens)", fontsize=10)
    axes[1].set_xlabel("token before the key"); axes[1].set_ylabel("query token")
    fig.tight_layout()
    return fig


def qk_by_source():
    """Head 1.1's induction score split by (query source, key source)."""
    model, tokens = _model_and_tokens()
    grid = circuits.qk_by_source(model, tokens, SEQ_LEN, 1, 1)
    names = circuits.source_names(model, 1)
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-10, vmax=10)
    for (i, j), v in zip([(i, j) for i in range(6) for j in range(6)], grid.flatten()):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8, color="white" if abs(v) > 5 else "black")
    ax.set_xticks(range(6), names); ax.set_yticks(range(6), names)
    ax.set_xlabel("key source"); ax.set_ylabel("query source"); ax.set_title("head 1.1: score terms at induction pairs", fontsize=10)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def logit_attribution():
    """Each path's share of the correct token's logit, first vs repeated half."""
    model, tokens = _model_and_tokens()
    dla = circuits.logit_attribution_by_path(model, tokens)
    names = circuits.path_names(model)
    first, second = dla[:, :, 1:SEQ_LEN].mean((1, 2)), dla[:, :, SEQ_LEN + 1:].mean((1, 2))
    x = torch.arange(len(names)).float()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(x - 0.2, first, width=0.4, color="gray", label="first copy")
    ax.bar(x + 0.2, second, width=0.4, color="tab:blue", label="repeated copy")
    ax.set_xticks(x.tolist(), names); ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("share of the correct logit"); ax.legend()
    fig.tight_layout()
    return fig
