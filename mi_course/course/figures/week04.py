"""Week 04 figures (Talking Heads), computed from the shipped ``attn-only-2l`` and ``ioi-lm``."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.data import ioi
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import circuits, induction, metrics
from mi_course.methods import talking_heads as th

KS = [1, 2, 4, 8, 12, 16]


@lru_cache(maxsize=1)
def _setup():
    model = zoo.load("attn-only-2l")
    return model, th.receiver_matrix(model, 1, 1, "K")


def random_baseline(model, layer: int = 0, n: int = 2000, seed: int = 0) -> torch.Tensor:
    """Scores of ``n`` random unit directions against every head of ``layer`` (pooled): ``[n_heads * n]``."""
    return torch.cat([th.random_direction_scores(circuits.ov_circuit(model, layer, h).AB, n, seed)
                      for h in range(model.cfg.n_heads)])


def component_scores():
    model, R = _setup()
    base = random_baseline(model)
    lo, hi = base.quantile(0.05).item(), base.quantile(0.95).item()
    fig, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
    ax.axhspan(lo, hi, color="grey", alpha=0.2, label="random direction, 5-95%")
    ax.axhline(base.mean().item(), ls="--", c="grey", label=f"random direction, mean {base.mean():.2f}")
    for h in range(model.cfg.n_heads):
        ax.plot(th.component_composition_scores(circuits.ov_circuit(model, 0, h).AB, R), marker="o", label=f"sender 0.{h}")
    ax.set(xlabel="SVD component of head 1.1's key side (strongest first)", ylabel="composition score",
           xticks=range(model.cfg.d_head))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def channel_spectrum():
    model, R = _setup()
    fig, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
    for h in range(model.cfg.n_heads):
        S, _ = th.channel(circuits.ov_circuit(model, 0, h).AB, R)
        ax.plot(S[: model.cfg.d_head], marker="o", label=f"0.{h} -> 1.1 (effective rank {th.effective_rank(S)})")
    ax.set(xlabel="component", ylabel="channel strength", xticks=range(model.cfg.d_head))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
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
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    ax.plot([0] + KS, chan, marker="o", label="remove the 0.3 -> 1.1 channel")
    ax.plot([0] + KS, rand, marker="s", label="remove a random subspace")
    ax.set(xlabel="dimensions removed from head 0.3's output", ylabel="induction score of 1.1", ylim=(0, 1))
    ax.legend(fontsize=8)
    return fig


def ioi_channel_effects(n_random: int = 30) -> dict[str, dict[str, float]]:
    """Logit difference of ``ioi-lm`` (48 prompts of template 0) when one direction is removed from
    head 1.s's output: the channel into the name movers' queries (2.1-2.3 stacked), that channel seen
    only by layer-2 attention, random directions (mean, min), random directions inside the head's
    output space (mean, min), and the head's top output direction at END. Keys ``"1.0"`` .. ``"1.3"``."""
    model = zoo.load("ioi-lm")
    ds = ioi.make_ioi(48, seed=0, templates=0)

    def ld(logits):
        return metrics.logit_diff(logits, ds.io, ds.s, ds.end).item()

    movers = torch.cat([th.receiver_matrix(model, 2, r, "Q") for r in (1, 2, 3)], dim=1)
    _, cache = model.run_with_cache(ds.tokens, names_filter=lambda n: n == "blocks.1.attn.hook_z")
    out = {"clean": {"value": ld(model(ds.tokens))}}
    for s in range(model.cfg.n_heads):
        d = th.channel_basis(circuits.ov_circuit(model, 1, s).AB, movers, 1)
        rand = torch.tensor([ld(th.remove_from_head_output(model, ds.tokens, 1, s, th.random_subspace(64, 1, seed)))
                             for seed in range(n_random)])
        space, _ = torch.linalg.qr(model.W_O[1, s].detach().T)
        g = torch.Generator().manual_seed(s)
        inside = []
        for _ in range(n_random):
            v = space @ torch.randn(space.shape[1], 1, generator=g)
            inside.append(ld(th.remove_from_head_output(model, ds.tokens, 1, s, v / v.norm())))
        inside = torch.tensor(inside)
        w_end = th.sender_output(model, cache["blocks.1.attn.hook_z"], 1, s)[torch.arange(len(ds)), ds.end]
        top = torch.linalg.svd(w_end, full_matrices=False).Vh[0][:, None]
        out[f"1.{s}"] = {
            "channel": ld(th.remove_from_head_output(model, ds.tokens, 1, s, d)),
            "channel_layer2_only": ld(th.run_with_edit_seen_only_by(model, ds.tokens, 1, s, d, reader_layer=2)),
            "random_mean": rand.mean().item(), "random_min": rand.min().item(),
            "inside_mean": inside.mean().item(), "inside_min": inside.min().item(),
            "top_output": ld(th.remove_from_head_output(model, ds.tokens, 1, s, top)),
            "cos_channel_top": abs(float(d[:, 0] @ top[:, 0])),
        }
    return out


def ioi_channel():
    eff = ioi_channel_effects()
    clean = eff["clean"]["value"]
    heads = ["1.0", "1.1", "1.2", "1.3"]
    kinds = [("channel", "channel direction"), ("channel_layer2_only", "same, seen only by layer-2 attention"),
             ("random_mean", "random direction (mean of 30)"), ("inside_mean", "random in the head's output space"),
             ("top_output", "head's top output direction")]
    fig, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
    w = 0.16
    for i, (k, label) in enumerate(kinds):
        ax.bar([j + (i - 2) * w for j in range(4)], [clean - eff[h][k] for h in heads], width=w, label=label)
    ax.set(xticks=range(4), xticklabels=[f"remove from {h}" for h in heads],
           ylabel=f"drop in logit difference\n(clean {clean:.2f})")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig
