"""Week 03 figures (key-value memories, logit and tuned lens), computed from the shipped ``text-lm-v2``
and its shipped trigger search; the ``*_numbers`` functions return what the notebook's prose and the deck
quote (``tests/test_week03_figures.py`` holds them to it)."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course import zoo
from mi_course.methods import ffn_memories as fm
from mi_course.methods import logit_lens as ll

MODEL = "text-lm-v2"
LENS_WINDOWS = 8  # the lens comparison reads 8 held-out windows of 256 tokens (2,048 positions)
N_TRIGGERS = 10  # the interventions use each neuron's top-10 trigger prefixes
RANDOM_SEED = 0  # the random-position baseline of the key measure


@lru_cache(maxsize=1)
def _model():
    return zoo.load(MODEL)


@lru_cache(maxsize=1)
def _top():
    """The shipped search: top 20 of every neuron over the model's 512 shipped held-out windows (130,560 positions)."""
    return fm.load_top_activations(MODEL)


def lens_tokens() -> torch.Tensor:
    """The lens comparison's windows: ``LENS_WINDOWS`` held-out windows, evenly spaced over the shipped 512."""
    from mi_course.zoo import text

    return text.windows(MODEL, "heldout", LENS_WINDOWS)


@lru_cache(maxsize=1)
@torch.no_grad()
def lens_numbers() -> dict:
    """Per block: loss and top-1 agreement with the output of the logit lens and of the shipped tuned lens."""
    model = _model()
    rep = ll.lens_report(model, lens_tokens(), ll.load_tuned_lens(model))
    return {k: v.tolist() for k, v in rep.items()}


def searched_positions(top=None) -> int:
    top = _top() if top is None else top
    return int(top.tokens.shape[0] * (top.tokens.shape[1] - 1))


@lru_cache(maxsize=1)
@torch.no_grad()
def key_value_numbers() -> dict:
    """How shallow the keys are (share of a neuron's top-20 triggers ending in its most common last token, per layer,
    and for 20 random positions of the same text), the value-key agreement per layer (any of 20 triggers; the top
    trigger only; each with values paired with other neurons' triggers), the final LayerNorm's weight range and the
    share of neurons whose top promoted token changes when the LayerNorm is left out."""
    model, top = _model(), _top()
    n_layers, d_mlp = model.cfg.n_layers, model.cfg.d_mlp
    last = fm.last_tokens(top)
    flat = top.tokens[:, 1:].reshape(-1)
    random_last = flat[torch.randint(0, flat.numel(), (d_mlp, 20), generator=torch.Generator().manual_seed(RANDOM_SEED))]
    w = model.state_dict()["ln_final.weight"]
    return {
        "positions": searched_positions(top), "windows": int(top.tokens.shape[0]), "length": int(top.tokens.shape[1]),
        "shares": [fm.mode_share(last[L]) for L in range(n_layers)],
        "random_share": fm.mode_share(random_last),
        "agreement": fm.agreement_by_layer(model, top).tolist(),
        "chance": fm.agreement_by_layer(model, top, shuffled=True).tolist(),
        "agreement_top1": fm.agreement_by_layer(model, top, k=1).tolist(),
        "chance_top1": fm.agreement_by_layer(model, top, k=1, shuffled=True).tolist(),
        "ln_weight_min": float(w.min()), "ln_weight_max": float(w.max()),
        "changed_without_ln": [float((fm.value_vocab_all(model, L).argmax(-1) != (model.W_out[L] @ model.W_U).argmax(-1))
                                     .float().mean()) for L in range(n_layers)],
    }


def strongest_agreeing(model, top, layer: int) -> int:
    """The neuron of ``layer`` whose value's top token is its top trigger's next token, with the largest top activation."""
    vt = fm.value_vocab_all(model, layer).argmax(-1)
    idx = torch.nonzero(fm.next_tokens(top)[layer][:, 0] == vt).flatten()
    return int(idx[top.values[layer, idx, 0].argmax()])


