"""Week 13 figures: steering sweeps and the bracket circuit's pruning curve, read from ``text-lm-v2``'s
``measured_week13_*.json`` (written by ``benchmarks/textlm_steering_circuits.py --write``), and SHIFT on
``kb-lm`` from its SAE's card. Nothing is measured here: the deck shows what the benchmark measured."""

from __future__ import annotations

import matplotlib.pyplot as plt

from mi_course import zoo

MODEL = "text-lm-v2"
KB_SAE = "kb-lm-L3-subject-topk"


def steering_figures() -> dict:
    return zoo.card(MODEL).measured("week13_steering")


def circuit_figures() -> dict:
    return zoo.card(MODEL).measured("week13_circuit")


def shift_figures() -> dict:
    """The SAE card's SHIFT figures (mean over 5 people splits), ``{key: value}``."""
    return {k: v["value"] for k, v in zoo.sae_card(KB_SAE).figures.items()}


def steering_curves():
    """Behaviour (Δ log P(target)) against damage (extra loss on other text) for each target and method."""
    s = steering_figures()
    targets = {k: t for k, t in s["targets"].items() if "skipped" not in t}
    fig, axes = plt.subplots(1, len(targets), figsize=(3.6 * len(targets), 3), squeeze=False)
    xmax = max(s["damages"]) * 1.6
    for ax, (name, t) in zip(axes[0], targets.items()):
        top = max(r["d_behaviour"] for m in t["methods"].values() for r in m["sweep"] if r["d_damage"] <= xmax)
        for m, style in (("feature", "o-"), ("diff_of_means", "s-"), ("random", "x--")):
            rows = t["methods"][m]["sweep"]
            ax.plot([0] + [r["d_damage"] for r in rows], [0] + [r["d_behaviour"] for r in rows], style,
                    label=m.replace("_", " ") + (" (1 of 8)" if m == "random" else ""))
        if "random_directions" in t:  # the spread of all the random directions, at the damages compared
            rd = t["random_directions"]["at_damage"]
            ds = [d for d in rd if None not in rd[d]]
            ax.fill_between([0.0] + [float(d) for d in ds], [0.0] + [min(rd[d]) for d in ds],
                            [0.0] + [max(rd[d]) for d in ds], color="gray", alpha=0.25,
                            label=f"range of {t['random_directions']['n']} random")
            top = max(top, *(max(rd[d]) for d in ds))
        ax.set_xlim(0, xmax)
        ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.15 * top)
        ax.set_title(f"next token {t['text']!r}", fontsize=10)
        ax.set_xlabel("extra loss (nats)")
    axes[0][0].set_ylabel("Δ log P(target)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def circuit_curve():
    """Faithfulness and completeness against circuit size, beside random circuits of the same size."""
    c = circuit_figures()
    n = [r["n_latents"] + r["n_errors"] for r in c["curve"]]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.semilogx(n, [r["faithfulness"] for r in c["curve"]], "o-", label="faithfulness")
    ax.semilogx(n, [r["completeness"] for r in c["curve"]], "s-", label="completeness")
    ax.semilogx(n, [r["random_faithfulness"] for r in c["curve"]], "x--", label="random circuit")
    ax.set_xlabel("nodes (latents + error terms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def atp_vs_patching():
    """The strongest nodes: attribution patching and integrated gradients against patching one node."""
    c = circuit_figures()
    rows = c["exact_top"]
    fig, ax = plt.subplots(figsize=(4, 3.4))
    ex = [r["exact"] for r in rows]
    ax.scatter(ex, [r["atp"] for r in rows], label="attribution patching")
    ax.scatter(ex, [r["ig"] for r in rows], marker="x", label="integrated gradients")
    lo, hi = min(ex + [0]), max(ex + [0])
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set_xlabel("patching the node"); ax.set_ylabel("estimate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def shift_bars():
    """Job-group accuracy on held-out people whose job group and gender disagree: before, SHIFT + retraining,
    random latents + retraining (probe trained on the fully confounded people; mean over 5 splits)."""
    f = shift_figures()
    keys = (("before", "before"), ("retrained", "SHIFT, retrained"), ("random_retrained", "random, retrained"))
    fig, ax = plt.subplots(figsize=(5, 3))
    vals = [f[f"agree_{k}_accuracy_disagree"] for k, _ in keys]
    ax.bar([label for _, label in keys], vals, color=["grey", "tab:blue", "tab:orange"])
    ax.set_ylabel("accuracy, disagreeing people")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig
