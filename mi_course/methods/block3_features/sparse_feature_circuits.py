"""Sparse feature circuits (Marks et al. 2024): circuits whose nodes are SAE latents and SAE errors.

Splice SAEs into the model at several hook points *with their error terms*, so that the output
is unchanged: at hook ``h``, ``x = decode(f) + err`` with ``f = encode(x)`` and
``err = x - decode(f)``. Every latent ``f_i`` (at each position) and every error ``err`` (at each
position) is a node.

- **Node effects** by attribution patching: ``IE ~ (a_patch - a_clean) . grad_a m`` for each node
  ``a``, where ``m`` is the metric and ``a_patch`` is the node's value on the patch prompts
  (counterfactuals) or zero (zero ablation when none are given). The **integrated-gradients**
  variant (``method="ig"``) averages the gradient at ``steps`` points on the line from clean to
  patch, one hook point at a time (the linear one fails where the metric saturates).
- **Edge effects** between the nodes of an upstream and a downstream hook point (the linear
  approximation): ``e(u -> d) = grad_d m . (dd/du) . (u_patch - u_clean)``, one backward pass per
  downstream node.
- **Pruning**: keep the nodes whose |effect| exceeds a threshold.
- **Faithfulness / completeness** as week 05 (:mod:`~mi_course.methods.circuit_evaluation`) defines
  them for heads, here over latents and errors: ``F(X)`` is the metric with every node outside
  ``X`` mean-ablated (means over reference prompts, position by position);
  faithfulness ``(F(C) - F(empty)) / (F(M) - F(empty))`` (Marks et al.'s normalisation, 1 = the
  whole model) and completeness ``(F(M \\ C) - F(empty)) / (F(M) - F(empty))`` (0 = nothing of
  the behaviour left outside the circuit).

Shapes: tokens ``[batch, pos]``; per hook point, latent effects ``[pos, d_sae]`` and error effects
``[pos]`` (summed over the batch). ``saes`` maps hook names to SAEs reading that activation.
"""

from __future__ import annotations

from typing import Callable

import torch

from mi_course.errors import InputError
from mi_course.methods.metrics import check_metric

__all__ = ["splice_hooks", "node_effects", "edge_effects", "prune", "circuit_size", "F", "faithfulness",
           "completeness"]


def _check(model, saes: dict, tokens: torch.Tensor) -> None:
    if not isinstance(saes, dict) or not saes:
        raise InputError("saes must be a non-empty dict {hook_name: SAE}")
    for name, sae in saes.items():
        if getattr(sae, "kind", "sae") != "sae":
            raise InputError(f"the SAE at {name!r} must be an SAE (a transcoder replaces another activation)")
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.shape[0] == 0:
        raise InputError(f"tokens must be a non-empty [batch, pos] tensor, got {getattr(tokens, 'shape', type(tokens))}")


def splice_hooks(saes: dict, store: dict | None = None, leaves: bool = False) -> list[tuple]:
    """``fwd_hooks`` splicing each SAE in with its error term (the output is unchanged).

    With ``store`` each hook records ``{"f": latents, "err": error}`` under its name. With
    ``leaves=True`` the latents and the error are leaf tensors with gradients, while the
    activation passed on keeps its dependence on earlier layers: ``x + (dec(f) - dec(f).detach())
    + (err - err.detach())`` equals ``x`` in value, its gradient with respect to ``f`` is the
    decoder's, with respect to ``err`` the identity, and gradients still flow to earlier hook points.
    """
    def make(name, sae):
        def hook(act, hook=None):
            f = sae.encode(act)
            err = act - sae.decode(f)
            if not leaves:
                if store is not None:
                    store[name] = {"f": f.detach(), "err": err.detach()}
                return sae.decode(f).to(act.dtype) + err
            f_leaf = f.detach().requires_grad_(True)
            e_leaf = err.detach().requires_grad_(True)
            if store is not None:
                store[name] = {"f": f_leaf, "err": e_leaf, "f_graph": f}
            dec = sae.decode(f_leaf)
            return act + (dec - dec.detach()).to(act.dtype) + (e_leaf - e_leaf.detach()).to(act.dtype)
        return hook

    return [(name, make(name, sae)) for name, sae in saes.items()]


@torch.no_grad()
def _values(model, saes: dict, tokens: torch.Tensor) -> dict:
    store: dict = {}
    model.run_with_hooks(tokens, fwd_hooks=splice_hooks(saes, store))
    return store


def _patch_values(model, saes, tokens, patch_tokens) -> dict:
    if patch_tokens is None:
        clean = _values(model, saes, tokens)
        return {n: {"f": torch.zeros_like(v["f"]), "err": torch.zeros_like(v["err"])} for n, v in clean.items()}
    if patch_tokens.shape != tokens.shape:
        raise InputError(f"patch_tokens must have the shape of tokens {list(tokens.shape)}, got {list(patch_tokens.shape)}")
    return _values(model, saes, patch_tokens)


