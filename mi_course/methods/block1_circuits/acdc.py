"""ACDC: automatic circuit discovery by patching edges one at a time (Conmy et al. 2023).

The model is the graph of :mod:`mi_course.methods.circuit_discovery` (the same node and edge
names as edge attribution patching): upstream nodes ``embed``, ``L.H`` (a head's output) and
``MLPL`` write into the residual stream; downstream nodes ``L.H.q``/``.k``/``.v``, ``MLPL`` and
``logits`` read it. Because every reader's input is a *sum* of what the earlier writers wrote,
one edge ``u -> d`` can be cut on its own: ``d`` then reads ``u``'s output from the corrupted
run while every other reader still sees ``u``'s current output. :func:`graph_forward` runs the
model this way, in plain torch from the model's weights (LayerNorm, attention, MLP), for any set
of cut edges; with nothing cut it reproduces the model's logits.

ACDC (:func:`acdc`) starts from the full graph and visits the readers in reverse topological
order (logits first); for each edge into the reader it cuts the edge, and keeps it cut when the
KL divergence between the full model's and the graph's next-token distributions (at the
answer position) rises by less than ``threshold``. :func:`acdc_loop` is that loop on its own,
for any ordered list of edges and any score of a set of cut edges.

Written for small models with LayerNorm, standard positional embeddings and MLPs (``ioi-lm``);
one forward pass of the graph per edge tried (about 300 for ``ioi-lm``, a few seconds on a CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.activation_patching import check_pair
from mi_course.methods.circuit_discovery import Circuit, _downstream_names, _order, _upstream_names

Edge = tuple[str, str]


def _node_of(d: str) -> str:
    """A reader name (``1.2.q``) -> the node that owns it (``1.2``)."""
    return d.rsplit(".", 1)[0] if d.count(".") == 2 else d


def all_edges(model) -> list[Edge]:
    """Every edge ``(upstream, downstream)`` of the model's graph, in reverse topological order of
    the reader (logits first; within a reader, the latest writer first): the order ACDC visits them."""
    up, down = _upstream_names(model), _downstream_names(model)
    edges = []
    for d in reversed(down):
        for u in reversed(up):
            if _order(u, True) < _order(_node_of(d), False):
                edges.append((u, d))
    return edges


def _weights(model) -> dict:
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    cfg = model.cfg
    if getattr(cfg, "attn_only", False) or getattr(cfg, "normalization_type", "LN") != "LN":
        raise InputError("acdc.graph_forward expects a model with MLPs and LayerNorm (like ioi-lm)")
    if getattr(cfg, "positional_embedding_type", "standard") != "standard":
        raise InputError("acdc.graph_forward expects learned (standard) positional embeddings")
    return {"sd": sd, "W_Q": model.W_Q.detach(), "W_K": model.W_K.detach(), "W_V": model.W_V.detach(),
            "W_O": model.W_O.detach(), "b_Q": model.b_Q.detach(), "b_K": model.b_K.detach(),
            "b_V": model.b_V.detach(), "b_O": model.b_O.detach(), "W_in": model.W_in.detach(),
            "b_in": model.b_in.detach(), "W_out": model.W_out.detach(), "b_out": model.b_out.detach(),
            "W_U": model.W_U.detach(), "b_U": model.b_U.detach(), "eps": float(getattr(cfg, "eps", 1e-5)),
            "act": cfg.act_fn}


def _ln(x, w, b, eps):
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w + b


def _act(x, name):
    if name == "relu":
        return F.relu(x)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))))
    return F.gelu(x)


@torch.no_grad()
def graph_forward(model, tokens: torch.Tensor, cut: Iterable[Edge] = (),
                  corrupted: dict[str, torch.Tensor] | None = None, _w=None,
                  reuse: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
    """Run the model as a graph; ``(logits [batch, pos, vocab], outputs)``.

    ``outputs[u]`` ``[batch, pos, d_model]`` is what upstream node ``u`` wrote in this run.
    Every edge in ``cut`` carries ``corrupted[u]`` (the outputs of a run on corrupted prompts,
    e.g. ``graph_forward(model, corrupted_tokens)[1]``) instead of ``u``'s current output.
    ``reuse``: outputs of an uncut run on the same tokens; nodes that come before every reader of
    a cut edge are taken from it instead of being recomputed (a speed-up only).
    """
    w = _w or _weights(model)
    sd, cfg = w["sd"], model.cfg
    cut = set(cut)
    if cut and corrupted is None:
        raise InputError("cutting edges needs the corrupted run's outputs (corrupted=...)")
    first = min((_order(_node_of(d), False) for _, d in cut), default=float("inf"))
    if reuse is None:
        first = 0
    n_pos = tokens.shape[1]
    out = {"embed": sd["embed.weight"][tokens] + sd["pos_embed.weight"][:n_pos]}
    const = torch.zeros_like(out["embed"])  # the attention biases b_O: the same in every run

    into: dict[str, list[str]] = {}
    for u, d in cut:
        into.setdefault(d, []).append(u)
    total = {}  # the uncut sum, shared by every reader of one stage

    def read(d: str) -> torch.Tensor:
        key = len(out)
        if key not in total:
            total.clear()
            total[key] = const + sum(out.values())
        x = total[key]
        for u in into.get(d, ()):
            if u in out:
                x = x + (corrupted[u] - out[u])
        return x

    mask = torch.triu(torch.ones(n_pos, n_pos, dtype=torch.bool), 1)
    for layer in range(cfg.n_layers):
        ln_w, ln_b = sd[f"blocks.{layer}.ln1.weight"], sd[f"blocks.{layer}.ln1.bias"]
        zs = []
        new = {}
        for h in range(cfg.n_heads):
            if 2 * layer + 1 < first:
                new[f"{layer}.{h}"] = reuse[f"{layer}.{h}"]
                continue
            x = {c: _ln(read(f"{layer}.{h}.{c}"), ln_w, ln_b, w["eps"]) for c in "qkv"}
            q = x["q"] @ w["W_Q"][layer, h] + w["b_Q"][layer, h]
            k = x["k"] @ w["W_K"][layer, h] + w["b_K"][layer, h]
            v = x["v"] @ w["W_V"][layer, h] + w["b_V"][layer, h]
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            pattern = scores.masked_fill(mask, float("-inf")).softmax(-1)
            zs.append(pattern @ v)
            new[f"{layer}.{h}"] = zs[-1] @ w["W_O"][layer, h]
        out.update(new)
        const = const + w["b_O"][layer]
        if 2 * layer + 2 < first:
            out[f"MLP{layer}"] = reuse[f"MLP{layer}"]
            continue
        x = _ln(read(f"MLP{layer}"), sd[f"blocks.{layer}.ln2.weight"], sd[f"blocks.{layer}.ln2.bias"], w["eps"])
        out[f"MLP{layer}"] = _act(x @ w["W_in"][layer] + w["b_in"][layer], w["act"]) @ w["W_out"][layer] + w["b_out"][layer]
    x = _ln(read("logits"), sd["ln_final.weight"], sd["ln_final.bias"], w["eps"])
    return x @ w["W_U"] + w["b_U"], out


def kl_at(clean_logits: torch.Tensor, logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Mean over prompts of KL(clean || patched) between next-token distributions at ``positions[i]``."""
    rows = torch.arange(len(positions))
    p = clean_logits[rows, positions].log_softmax(-1)
    q = logits[rows, positions].log_softmax(-1)
    return (p.exp() * (p - q)).sum(-1).mean()