@lru_cache(maxsize=1)
@torch.no_grad()
def intervention_numbers(layers=(0, 3), n_controls: int = 3) -> dict:
    """For the strongest agreeing neuron of each layer, on its top-``N_TRIGGERS`` trigger prefixes: mean log p of its
    promoted token (clean / ablated / boosted x3), top-1 shares, the largest log-p drop from ablating random neurons of
    the layer, its direct effect on the token's logit and the logit change when ablated; for the first layer, the
    logit-lens probability of the token after every block (clean, boosted)."""
    model, top = _model(), _top()
    out = {}
    for L in layers:
        n = strongest_agreeing(model, top, L)
        rows, pos = top.batch_idx[L, n, :N_TRIGGERS], top.pos_idx[L, n, :N_TRIGGERS]
        toks, r = top.tokens[rows], torch.arange(len(rows))
        tgt = int(fm.value_vocab(model, L, n).argmax())

        def lp(logits):
            return logits.log_softmax(-1)[r, pos, tgt]

        def top1(logits):
            return (logits[r, pos].argmax(-1) == tgt).float().mean().item()

        clean, abl, boost = model(toks), fm.scale_neuron(model, toks, L, n, 0.0), fm.scale_neuron(model, toks, L, n, 3.0)
        g = torch.Generator().manual_seed(L)
        ctrl = [(lp(clean) - lp(fm.scale_neuron(model, toks, L, int(c), 0.0))).mean().item()
                for c in torch.randint(0, model.cfg.d_mlp, (n_controls,), generator=g)]
        res = {"neuron": n, "token": model.tokenizer.decode([tgt]),
               "logp_clean": lp(clean).mean().item(), "logp_ablated": lp(abl).mean().item(),
               "logp_boosted": lp(boost).mean().item(), "top1_clean": top1(clean), "top1_ablated": top1(abl),
               "top1_boosted": top1(boost), "control_max_drop": max(ctrl),
               "direct_effect": fm.neuron_direct_effect(model, toks, L, n)[r, pos, tgt].mean().item(),
               "ablation_logit_change": (clean - abl)[r, pos, tgt].mean().item()}
        if L == layers[0]:
            names = {f"blocks.{k}.hook_resid_post" for k in range(model.cfg.n_layers)}

            def lens_prob(hooks):
                with model.hooks(fwd_hooks=hooks):
                    _, cache = model.run_with_cache(toks, names_filter=lambda x: x in names)
                stack = torch.stack([cache[f"blocks.{k}.hook_resid_post"] for k in range(model.cfg.n_layers)])
                return ll.unembed(model, stack).softmax(-1)[:, r, pos, tgt].mean(-1)

            def boost3(post, hook):
                post = post.clone()
                post[..., n] *= 3.0
                return post

            res["lens_clean"] = lens_prob([]).tolist()
            res["lens_boosted"] = lens_prob([(f"blocks.{L}.mlp.hook_post", boost3)]).tolist()
        out[L] = res
    return out


def lenses():
    rep = lens_numbers()
    layers = list(range(len(rep["logit_loss"])))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3), layout="constrained")
    for kind in ("logit", "tuned"):
        axes[0].plot(layers, rep[f"{kind}_loss"], marker="o", label=f"{kind} lens")
        axes[1].plot(layers, rep[f"{kind}_agreement"], marker="o", label=f"{kind} lens")
    axes[0].set(xlabel="after block", ylabel="held-out loss (nats/token)", xticks=layers)
    axes[1].set(xlabel="after block", ylabel="top-1 agreement with output", ylim=(0, 1.05), xticks=layers)
    for ax in axes:
        ax.legend()
    return fig


def keys_and_values():
    num = key_value_numbers()
    layers = list(range(len(num["shares"])))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    axes[0].bar(layers, num["shares"])
    axes[0].axhline(num["random_share"], color="grey", ls="--", label="20 random positions")
    axes[0].set(xlabel="layer", ylabel="share of top-20 triggers\nending in the same token", xticks=layers,
                title=f"keys: how shallow? ({num['positions'] // 1000}k positions)")
    axes[0].legend(fontsize=8)
    axes[1].bar([x - 0.2 for x in layers], num["agreement"], width=0.4, label="value top token = a trigger's next token")
    axes[1].bar([x + 0.2 for x in layers], num["chance"], width=0.4, label="shuffled (chance)")
    axes[1].set(xlabel="layer", ylabel="share of neurons", xticks=layers, title="values (through the final LN)",
                ylim=(0, 1.35 * max(num["agreement"])))
    axes[1].legend(fontsize=8)
    return fig


def interventions():
    num = intervention_numbers()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    labels = [f"{L}.{v['neuron']} -> {ascii(v['token'].rstrip(' ') or v['token'])}" for L, v in num.items()]
    for i, kind in enumerate(("logp_ablated", "logp_clean", "logp_boosted")):
        axes[0].bar([j + (i - 1) * 0.25 for j in range(len(num))], [v[kind] for v in num.values()], width=0.25,
                    label=kind.split("_")[1])
    axes[0].set(xticks=range(len(num)), xticklabels=labels, ylabel="log p(promoted token)\non its trigger prefixes")
    axes[0].legend(fontsize=8)
    first = next(iter(num.values()))
    blocks = list(range(len(first["lens_clean"])))
    axes[1].plot(blocks, first["lens_clean"], marker="o", label="clean")
    axes[1].plot(blocks, first["lens_boosted"], marker="s", label=f"neuron {labels[0].split(' ')[0]} boosted x3")
    axes[1].set(xlabel="logit lens after block (early exit)", ylabel="p(promoted token)", xticks=blocks)
    axes[1].legend(fontsize=8)
    return fig