def node_effects(model, saes: dict, tokens: torch.Tensor, metric: Callable, patch_tokens: torch.Tensor | None = None,
                 method: str = "atp", steps: int = 10) -> dict[str, dict[str, torch.Tensor]]:
    """``{hook_name: {"latents": [pos, d_sae], "error": [pos]}}``: estimated change of ``metric`` when each
    node is set to its patch value (``patch_tokens``' values, or zero), summed over the batch.

    ``method="atp"``: one forward and one backward pass. ``method="ig"``: integrated gradients with
    ``steps`` points, interpolating the nodes of one hook point at a time (others computed as usual).
    """
    _check(model, saes, tokens)
    if method not in ("atp", "ig"):
        raise InputError(f"method must be 'atp' or 'ig', got {method!r}")
    if method == "ig" and (not isinstance(steps, int) or steps < 1):
        raise InputError(f"steps must be a positive int, got {steps!r}")
    patch = _patch_values(model, saes, tokens, patch_tokens)
    clean = _values(model, saes, tokens)
    out = {}
    if method == "atp":
        with torch.enable_grad():
            store: dict = {}
            m = check_metric(metric, model.run_with_hooks(tokens, fwd_hooks=splice_hooks(saes, store, leaves=True)))
            m.backward()
        for n in saes:
            d_f = patch[n]["f"] - clean[n]["f"]
            d_e = patch[n]["err"] - clean[n]["err"]
            out[n] = {"latents": (d_f * store[n]["f"].grad).sum(0), "error": (d_e * store[n]["err"].grad).sum((0, -1))}
        return out
    for n, sae in saes.items():
        g_f = torch.zeros_like(clean[n]["f"])
        g_e = torch.zeros_like(clean[n]["err"])
        for k in range(steps):
            alpha = (k + 0.5) / steps
            f = (clean[n]["f"] + alpha * (patch[n]["f"] - clean[n]["f"])).requires_grad_(True)
            e = (clean[n]["err"] + alpha * (patch[n]["err"] - clean[n]["err"])).requires_grad_(True)

            def set_node(act, hook=None, f=f, e=e, sae=sae):
                return (sae.decode(f) + e).to(act.dtype)

            others = splice_hooks({k2: v for k2, v in saes.items() if k2 != n})
            with torch.enable_grad():
                m = check_metric(metric, model.run_with_hooks(tokens, fwd_hooks=[(n, set_node)] + others))
                gf, ge = torch.autograd.grad(m, [f, e])
            g_f += gf / steps
            g_e += ge / steps
        out[n] = {"latents": ((patch[n]["f"] - clean[n]["f"]) * g_f).sum(0),
                  "error": ((patch[n]["err"] - clean[n]["err"]) * g_e).sum((0, -1))}
    return out


