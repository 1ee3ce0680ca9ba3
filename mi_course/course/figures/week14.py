"""Week 14 figures: transcoders on ``text-lm-v2``, read from ``measured_week14_transcoders.json`` and
``measured_week14_circuit.json`` beside the model's card (written by
``benchmarks/textlm_transcoder_circuits.py --write``). Nothing is measured here: the deck shows what the
benchmark measured."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

from mi_course import zoo

MODEL = "text-lm-v2"

# (key in the file, bar label): the faithfulness measures drawn for the transcoder and the SAE
VS_SAE_METRICS = (("explained_variance", "explained variance\n(MLP output)"), ("ce_loss_recovered", "loss recovered"))
# (key in the file, axes title): where the earlier latent's write is removed
ABLATIONS = (("here", "ablated at that position only"), ("everywhere", "ablated at every position"))
KINDS = (("circuit", "o", "tab:blue", "circuit latents"), ("baseline", "x", "tab:orange", "other active latents"))


def transcoder_figures() -> dict:
    """``measured_week14_transcoders.json``: ``evaluation`` (per transcoder), ``vs_sae_equal_l0``, ``settings``."""
    return zoo.card(MODEL).measured("week14_transcoders")


def circuit_figures() -> dict:
    """``measured_week14_circuit.json``: ``circuits``, ``agreement``, ``pairs``, ``connection_ranks``,
    ``de_embedding``, ``settings``."""
    return zoo.card(MODEL).measured("week14_circuit")


def _num(x) -> float:
    """A file value as a float; ``None`` (the benchmark writes NaN as null) becomes NaN."""
    return math.nan if x is None else float(x)


def tc_vs_sae():
    """A transcoder beside a TopK SAE on the MLP output at equal L0 (same k, latents, steps and data) at the
    later MLP: explained variance of the MLP output and loss recovered (spliced in at every position but 0).
    Bars: the transcoder's first (one per measure, in ``VS_SAE_METRICS`` order), then the SAE's."""
    v = transcoder_figures()["vs_sae_equal_l0"]
    metrics = [(k, label) for k, label in VS_SAE_METRICS if k in v["transcoder"] and k in v["sae"]]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    width = 0.38
    xs = range(len(metrics))
    for off, kind, color, label in ((-width / 2, "transcoder", "tab:blue", "transcoder"),
                                    (width / 2, "sae", "tab:orange", "SAE on the MLP output")):
        vals = [_num(v[kind][k]) for k, _ in metrics]
        ax.bar([x + off for x in xs], vals, width, color=color, label=label)
        for x, val in zip(xs, vals):      # the value on each bar; a missing one (null in the file) says so
            ok = val == val
            ax.text(x + off, val if ok else 0.0, f"{val:.3f}" if ok else "n/a", ha="center",
                    va="top" if ok and val < 0 else "bottom", fontsize=8)
    ax.set_xticks(list(xs), [label for _, label in metrics])
    ax.axhline(0, color="grey", lw=0.8)
    vals = [_num(v[kind][k]) for kind in ("transcoder", "sae") for k, _ in metrics]
    vals = [x for x in vals if x == x]
    ax.set_ylim(min([0.0] + vals) - 0.1, max([1.0] + vals) + 0.3)      # room for the legend above 1
    ax.set_title(f"MLP {v['layer']}, equal L0 (k = {v['k']}): {v['d_sae']} latents, {v['steps']} steps each",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    fig.tight_layout()
    return fig


def attribution_vs_ablation():
    """For each circuit (later latent j, its earlier latents i, its top contexts) and, as a baseline, as many
    other earlier latents active at the same token: the direct attribution ``f_i · connection[i, j] / s``
    against the drop of j's pre-activation when i's write is removed, at that position only (left) and at
    every position (right). Circuit pairs are circles, baseline pairs crosses (one scatter each, circuit
    first); the dotted line is y = x. Titles give the benchmark's Pearson r for each kind."""
    c = circuit_figures()
    pairs, ag = c["pairs"], c["agreement"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharex=True, sharey=True)
    vals = [_num(q["attribution"]) for q in pairs] + [_num(q[f"ablation_{w}"]) for q in pairs for w, _ in ABLATIONS]
    vals = [x for x in vals if x == x] + [0.0]
    lo, hi = min(vals), max(vals)
    pad = 0.05 * (hi - lo) or 1e-3
    lo, hi = lo - pad, hi + pad
    for ax, (where, title) in zip(axes, ABLATIONS):
        for kind, marker, color, label in KINDS:
            rows = [q for q in pairs if q["kind"] == kind]
            ax.scatter([_num(q["attribution"]) for q in rows], [_num(q[f"ablation_{where}"]) for q in rows],
                       s=14, marker=marker, color=color, label=f"{label} ({len(rows)})")
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.set_xlim(lo, hi), ax.set_ylim(lo, hi)
        rs = ", ".join(f"{kind} {_fmt(ag[kind][f'pearson_attribution_vs_ablation_{where}'])}" for kind, *_ in KINDS)
        ax.set_title(f"{title}\nPearson r: {rs}", fontsize=10)
        ax.set_xlabel("attribution  f_i · conn[i, j] / s")
    axes[0].set_ylabel("drop of latent j's pre-activation")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _fmt(r) -> str:
    return "n/a" if r is None else f"{r:.2f}"
