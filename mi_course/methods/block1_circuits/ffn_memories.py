"""Feed-forward layers as key-value memories (Geva et al. 2021; 2022).

An MLP layer computes ``sum_i f(x . k_i) v_i``: the rows of ``W_in`` (columns in
TransformerLens's ``[d_model, d_mlp]`` layout) are *keys*, matched against the residual
stream; the rows of ``W_out`` (``[d_mlp, d_model]``) are *values*, added to it in proportion
to the key's activation. Here:

* the *trigger examples* of a key: the corpus prefixes on which neuron ``i`` fires most;
* a value *projected to the vocabulary*: ``v_i @ W_U`` (which tokens neuron ``i`` promotes);
* the *agreement*: how often a value's top token is the next token after one of its key's
  trigger prefixes (Geva et al. 2021 found ~0 in layers 1-10 of 16, rising to ~3.5%);
* *shallow vs broad* keys: how often a key's trigger prefixes end in the same token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError, expect_shape
from mi_course.zoo import hooks as hk
from mi_course import validation as check


def _check_neuron(model, layer: int, neuron: int | None = None) -> None:
    if getattr(model.cfg, "attn_only", False):
        raise InputError("this model is attention-only: it has no MLP neurons (use text-lm)")
    if not isinstance(layer, int) or not 0 <= layer < model.cfg.n_layers:
        raise InputError(f"layer must be an int in 0..{model.cfg.n_layers - 1}, got {layer!r}")
    if neuron is not None and (not isinstance(neuron, int) or not 0 <= neuron < model.cfg.d_mlp):
        raise InputError(f"neuron must be an int in 0..{model.cfg.d_mlp - 1}, got {neuron!r}")


@torch.no_grad()
def mlp_activations(model, tokens: torch.Tensor, layers: list[int] | None = None, chunk: int = 16) -> torch.Tensor:
    """Neuron activations (``mlp.hook_post``) ``[n_layers_selected, batch, pos, d_mlp]``."""
    check.tokens("tokens", tokens, model)
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    for L in layers:
        _check_neuron(model, L)
    names = set(hk.at_layers("mlp_post", layers))
    outs = []
    for i in range(0, tokens.shape[0], chunk):
        _, cache = model.run_with_cache(tokens[i : i + chunk], names_filter=lambda n: n in names)
        outs.append(torch.stack([cache[hk.mlp_post(L)] for L in layers]))
    return torch.cat(outs, dim=1)


@dataclass
class TopActivations:
    """Top-``k`` activating positions of every neuron.

    values: ``[n_layers, d_mlp, k]``; batch_idx, pos_idx: ``[n_layers, d_mlp, k]`` (long).
    """

    values: torch.Tensor
    batch_idx: torch.Tensor
    pos_idx: torch.Tensor
    tokens: torch.Tensor  # [batch, pos], the corpus sample searched


@torch.no_grad()
def top_activations(model, tokens: torch.Tensor, k: int = 20, skip_first: int = 1, progress: bool = False) -> TopActivations:
    """The ``k`` positions in ``tokens`` where each neuron of each layer fires most.

    Positions ``< skip_first`` (the ``<bos>`` token) are never chosen.
    """
    check.tokens("tokens", tokens, model)
    if k < 1 or k > tokens.shape[0] * (tokens.shape[1] - skip_first):
        raise InputError(f"k must be between 1 and the number of searched positions, got {k}")
    n_pos = tokens.shape[1] - skip_first
    vals, flat = [], []
    for L in tqdm(range(model.cfg.n_layers), desc="top activations", disable=not progress, leave=False):
        acts = mlp_activations(model, tokens, [L])[0][:, skip_first:]  # [batch, pos', d_mlp]
        v, i = acts.reshape(-1, acts.shape[-1]).topk(k, dim=0)  # [k, d_mlp]
        vals.append(v.T)
        flat.append(i.T)
    vals, flat = torch.stack(vals), torch.stack(flat)
    return TopActivations(vals, flat // n_pos, flat % n_pos + skip_first, tokens)


def trigger_examples(top: TopActivations, layer: int, neuron: int) -> list[tuple[int, int, float]]:
    """``[(batch index, position, activation), ...]`` of one neuron, strongest first."""
    return [(int(b), int(p), float(v)) for b, p, v in
            zip(top.batch_idx[layer, neuron], top.pos_idx[layer, neuron], top.values[layer, neuron])]


def value_vocab(model, layer: int, neuron: int) -> torch.Tensor:
    """The value vector projected to the vocabulary, ``W_out[layer, neuron] @ W_U``: ``[d_vocab]``."""
    _check_neuron(model, layer, neuron)
    return (model.W_out[layer, neuron] @ model.W_U).detach()


def value_vocab_all(model, layer: int) -> torch.Tensor:
    """Every value of ``layer`` projected to the vocabulary: ``[d_mlp, d_vocab]``."""
    _check_neuron(model, layer)
    return (model.W_out[layer] @ model.W_U).detach()


def value_top_tokens(model, layer: int, neuron: int, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logit contributions [k], token ids [k])`` the value promotes most."""
    return value_vocab(model, layer, neuron).topk(k)