def edge_effects(model, saes: dict, tokens: torch.Tensor, metric: Callable, upstream: str, downstream: str,
                 down_nodes: list[tuple[int, int]], patch_tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Linear edge effects from every node at ``upstream`` into chosen latents at ``downstream``.

    ``down_nodes``: ``(position, latent)`` pairs at the downstream hook point. Returns
    ``{"latents": [n_down, pos, d_sae_up], "error": [n_down, pos]}`` with
    ``grad_d m * dd/du * (u_patch - u_clean)`` summed over the batch: the part of each downstream
    node's effect that flows from each upstream node.
    """
    _check(model, saes, tokens)
    names = list(saes)
    if upstream not in saes or downstream not in saes or names.index(upstream) >= names.index(downstream):
        raise InputError(f"upstream and downstream must be hook names of saes, upstream first; got "
                         f"{upstream!r} -> {downstream!r}")
    d_sae = saes[downstream].d_sae
    for p, j in down_nodes:
        if not (-tokens.shape[1] <= p < tokens.shape[1] and 0 <= j < d_sae):
            raise InputError(f"down node (position {p}, latent {j}) is outside [pos={tokens.shape[1]}, d_sae={d_sae}]")
    patch = _patch_values(model, saes, tokens, patch_tokens)
    clean = _values(model, saes, tokens)
    d_f = patch[upstream]["f"] - clean[upstream]["f"]
    d_e = patch[upstream]["err"] - clean[upstream]["err"]
    lat, err = [], []
    with torch.enable_grad():
        store: dict = {}
        m = check_metric(metric, model.run_with_hooks(tokens, fwd_hooks=splice_hooks(saes, store, leaves=True)))
        g_down = torch.autograd.grad(m, store[downstream]["f"], retain_graph=True)[0]
        for p, j in down_nodes:
            target = (g_down[:, p, j] * store[downstream]["f_graph"][:, p, j]).sum()
            gf, ge = torch.autograd.grad(target, [store[upstream]["f"], store[upstream]["err"]], retain_graph=True,
                                         allow_unused=True)
            gf = torch.zeros_like(d_f) if gf is None else gf
            ge = torch.zeros_like(d_e) if ge is None else ge
            lat.append((gf * d_f).sum(0))
            err.append((ge * d_e).sum((0, -1)))
    return {"latents": torch.stack(lat), "error": torch.stack(err)}


def prune(effects: dict[str, dict[str, torch.Tensor]], threshold: float) -> dict[str, dict[str, torch.Tensor]]:
    """Boolean masks of the nodes with ``|effect| > threshold`` (same layout as :func:`node_effects`)."""
    if not isinstance(threshold, (int, float)) or threshold < 0:
        raise InputError(f"threshold must be a non-negative number, got {threshold!r}")
    return {n: {"latents": e["latents"].abs() > threshold, "error": e["error"].abs() > threshold}
            for n, e in effects.items()}


def circuit_size(circuit: dict) -> dict[str, int]:
    """Number of latent nodes and error nodes in a circuit (masks from :func:`prune`)."""
    return {"latents": int(sum(int(c["latents"].sum()) for c in circuit.values())),
            "errors": int(sum(int(c["error"].sum()) for c in circuit.values()))}


@torch.no_grad()
def _means(model, saes, reference_tokens) -> dict:
    v = _values(model, saes, reference_tokens)
    return {n: {"f": x["f"].mean(0), "err": x["err"].mean(0)} for n, x in v.items()}


@torch.no_grad()
def F(model, saes: dict, tokens: torch.Tensor, metric: Callable, keep: dict | None,
      reference_tokens: torch.Tensor, complement: bool = False) -> float:
    """The metric with every node *outside* ``keep`` (masks as :func:`prune` returns; ``None`` = no node)
    mean-ablated to its mean over ``reference_tokens`` (same length), position by position;
    ``complement=True`` ablates the nodes *inside* ``keep`` instead."""
    _check(model, saes, tokens)
    if reference_tokens.shape[1] != tokens.shape[1]:
        raise InputError("reference_tokens must have the same length as tokens (mean ablation is per position)")
    means = _means(model, saes, reference_tokens)

    def make(name, sae):
        k = keep.get(name) if keep else None
        k_f = k["latents"] if k is not None else torch.zeros(tokens.shape[1], sae.d_sae, dtype=torch.bool)
        k_e = k["error"] if k is not None else torch.zeros(tokens.shape[1], dtype=torch.bool)
        if complement:
            k_f, k_e = ~k_f, ~k_e

        def hook(act, hook=None):
            f = sae.encode(act)
            err = act - sae.decode(f)
            f = torch.where(k_f, f, means[name]["f"])
            err = torch.where(k_e[:, None], err, means[name]["err"])
            return (sae.decode(f) + err).to(act.dtype)
        return hook

    return float(check_metric(metric, model.run_with_hooks(tokens, fwd_hooks=[(n, make(n, s)) for n, s in saes.items()])))


def _all(saes, pos) -> dict:
    return {n: {"latents": torch.ones(pos, s.d_sae, dtype=torch.bool), "error": torch.ones(pos, dtype=torch.bool)}
            for n, s in saes.items()}


def faithfulness(model, saes: dict, tokens: torch.Tensor, metric: Callable, circuit: dict,
                 reference_tokens: torch.Tensor) -> dict[str, float]:
    """``{"F(C)", "F(M)", "F(empty)", "ratio" = F(C)/F(M), "normalised" = (F(C) - F(empty)) / (F(M) - F(empty))}``."""
    fc = F(model, saes, tokens, metric, circuit, reference_tokens)
    fm = F(model, saes, tokens, metric, _all(saes, tokens.shape[1]), reference_tokens)
    f0 = F(model, saes, tokens, metric, None, reference_tokens)
    return {"F(C)": fc, "F(M)": fm, "F(empty)": f0, "ratio": fc / fm if fm else float("nan"),
            "normalised": (fc - f0) / (fm - f0) if abs(fm - f0) > 1e-9 else float("nan")}


def completeness(model, saes: dict, tokens: torch.Tensor, metric: Callable, circuit: dict,
                 reference_tokens: torch.Tensor) -> dict[str, float]:
    """``{"F(M-C)", "F(M)", "F(empty)", "normalised" = (F(M-C) - F(empty)) / (F(M) - F(empty))}``: 0 when
    ablating the circuit's nodes removes the behaviour as fully as ablating everything."""
    fmc = F(model, saes, tokens, metric, circuit, reference_tokens, complement=True)
    fm = F(model, saes, tokens, metric, _all(saes, tokens.shape[1]), reference_tokens)
    f0 = F(model, saes, tokens, metric, None, reference_tokens)
    return {"F(M-C)": fmc, "F(M)": fm, "F(empty)": f0,
            "normalised": (fmc - f0) / (fm - f0) if abs(fm - f0) > 1e-9 else float("nan")}