def acdc_loop(edges: Sequence[Edge], score: Callable[[set], float], threshold: float) -> set:
    """ACDC's pruning loop: the set of edges it cuts.

    Visit ``edges`` in the given order. Cut each one tentatively; keep it cut when
    ``score(cut edges) - score(edges cut so far)`` is below ``threshold`` (the graph got worse by
    less than the threshold), otherwise restore it. ``score`` of a set of cut edges is a
    distance from the full model (ACDC: KL divergence), ``score(set())`` the uncut graph's.
    """
    cut: set = set()
    current = float(score(cut))
    for e in edges:
        trial = float(score(cut | {e}))
        if trial - current < threshold:
            cut.add(e)
            current = trial
    return cut


@dataclass
class ACDCResult:
    """The edges ACDC kept, the circuit they form, and what it cost."""

    kept: list[Edge]
    cut: set
    kl: float                    # KL of the pruned graph from the full model
    n_forward: int               # graph forward passes used
    circuit: Circuit = field(default_factory=lambda: Circuit([], []))

    @property
    def nodes(self) -> list[str]:
        return self.circuit.nodes


def circuit_of(kept: Iterable[Edge]) -> Circuit:
    """The nodes that lie on a path from ``embed`` to ``logits`` through ``kept`` edges."""
    kept = list(kept)
    forward, changed = {"embed"}, True
    while changed:
        changed = False
        for u, d in kept:
            if u in forward and _node_of(d) not in forward:
                forward.add(_node_of(d))
                changed = True
    backward, changed = {"logits"}, True
    while changed:
        changed = False
        for u, d in kept:
            if _node_of(d) in backward and u not in backward:
                backward.add(u)
                changed = True
    alive = forward & backward
    edges = [(u, d, 0.0) for u, d in kept if u in alive and _node_of(d) in alive]
    nodes = sorted(alive - {"embed", "logits"}, key=lambda n: (_order(n, True), n))
    return Circuit(edges, nodes)


