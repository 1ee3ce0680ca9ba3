"""Week 04 figures (Talking Heads), computed from the shipped ``attn-only-2l``."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt

from mi_course import zoo
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import circuits, induction
from mi_course.methods import talking_heads as th

KS = [1, 2, 4, 8, 12, 16]


@lru_cache(maxsize=1)
def _setup():
    model = zoo.load("attn-only-2l")
    return model, th.receiver_matrix(model, 1, 1, "K")


def component_scores():
    model, R = _setup()
    fig, ax = plt.subplots(figsize=(7, 3))
    for h in range(model.cfg.n_heads):
        ax.plot(th.component_composition_scores(circuits.ov_circuit(model, 0, h).AB, R), marker="o", label=f"sender 0.{h}")
    ax.axhline((model.cfg.d_head / model.cfg.d_model) ** 0.5, ls="--", c="grey", label="random direction")
    ax.set(xlabel="SVD component of head 1.1's key side", ylabel="composition score")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def channel_spectrum():
    model, R = _setup()
    fig, ax = plt.subplots(figsize=(7, 3))
    for h in range(model.cfg.n_heads):
        S, _ = th.channel(circuits.ov_circuit(model, 0, h).AB, R)
        ax.plot(S[: model.cfg.d_head], marker="o", label=f"0.{h} -> 1.1 (effective rank {th.effective_rank(S)})")
    ax.set(xlabel="component", ylabel="channel strength")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def intervention():
    model, R = _setup()
    tokens = repeated_random_tokens(32, 24, model.cfg.d_vocab, seed=7)
    ov = circuits.ov_circuit(model, 0, 3).AB
    base = induction.head_scores(model, tokens, 24)["induction"][1, 1].item()
    chan, rand = [base], [base]
    for k in KS:
        _, c = th.run_with_projected_sender(model, tokens, 0, 3, th.channel_basis(ov, R, k))
        chan.append(induction.induction_scores(c["pattern", 1], 24)[1].item())
        rs = []
        for seed in range(3):
            _, c = th.run_with_projected_sender(model, tokens, 0, 3, th.random_subspace(model.cfg.d_model, k, seed))
            rs.append(induction.induction_scores(c["pattern", 1], 24)[1].item())
        rand.append(sum(rs) / 3)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0] + KS, chan, marker="o", label="remove the 0.3 -> 1.1 channel")
    ax.plot([0] + KS, rand, marker="s", label="remove a random subspace")
    ax.set(xlabel="dimensions removed from head 0.3's output", ylabel="induction score of 1.1", ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
