"""Automated circuit discovery by edge attribution patching (EAP; Syed, Rager & Conmy 2023).

The model is a graph. Upstream nodes write into the residual stream: the embeddings, every
head (``z @ W_O``) and every MLP. Downstream nodes read it: every head's query, key and value
input, every MLP's input, and the logits. An *edge* u -> d exists when u is earlier than d.

Patching one edge (giving d the clean output of u while everything else runs on the corrupted
prompts) is estimated, as in attribution patching, by

    score(u -> d) = sum over batch and positions of (out_u(clean) - out_u(corrupted)) . dM/d in_d

where ``in_d`` is the residual stream as node d reads it (before its LayerNorm), at the
corrupted run. Two forward passes and one backward pass give every edge's score. ACDC
(Conmy et al. 2023) patches edges one by one instead; EAP is its cheap approximation.

:func:`prune` keeps the highest-scoring edges and then only the nodes on a path from the
embeddings to the logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mi_course.errors import InputError
from mi_course.methods.activation_patching import check_pair
from mi_course.methods.attribution_patching import gradients
from mi_course.methods.components import Component, head, mlp
from mi_course.methods.metrics import Metric, check_metric
from mi_course.zoo import hooks as hk


@dataclass
class EdgeScores:
    """Edge scores: ``scores[i, j]`` for ``upstream[i] -> downstream[j]`` (NaN where no edge)."""

    upstream: list[str]
    downstream: list[str]
    scores: torch.Tensor  # [n_upstream, n_downstream]
    metric_clean: float
    metric_corrupted: float

    def edges(self) -> list[tuple[str, str, float]]:
        """Every existing edge with its score, most important (largest |score|) first."""
        out = []
        for i, u in enumerate(self.upstream):
            for j, d in enumerate(self.downstream):
                s = float(self.scores[i, j])
                if s == s:
                    out.append((u, d, s))
        return sorted(out, key=lambda e: -abs(e[2]))


@dataclass
class Circuit:
    """A pruned graph: its edges, and the heads and MLPs that lie on a path to the logits."""

    edges: list[tuple[str, str, float]]
    nodes: list[str] = field(default_factory=list)

    @property
    def heads(self) -> list[Component]:
        out = []
        for n in self.nodes:
            if n[0].isdigit():
                layer, h = n.split(".")
                out.append(head(int(layer), int(h)))
        return out

    @property
    def mlps(self) -> list[Component]:
        return [mlp(int(n[3:])) for n in self.nodes if n.startswith("MLP")]


def _upstream_names(model) -> list[str]:
    names = ["embed"]
    for layer in range(model.cfg.n_layers):
        names += [f"{layer}.{h}" for h in range(model.cfg.n_heads)] + [f"MLP{layer}"]
    return names


def _downstream_names(model) -> list[str]:
    names = []
    for layer in range(model.cfg.n_layers):
        names += [f"{layer}.{h}.{x}" for x in "qkv" for h in range(model.cfg.n_heads)] + [f"MLP{layer}"]
    return names + ["logits"]


def _order(name: str, upstream: bool) -> float:
    """Position in the forward pass (heads of layer L at 2L+1, MLP L at 2L+2)."""
    if name == "embed":
        return 0
    if name == "logits":
        return float("inf")
    if name.startswith("MLP"):
        return 2 * int(name[3:]) + 2
    return 2 * int(name.split(".")[0]) + 1


def _hook_names(model) -> dict[str, str]:
    n = {}
    for layer in range(model.cfg.n_layers):
        for x in ("q", "k", "v", "z"):
            n[f"{x}{layer}"] = hk.name(x, layer)
        for site in ("mlp_in", "mlp_out", "resid_pre", "resid_mid"):
            n[f"{site}{layer}"] = hk.name(site, layer)
    n["final_in"] = hk.FINAL_IN
    n["final_out"] = hk.FINAL_OUT
    return n


def _outputs(model, cache: dict[str, torch.Tensor], hooks: dict[str, str]) -> dict[str, torch.Tensor]:
    """What each upstream node writes into the residual stream, ``[batch, pos, d_model]``."""
    W_O = model.W_O.detach()
    out = {"embed": cache[hooks["resid_pre0"]]}
    for layer in range(model.cfg.n_layers):
        z = cache[hooks[f"z{layer}"]]
        per_head = torch.einsum("bphe,hed->bphd", z, W_O[layer])
        for h in range(model.cfg.n_heads):
            out[f"{layer}.{h}"] = per_head[:, :, h]
        out[f"MLP{layer}"] = cache[hooks[f"mlp_out{layer}"]]
    return out


def _vjp_through(norm, x: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Gradients ``[k, batch, pos, d_model]`` w.r.t. the input ``x`` of LayerNorm ``norm``, for
    ``k`` output gradients at once."""
    k = grads.shape[0]
    xs = x.detach().unsqueeze(0).expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:]).clone()
    xs.requires_grad_(True)
    with torch.enable_grad():
        y = norm(xs)
        (g,) = torch.autograd.grad(y, xs, grads.reshape(k * x.shape[0], *x.shape[1:]))
    return g.reshape(k, *x.shape)