def acdc(model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, positions: torch.Tensor,
         threshold: float, progress: bool = True, loop: Callable = acdc_loop) -> ACDCResult:
    """ACDC on ``model`` (see the module docstring). ``positions`` ``[batch]``: where the answer is
    read (IOI: ``ds.end``). Cuts every edge whose removal raises the KL by less than ``threshold``.
    ``loop(edges, score, threshold) -> cut edges``: the pruning loop (default :func:`acdc_loop`)."""
    check_pair(clean_tokens, corrupted_tokens)
    if not isinstance(threshold, (int, float)) or not threshold >= 0:
        raise InputError(f"threshold must be a number >= 0, got {threshold!r}")
    positions = torch.as_tensor(positions)
    if positions.shape != (clean_tokens.shape[0],):
        raise InputError(f"positions must be [batch] = [{clean_tokens.shape[0]}], got {list(positions.shape)}")
    w = _weights(model)
    clean_logits, clean = graph_forward(model, clean_tokens, _w=w)
    _, corrupted = graph_forward(model, corrupted_tokens, _w=w)
    edges = all_edges(model)
    calls = [0]
    bar = tqdm(total=len(edges) + 1, desc="ACDC", disable=not progress, leave=False)

    def score(cut: set) -> float:
        calls[0] += 1
        bar.update(1)
        logits, _ = graph_forward(model, clean_tokens, cut, corrupted, _w=w, reuse=clean)
        return float(kl_at(clean_logits, logits, positions))

    cut = set(loop(edges, score, threshold))
    bar.close()
    kept = [e for e in edges if e not in cut][::-1]
    logits, _ = graph_forward(model, clean_tokens, cut, corrupted, _w=w)
    return ACDCResult(kept, cut, float(kl_at(clean_logits, logits, positions)), calls[0], circuit_of(kept))


def graph_metric(model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, kept: Iterable[Edge],
                 metric: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """``metric`` of the graph in which every edge not in ``kept`` carries the corrupted output."""
    w = _weights(model)
    _, corrupted = graph_forward(model, corrupted_tokens, _w=w)
    keep = set(kept)
    cut = [e for e in all_edges(model) if e not in keep]
    logits, _ = graph_forward(model, clean_tokens, cut, corrupted, _w=w)
    return float(metric(logits))
