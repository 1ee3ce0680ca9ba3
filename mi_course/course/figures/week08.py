"""Week 08 figures and the numbers the notebook's prose quotes, computed from the shipped ``kb-lm``
with the notebook's own settings (10 facts, 5 noise samples; 4 edit requests)."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.data.knowledge_base import load_kb
from mi_course.methods import causal_tracing as ct
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import rome
from mi_course.viz.causal_tracing import plot_aie, plot_trace

N_TRACE = 10
N_EDIT = 4


@lru_cache(maxsize=1)
def _setup():
    model = zoo.load("kb-lm")
    kb = load_kb()
    g = torch.Generator().manual_seed(0)
    pool = [f for f in kb.facts if f.relation in kb.base_relations]
    facts = [{"prompt": kb.split_templates(pool[i].subject, pool[i].relation, "train")[0], "subject": pool[i].subject,
              "target": pool[i].object, "relation": pool[i].relation}
             for i in torch.randperm(len(pool), generator=g)[:N_TRACE].tolist()]
    subject_ids = torch.cat([model.to_tokens(s, prepend_bos=False)[0] for s in kb.subjects])
    noise = float(3 * model.W_E[subject_ids].std())
    return model, kb, facts, noise


@lru_cache(maxsize=1)
def tracing() -> dict:
    """``{name: AIE [layer, 6]}`` for hidden / mlp / attn / mlp window 3 and the severed variants, plus
    clean and corrupted P, as in the notebook's sections 4 and 5."""
    model, _, facts, noise = _setup()
    out = {}
    for kind in ("hidden", "mlp", "attn"):
        out[kind], res = ct.trace_facts(model, facts, kind=kind, noise=noise, n_samples=5, progress=False)
        if kind == "hidden":
            out["high"] = sum(r.high for r in res) / len(res)
            out["low"] = sum(r.low for r in res) / len(res)
    out["mlp, window 3"], _ = ct.trace_facts(model, facts, kind="mlp", window=3, noise=noise, n_samples=5, progress=False)
    for what in ("mlp", "attn"):
        out[f"severed {what}"], _ = ct.trace_facts(model, facts, kind="hidden", sever=what, noise=noise, n_samples=5,
                                                   progress=False)
    return out


@lru_cache(maxsize=1)
def edit_sweep() -> dict:
    """``{(editor, layer): {"ES", "PS", "NS"}}`` for ROME, FT and FT-L at every layer: the card's figures
    (20 edit requests on the shipped model, ``benchmarks/kb_editing_figures.py``; re-measured on a
    subset by ``tests/test_kb_editing_figures.py``), as the notebook's section 7 shows them."""
    rows = zoo.card("kb-lm").extra["week08"]["editing"]
    out = {}
    for name, metrics in rows.items():
        values = {k: [float(x) for x in row.split()] for k, row in metrics.items()}
        for L in range(len(values["ES"])):
            out[(name, L)] = {k: v[L] for k, v in values.items()}
    return out


def one_trace():
    """The three heatmaps of one fact (paper Fig. 1)."""
    model, _, facts, noise = _setup()
    f = facts[0]
    prompt = f["prompt"].format(f["subject"])
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, kind in zip(axes, ("hidden", "mlp", "attn")):
        plot_trace(ct.trace(model, prompt, f["subject"], f["target"], kind=kind, noise=noise, n_samples=5), ax=ax)
    fig.suptitle(f"{prompt} → {f['target']}", fontsize=10)
    fig.tight_layout()
    return fig


def aie_heatmaps():
    t = tracing()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for ax, kind in zip(axes, ("hidden", "mlp", "attn")):
        plot_aie(t[kind], kind, ax=ax)
        ax.label_outer()
    fig.tight_layout()
    return fig


def severed():
    t = tracing()
    LS = ct.POSITION_NAMES.index("last subject token")
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, label in (("hidden", "hidden state"), ("severed mlp", "MLPs severed"), ("severed attn", "attention severed")):
        ax.plot(t[name][:, LS].numpy(), marker="o", label=label)
    ax.set_xlabel("layer restored"); ax.set_ylabel("AIE, last subject token"); ax.legend()
    fig.tight_layout()
    return fig


def edits_by_layer():
    s = edit_sweep()
    t = tracing()
    LS = ct.POSITION_NAMES.index("last subject token")
    layers = sorted(L for (name, L) in s if name == "ROME")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k, m in (("ES", "o"), ("PS", "s"), ("NS", "^")):
        ax.plot(layers, [s[("ROME", L)][k] for L in layers], marker=m, label=f"ROME {k}")
    ax.plot(layers, t["hidden"][:, LS].numpy(), "k--", label="tracing: hidden, last subject token")
    ax.plot(layers, t["mlp"][:, LS].numpy(), "g:", label="tracing: MLP, last subject token")
    ax.set_xlabel("layer"); ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
