"""Week 03 figures (key-value memories, logit and tuned lens), computed from the shipped ``text-lm``."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt

from mi_course import zoo
from mi_course.methods import ffn_memories as fm
from mi_course.methods import logit_lens as ll
from mi_course.training import textlm_recipe


@lru_cache(maxsize=1)
def _setup():
    model = zoo.load("text-lm")
    sample = textlm_recipe.heldout_batch(n=48)
    return model, sample


@lru_cache(maxsize=1)
def _top():
    model, sample = _setup()
    return fm.top_activations(model, sample, k=20)


def lenses():
    model, sample = _setup()
    rep = ll.lens_report(model, sample[:16], ll.load_tuned_lens(model))
    layers = list(range(model.cfg.n_layers))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for kind in ("logit", "tuned"):
        axes[0].plot(layers, rep[f"{kind}_loss"], marker="o", label=f"{kind} lens")
        axes[1].plot(layers, rep[f"{kind}_agreement"], marker="o", label=f"{kind} lens")
    axes[0].set(xlabel="after block", ylabel="held-out loss (nats/token)", xticks=layers)
    axes[1].set(xlabel="after block", ylabel="top-1 agreement with output", ylim=(0, 1.05), xticks=layers)
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    return fig


def keys_and_values():
    model, _ = _setup()
    top = _top()
    layers = list(range(model.cfg.n_layers))
    share = fm.last_token_share(top)
    agree = fm.agreement_by_layer(model, top)
    chance = fm.agreement_by_layer(model, top, shuffled=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].bar(layers, share)
    axes[0].set(xlabel="layer", ylabel="share of top-20 triggers\nending in the same token", xticks=layers,
                title="keys: how shallow?")
    axes[1].bar([x - 0.2 for x in layers], agree, width=0.4, label="value top token = a trigger's next token")
    axes[1].bar([x + 0.2 for x in layers], chance, width=0.4, label="shuffled (chance)")
    axes[1].set(xlabel="layer", ylabel="share of neurons", xticks=layers, title="values: agreement with keys")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