def next_tokens(top: TopActivations, layer: int | None = None) -> torch.Tensor:
    """The token after each trigger prefix: ``[n_layers, d_mlp, k]`` (or ``[d_mlp, k]`` for one layer).

    A trigger at the last position has no next token: -1.
    """
    b, p = top.batch_idx, top.pos_idx
    nxt = p + 1
    ok = nxt < top.tokens.shape[1]
    out = torch.full_like(p, -1)
    out[ok] = top.tokens[b[ok], nxt[ok]]
    return out if layer is None else out[layer]


def last_tokens(top: TopActivations) -> torch.Tensor:
    """The last token of each trigger prefix (the token at the firing position): ``[n_layers, d_mlp, k]``."""
    return top.tokens[top.batch_idx, top.pos_idx]


def value_key_agreement(values_top1: torch.Tensor, key_next: torch.Tensor) -> torch.Tensor:
    """Per neuron: is the value's top token among its triggers' next tokens? ``[..., d_mlp]`` (bool).

    values_top1: ``[..., d_mlp]`` token ids; key_next: ``[..., d_mlp, k]`` token ids.
    """
    if values_top1.shape != key_next.shape[:-1]:
        raise InputError(f"values_top1 {list(values_top1.shape)} must match key_next {list(key_next.shape)} without its last dim")
    return (key_next == values_top1[..., None]).any(-1)


@torch.no_grad()
def agreement_by_layer(model, top: TopActivations, k: int | None = None, shuffled: bool = False, seed: int = 0) -> torch.Tensor:
    """Fraction of each layer's neurons whose value's top token is the next token of one of its
    top-``k`` triggers: ``[n_layers]``. ``shuffled=True`` pairs each value with another neuron's
    triggers (the chance level)."""
    nxt = next_tokens(top)
    if k is not None:
        nxt = nxt[..., :k]
    out = []
    g = torch.Generator().manual_seed(seed)
    for L in range(model.cfg.n_layers):
        top1 = value_vocab_all(model, L).argmax(-1)
        keys = nxt[L]
        if shuffled:
            keys = keys[torch.randperm(keys.shape[0], generator=g)]
        out.append(value_key_agreement(top1, keys).float().mean())
    return torch.stack(out)


def last_token_share(top: TopActivations, k: int | None = None) -> torch.Tensor:
    """How *shallow* each layer's keys are: for each neuron, the share of its top-``k`` triggers
    that end in its most common last token, averaged over neurons: ``[n_layers]``.

    1.0 = every trigger ends in the same token (a token detector); low = broader patterns.
    """
    last = last_tokens(top)
    if k is not None:
        last = last[..., :k]
    mode_count = torch.zeros(last.shape[:-1])
    for L in range(last.shape[0]):
        s, _ = last[L].sort(-1)
        # longest run of equal ids in each sorted row
        same = (s[:, 1:] == s[:, :-1]).long()
        run = torch.ones_like(s)
        for j in range(1, s.shape[1]):
            run[:, j] = torch.where(same[:, j - 1].bool(), run[:, j - 1] + 1, torch.ones_like(run[:, j]))
        mode_count[L] = run.max(-1).values.float()
    return (mode_count / last.shape[-1]).mean(-1)


def prefix_text(model, tokens: torch.Tensor, batch: int, pos: int, context: int = 12) -> list[str]:
    """The last ``context`` tokens of a trigger prefix, as strings (for printing and the viewer)."""
    start = max(0, pos + 1 - context)
    return [model.tokenizer.decode([int(t)]) for t in tokens[batch, start : pos + 1]]


def agreement_rate(value_logits: torch.Tensor, trigger_next: torch.Tensor) -> float:
    """Share of neurons whose value's top token is the next token of at least one trigger.

    value_logits: ``[d_mlp, d_vocab]`` (``W_out @ W_U`` of one layer); trigger_next:
    ``[d_mlp, k]`` token ids (-1 = none). Geva et al. 2021's agreement, for one layer.
    """
    expect_shape("value_logits", value_logits, (None, None), "Expected [d_mlp, d_vocab].")
    expect_shape("trigger_next", trigger_next, (value_logits.shape[0], None), "Expected [d_mlp, k].")
    return float(value_key_agreement(value_logits.argmax(-1), trigger_next).float().mean())
