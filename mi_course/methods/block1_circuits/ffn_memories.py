"""Feed-forward layers as key-value memories (Geva et al. 2021; 2022).

An MLP layer computes ``sum_i f(x . k_i) v_i``: the rows of ``W_in`` (columns in
TransformerLens's ``[d_model, d_mlp]`` layout) are *keys*, matched against the residual
stream; the rows of ``W_out`` (``[d_mlp, d_model]``) are *values*, added to it in proportion
to the key's activation. Here:

* the *trigger examples* of a key: the corpus prefixes on which neuron ``i`` fires most;
* a value *projected to the vocabulary* through the final LayerNorm: ``((v_i - mean(v_i)) * w_ln) @ W_U``
  (which tokens neuron ``i`` promotes; the LayerNorm centres and rescales every dimension before ``W_U``);
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
        raise InputError("this model is attention-only: it has no MLP neurons (use text-lm-v2)")
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
def top_activations(model, tokens: torch.Tensor, k: int = 20, skip_first: int = 1, progress: bool = False,
                    chunk: int = 32) -> TopActivations:
    """The ``k`` positions in ``tokens [batch, pos]`` where each neuron of each layer fires most.

    One forward pass per chunk of ``chunk`` sequences (all layers at once), keeping a running
    top-``k`` per neuron. Positions ``< skip_first`` (the ``<bos>`` token) are never chosen.
    """
    check.tokens("tokens", tokens, model)
    if not isinstance(k, int) or k < 1 or k > tokens.shape[0] * (tokens.shape[1] - skip_first):
        raise InputError(f"k must be between 1 and the number of searched positions, got {k}")
    for L in range(model.cfg.n_layers):
        _check_neuron(model, L)
    n_pos = tokens.shape[1] - skip_first
    names = [hk.mlp_post(L) for L in range(model.cfg.n_layers)]
    best_v = best_i = None
    for start in tqdm(range(0, tokens.shape[0], chunk), desc="top activations", disable=not progress, leave=False):
        _, cache = model.run_with_cache(tokens[start : start + chunk], names_filter=lambda n: n in names)
        acts = torch.stack([cache[n][:, skip_first:] for n in names])  # [L, b, pos', d_mlp]
        flat = acts.reshape(acts.shape[0], -1, acts.shape[-1])  # [L, b*pos', d_mlp]
        v, i = flat.topk(min(k, flat.shape[1]), dim=1)  # [L, k', d_mlp]
        i = i + start * n_pos  # global flat index
        if best_v is not None:
            v, order = torch.cat([best_v, v], 1).topk(k, dim=1) if best_v.shape[1] + v.shape[1] >= k else \
                torch.cat([best_v, v], 1).sort(dim=1, descending=True)
            i = torch.cat([best_i, i], 1).gather(1, order)
        best_v, best_i = v, i
    vals, flat = best_v.transpose(1, 2), best_i.transpose(1, 2)  # [L, d_mlp, k]
    return TopActivations(vals, flat // n_pos, flat % n_pos + skip_first, tokens)


def top_activations_layer(model, tokens: torch.Tensor, layer: int, k: int, chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer's top-``k`` search (never at position 0): ``(values, batch_idx, pos_idx)``, each ``[d_mlp, k]``,
    strongest first. The reference for week 03's exercise."""
    _check_neuron(model, layer)
    top = top_activations(model, tokens, k=k, chunk=chunk)
    return top.values[layer], top.batch_idx[layer], top.pos_idx[layer]


TOP_ACTIVATIONS_FILE = "top_activations.safetensors"


