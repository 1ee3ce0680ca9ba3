"""Week 02 figures, computed from the shipped ``attn-only-2l``; the last two (section 13, induction heads in
real Python code) from ``text-lm`` (v1) and ``text-lm-v2`` on v2's shipped held-out windows."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import ablation, circuits, induction
from mi_course.zoo import hooks, text

SEQ_LEN = 24
V1, V2 = "text-lm", "text-lm-v2"   # section 13: when v2 replaces text-lm, V1 becomes v1's new name
REAL_TEXT_WINDOWS, REAL_TEXT_TOP = 16, 3


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


@lru_cache(maxsize=1)
def real_text_measurements() -> dict:
    """Section 13's numbers: real-text induction per head for v1 and v2, and v2's zero-ablations.

    -> ``{"real": {V1: ..., V2: ...}`` (``induction.real_text_induction``), ``"deltas"``: label -> (Δ loss on
    copyable tokens, Δ loss on the others) for v2's top-3 heads, three draws of 3 random other heads and its
    best previous-token head, ``"prev_scores"``: {name: [layer, head]}, ``"top"``, ``"prev_head"``}.
    """
    v1, v2 = zoo.load(V1), zoo.load(V2)
    held = text.windows(V2, "heldout", REAL_TEXT_WINDOWS)[:, : v1.cfg.n_ctx]
    with torch.no_grad():
        real = {name: induction.real_text_induction(m, held, ngram=2) for name, m in ((V1, v1), (V2, v2))}
        H = v2.cfg.n_heads
        order = [divmod(int(i), H) for i in real[V2]["induction_attention"].flatten().argsort(descending=True)]
        top, others = order[:REAL_TEXT_TOP], order[REAL_TEXT_TOP:]
        g = torch.Generator().manual_seed(0)
        randoms = [[others[i] for i in torch.randperm(len(others), generator=g)[:REAL_TEXT_TOP]] for _ in range(3)]
        base = (real[V2]["copy_loss"], real[V2]["other_loss"])

        def delta(heads):
            copy, other = induction.copy_losses(ablation.ablate_heads(v2, held, heads), held, ngram=2)
            return copy["loss"] - base[0], other["loss"] - base[1]

        prev_scores = {}
        for name, m in ((V1, v1), (V2, v2)):
            _, cache = m.run_with_cache(held, names_filter=hooks.only("pattern"))
            prev_scores[name] = torch.stack([induction.prev_token_scores(cache["pattern", l])
                                             for l in range(m.cfg.n_layers)])
        prev_head = divmod(int(prev_scores[V2].argmax()), H)
        deltas = {"top-3 induction heads": delta(top)}
        deltas.update({f"random heads {i + 1}": delta(h) for i, h in enumerate(randoms)})
        deltas[f"previous-token head {prev_head[0]}.{prev_head[1]}"] = delta([prev_head])
    return {"real": real, "deltas": deltas, "prev_scores": prev_scores, "top": top, "prev_head": prev_head}


def real_text_induction():
    """Attention from each repeated-bigram position to the token after the earlier occurrence, per head, v1 beside
    v2, with the attention to a random earlier token as the baseline."""
    m = real_text_measurements()
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), sharey=True)
    for ax, (name, r) in zip(axes, m["real"].items()):
        ind, rnd = r["induction_attention"].flatten(), r["random_attention"].flatten()
        n_layers, n_heads = r["induction_attention"].shape
        ax.bar(range(len(ind)), ind, color="tab:blue", label="to the token after the earlier occurrence")
        ax.scatter(range(len(rnd)), rnd, color="k", marker="_", s=80, zorder=3, label="to a random earlier token")
        ax.set_xticks(range(len(ind)), [f"{l}.{h}" for l in range(n_layers) for h in range(n_heads)], fontsize=7)
        ax.set_title(name, fontsize=10); ax.set_xlabel("head (layer.head)")
    axes[0].set_ylabel("mean attention"); axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def real_text_ablation():
    """Zero-ablating v2's heads: Δ loss on copyable tokens against Δ loss on the others."""
    deltas = real_text_measurements()["deltas"]
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for label, (dc, do) in deltas.items():
        color, marker, size = (("tab:red", "*", 160) if label.startswith("top") else
                               ("tab:blue", "s", 50) if label.startswith("prev") else ("gray", "o", 40))
        name = "3 random heads (3 draws)" if label == "random heads 1" else None if label.startswith("random") else label
        ax.scatter(do, dc, color=color, marker=marker, s=size, label=name)
    lim = max(max(d) for d in deltas.values()) * 1.1
    ax.plot([0, lim], [0, lim], "k:", lw=0.8); ax.axhline(0, color="k", lw=0.4); ax.axvline(0, color="k", lw=0.4)
    ax.set_xlabel("Δ loss, other tokens (nats)"); ax.set_ylabel("Δ loss, copyable tokens (nats)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
