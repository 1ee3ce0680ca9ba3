"""Week 11 figures and the numbers the notebook's prose and the deck quote: the 30-fact sweep measured on
the shipped ``kb-lm`` (``measured_week11_kn.json``, ``benchmarks/kb_kn_figures.py``; re-measured on a
subset by ``tests/test_kb_kn_figures.py``), and one live attribution heatmap (the notebook's first fact)."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt

from mi_course import zoo


@lru_cache(maxsize=1)
def measured() -> dict:
    """The sweep: ``{"settings", "summary", "facts"}``."""
    return zoo.card("kb-lm").measured("week11_kn")


def summary() -> dict:
    return measured()["summary"]


def attribution_heatmap():
    """Integrated-gradients attributions of the sweep's first fact, first template (all layers, last token)."""
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import edit_evaluation as ev
    from mi_course.methods import knowledge_neurons as kn

    model, kb = zoo.load("kb-lm"), load_kb()
    case = ev.kb_cases(model, kb, 1, seed=measured()["settings"]["seed"])[0]
    s, rel = case.meta["subject"], case.meta["relation"]
    prompt = kb.templates(rel)[0].format(s)
    attr = kn.attributions(model, [prompt], kb.object_of(s, rel))[0]
    fig, ax = plt.subplots(figsize=(8, 2.4))
    m = float(attr.abs().max())
    ax.imshow(attr.numpy(), aspect="auto", cmap="RdBu_r", vmin=-m, vmax=m)
    ax.set_xlabel("neuron"); ax.set_ylabel("layer")
    ax.set_title(f"attribution to P({kb.object_of(s, rel)} | {prompt!r})", fontsize=9)
    fig.tight_layout()
    return fig


def layer_distribution():
    s = summary()
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.bar(range(len(s["layer_share"])), s["layer_share"])
    ax.set_xlabel("layer"); ax.set_ylabel("share of knowledge neurons")
    ax.set_title(f"{s['n_facts']} facts, {sum(s['layer_counts'])} neurons", fontsize=9)
    fig.tight_layout()
    return fig


def suppress_amplify():
    s = summary()
    groups = [("suppress", "own"), ("suppress", "other"), ("suppress", "neighbours"), ("amplify", "own"), ("amplify", "other")]
    labels = [f"{w}\n{who}" for w, who in groups]
    x = range(len(groups))
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar([i - 0.2 for i in x], [s[f"{w}_kn_{who}"] for w, who in groups], 0.4, label="knowledge neurons")
    ax.bar([i + 0.2 for i in x], [s[f"{w}_random_{who}"] for w, who in groups], 0.4, label="random neurons (same layers)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(list(x)); ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("relative change of P(correct)"); ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def edits():
    s = summary()
    rows = [(f"KN ×{k}", v) for k, v in s["kn_edit"].items()] + [(f"ROME L{k}", v) for k, v in s["rome"].items()]
    fig, ax = plt.subplots(figsize=(7, 3))
    for j, (m, mark) in enumerate((("ES", "o"), ("PS", "s"), ("NS", "^"), ("others_kept", "x"))):
        ax.plot(range(len(rows)), [r[m] for _, r in rows], marker=mark, ls="", label=m)
    ax.set_xticks(range(len(rows))); ax.set_xticklabels([n for n, _ in rows], fontsize=8)
    ax.set_ylim(-0.05, 1.05); ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