def save_top_activations(model, tokens: torch.Tensor, path, model_sha256: str, k: int = 20,
                         source: str | None = None) -> dict:
    """Search ``tokens`` (all layers) and save the result with the model checkpoint's sha256.

    Returns the metadata written beside it (``<path>.json``: the file's own sha256, the model's, shapes,
    and ``source``, where the searched windows come from, when given)."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    from mi_course.zoo.cards import sha256_of

    top = top_activations(model, tokens, k=k, progress=True)
    path = Path(path)
    save_file({"values": top.values.contiguous(), "batch_idx": top.batch_idx.int().contiguous(),
               "pos_idx": top.pos_idx.int().contiguous(), "tokens": top.tokens.int().contiguous()}, str(path))
    path.chmod(0o644)
    meta = {"sha256": sha256_of(path), "model_sha256": model_sha256, "k": k,
            "windows": int(tokens.shape[0]), "positions": int(tokens.shape[1]),
            "searched_tokens": int(tokens.shape[0] * (tokens.shape[1] - 1))}
    if source:
        meta["source"] = source
    meta_path = path.with_suffix(".json")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    meta_path.chmod(0o644)
    return meta


def load_top_activations(name: str = "text-lm-v2") -> TopActivations:
    """The shipped top-20 search of zoo model ``name`` over its held-out windows (week 03).

    Checks the file's sha256 and that it was computed on the checkpoint the zoo holds now
    (rebuild with ``python -m mi_course.training.textlm_triggers <name>`` after retraining)."""
    import json

    from safetensors.torch import load_file

    from mi_course import zoo
    from mi_course.zoo.cards import MODELS_DIR, verify_file

    path = MODELS_DIR / name / TOP_ACTIVATIONS_FILE
    rebuild = f"python -m mi_course.training.textlm_triggers {name}"
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        raise InputError(f"no shipped top activations for '{name}' ({path.name}); "
                         f"build them with `{rebuild}`")
    meta = json.loads(meta_path.read_text())
    verify_file(path, meta["sha256"], f"top-activations file of '{name}'", rebuild)
    if meta["model_sha256"] != zoo.card(name).sha256:
        raise InputError(f"{path.name} was computed on another checkpoint of '{name}' (the model was retrained): "
                         f"rebuild it with `{rebuild}`")
    d = load_file(str(path))
    return TopActivations(d["values"], d["batch_idx"].long(), d["pos_idx"].long(), d["tokens"].long())


def trigger_examples(top: TopActivations, layer: int, neuron: int) -> list[tuple[int, int, float]]:
    """``[(batch index, position, activation), ...]`` of one neuron, strongest first."""
    return [(int(b), int(p), float(v)) for b, p, v in
            zip(top.batch_idx[layer, neuron], top.pos_idx[layer, neuron], top.values[layer, neuron])]


def _ln_final_weight(model) -> torch.Tensor:
    sd = model.state_dict()
    return sd["ln_final.weight"].detach() if "ln_final.weight" in sd else torch.ones(model.cfg.d_model)


def value_logits(W_out: torch.Tensor, w_ln: torch.Tensor, W_U: torch.Tensor) -> torch.Tensor:
    """Values ``W_out [..., d_model]`` seen through the final LayerNorm and the unembedding:
    ``((v - mean(v)) * w_ln) @ W_U``, ``[..., d_vocab]``.

    The LayerNorm centres the residual stream and multiplies dimension ``j`` by ``w_ln[j]``
    (its division by the standard deviation is one positive number per position, which changes
    no ranking), so this is the direction in logit space that adding ``v`` pushes.
    """
    expect_shape("w_ln", w_ln, (W_out.shape[-1],), "Expected the final LayerNorm's weight [d_model].")
    expect_shape("W_U", W_U, (W_out.shape[-1], None), "Expected the unembedding [d_model, d_vocab].")
    return ((W_out - W_out.mean(-1, keepdim=True)) * w_ln) @ W_U


def value_vocab(model, layer: int, neuron: int) -> torch.Tensor:
    """The value vector projected to the vocabulary through the final LayerNorm: ``[d_vocab]`` (see :func:`value_logits`)."""
    _check_neuron(model, layer, neuron)
    return value_logits(model.W_out[layer, neuron].detach(), _ln_final_weight(model), model.W_U.detach())


def value_vocab_all(model, layer: int) -> torch.Tensor:
    """Every value of ``layer`` projected to the vocabulary through the final LayerNorm: ``[d_mlp, d_vocab]``."""
    _check_neuron(model, layer)
    return value_logits(model.W_out[layer].detach(), _ln_final_weight(model), model.W_U.detach())


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


def mode_share(last: torch.Tensor) -> float:
    """How shallow a layer's keys are: for each neuron (row of ``last [d_mlp, k]``, the last token of
    each of its ``k`` triggers), the share of triggers that end in its most common token; averaged
    over neurons. 1.0 = every neuron a single-token detector."""
    expect_shape("last", last, (None, None), "Expected [d_mlp, k] token ids.")
    counts = torch.stack([torch.bincount(row - row.min()).max() for row in last])
    return float(counts.float().mean() / last.shape[1])


# -- interventions on one neuron -------------------------------------------------------------
def scale_neuron(model, tokens: torch.Tensor, layer: int, neuron: int, scale: float) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` with neuron ``layer.neuron``'s activation multiplied by ``scale``
    at every position (0 ablates it, 2 doubles it)."""
    _check_neuron(model, layer, neuron)
    expect_shape("tokens", tokens, (None, None))

    def hook(post, hook):
        post = post.clone()
        post[..., neuron] = post[..., neuron] * scale
        return post

    return model.run_with_hooks(tokens, fwd_hooks=[(hk.mlp_post(layer), hook)])


@torch.no_grad()
def neuron_direct_effect(model, tokens: torch.Tensor, layer: int, neuron: int) -> torch.Tensor:
    """What neuron ``layer.neuron`` adds to the final logits *directly* (through the residual stream,
    the final LayerNorm at its actual scale, and ``W_U``): ``[batch, pos, d_vocab]``.

    ``act[b, p] * value_logits(v) / scale[b, p]``, with ``scale`` the final LayerNorm's
    ``hook_scale``. Removing the neuron changes the logits by about minus this, plus whatever it
    does through later layers (its indirect effect).
    """
    _check_neuron(model, layer, neuron)
    expect_shape("tokens", tokens, (None, None))
    names = {hk.mlp_post(layer), hk.FINAL_SCALE}
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    act = cache[hk.mlp_post(layer)][..., neuron]  # [batch, pos]
    scale = cache[hk.FINAL_SCALE]  # [batch, pos, 1]
    return (act[..., None] / scale) * value_vocab(model, layer, neuron)