def edge_attribution_patching(
    model, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor, metric: Metric,
) -> EdgeScores:
    """Score every edge of the model's graph on ``metric`` (denoising: corrupted run, clean
    outputs patched in). See the module docstring."""
    check_pair(clean_tokens, corrupted_tokens, model)
    if getattr(model.cfg, "attn_only", False):
        raise InputError("edge_attribution_patching expects a model with MLPs")
    hooks = _hook_names(model)
    names = set(hooks.values())
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(clean_tokens, names_filter=lambda n: n in names)
        m_clean = float(check_metric(metric, clean_logits))
    value, corr, grad = gradients(model, corrupted_tokens, metric, sorted(names), allow_missing=True)

    # gradient w.r.t. the residual stream as each downstream node reads it
    W = {"q": model.W_Q.detach(), "k": model.W_K.detach(), "v": model.W_V.detach()}
    down_grad: dict[str, torch.Tensor] = {}
    H = model.cfg.n_heads
    for layer in range(model.cfg.n_layers):
        ln_grads, labels = [], []
        for x in "qkv":
            g = grad[hooks[f"{x}{layer}"]]  # [b, p, head, d_head]
            for h in range(H):
                ln_grads.append(g[:, :, h] @ W[x][layer, h].T)
                labels.append(f"{layer}.{h}.{x}")
        res = _vjp_through(model.blocks[layer].ln1, corr[hooks[f"resid_pre{layer}"]], torch.stack(ln_grads))
        down_grad.update(zip(labels, res))
        g_mlp = grad[hooks[f"mlp_in{layer}"]]
        down_grad[f"MLP{layer}"] = _vjp_through(model.blocks[layer].ln2, corr[hooks[f"resid_mid{layer}"]], g_mlp[None])[0]
    down_grad["logits"] = _vjp_through(model.ln_final, corr[hooks["final_in"]], grad[hooks["final_out"]][None])[0]

    clean = {n: clean_cache[n] for n in names}
    delta_out = {u: c - k for (u, c), k in zip(_outputs(model, clean, hooks).items(), _outputs(model, corr, hooks).values())}
    up, down = _upstream_names(model), _downstream_names(model)
    scores = torch.full((len(up), len(down)), float("nan"))
    for i, u in enumerate(up):
        for j, d in enumerate(down):
            if _order(u, True) < _order(d.rsplit(".", 1)[0] if d.count(".") == 2 else d, False):
                scores[i, j] = float((delta_out[u] * down_grad[d]).sum())
    return EdgeScores(up, down, scores, m_clean, float(value.detach()))


def prune(edge_scores: EdgeScores, top_k: int | None = None, threshold: float | None = None,
          absolute: bool = True) -> Circuit:
    """Keep the ``top_k`` edges (or those with score >= ``threshold``), then only nodes on a path
    from ``embed`` to ``logits``. ``absolute``: rank by |score| (negative edges matter too)."""
    if (top_k is None) == (threshold is None):
        raise InputError("give exactly one of top_k or threshold")
    edges = edge_scores.edges()
    if not absolute:
        edges = sorted(edges, key=lambda e: -e[2])
    key = (lambda s: abs(s)) if absolute else (lambda s: s)
    if top_k is not None:
        if top_k < 1:
            raise InputError(f"top_k must be >= 1, got {top_k}")
        kept = edges[:top_k]
    else:
        kept = [e for e in edges if key(e[2]) >= threshold]

    def node_of(d: str) -> str:  # a downstream name -> the node that owns it
        return d.rsplit(".", 1)[0] if d.count(".") == 2 else d

    forward = {"embed"}
    changed = True
    while changed:
        changed = False
        for u, d, _ in kept:
            if u in forward and node_of(d) not in forward:
                forward.add(node_of(d))
                changed = True
    backward = {"logits"}
    changed = True
    while changed:
        changed = False
        for u, d, _ in kept:
            if node_of(d) in backward and u not in backward:
                backward.add(u)
                changed = True
    alive = forward & backward
    final = [e for e in kept if e[0] in alive and node_of(e[1]) in alive]
    nodes = sorted(alive - {"embed", "logits"}, key=lambda n: (_order(n, True), n))
    return Circuit(final, nodes)
