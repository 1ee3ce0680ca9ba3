"""Week 10 figures and the numbers the notebook's prose and the deck quote: Hase et al. 2023 on
``kb-lm``, read from the shipped sweep (``measured_week10_localization.json``; re-measured on a subset
by ``tests/test_localization_vs_editing.py``)."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.methods import localization_vs_editing as lve

#: Hase et al. 2023, GPT-J, CounterFact (652 facts), ROME's rewrite score.
PAPER = {"layer": 0.947, "tracing": 0.016, "both": 0.948, "rho_layer6": -0.13}


@lru_cache(maxsize=1)
def sweep() -> dict:
    """The stored sweep with its arrays as tensors (``tracing``, ``rewrite``, ``paraphrase`` ``[facts, layers]``)."""
    m = dict(zoo.card("kb-lm").measured("week10_localization"))
    for k in ("tracing", "rewrite", "paraphrase", "neighbourhood"):
        m[k] = torch.tensor(m[k], dtype=torch.float64)
    return m


def numbers() -> dict:
    """The figures the prose quotes, recomputed from the stored arrays."""
    m = sweep()
    te, rw = m["tracing"], m["rewrite"]
    return {"r2": lve.regression_table(te, rw), "r2_paraphrase": lve.regression_table(te, m["paraphrase"]),
            "r2_shuffled": lve.shuffled_baseline(te, rw, m["settings"]["seed"]),
            "per_layer_correlation": lve.per_layer_correlation(te, rw).tolist(),
            "peak_correlation": lve.peak_correlation(te, rw), "peak_agreement": lve.peak_agreement(te, rw),
            "layer_choice": lve.layer_choice(te, rw), "mean_tracing": te.mean(0).tolist(),
            "mean_rewrite": rw.mean(0).tolist(), "n_facts": te.shape[0]}


def by_layer():
    """Mean tracing effect and mean rewrite score by layer."""
    m = sweep()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    L = torch.arange(m["tracing"].shape[1])
    ax.plot(L, m["tracing"].mean(0), "o-", label="tracing effect (hidden, last subject token)")
    ax.plot(L, m["rewrite"].mean(0), "s-", label="ROME rewrite score")
    ax.set_xlabel("layer"); ax.set_ylabel(f"mean over {m['tracing'].shape[0]} facts"); ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def scatter():
    """One dot per (fact, layer): tracing effect vs rewrite score, coloured by layer."""
    m = sweep()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for L in range(m["tracing"].shape[1] - 1):
        ax.scatter(m["tracing"][:, L], m["rewrite"][:, L], s=10, label=f"layer {L}")
    ax.set_xlabel("tracing effect"); ax.set_ylabel("rewrite score"); ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def r2_table():
    """R² of edit success on layer / tracing / both: ours (and the shuffled baseline) beside the paper's."""
    n = numbers()
    fig, ax = plt.subplots(figsize=(6, 3.0))
    x = torch.arange(3).double()
    rows = (("kb-lm", n["r2"]), ("kb-lm, tracing shuffled", n["r2_shuffled"]), ("Hase et al., GPT-J", PAPER))
    for i, (name, t) in enumerate(rows):
        ax.bar(x + (i - 1) * 0.27, [t[k] for k in lve.MODELS], width=0.27, label=name)
    ax.set_xticks(x, ["layer", "tracing", "both"]); ax.set_ylabel("R²"); ax.set_ylim(0, 1); ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
