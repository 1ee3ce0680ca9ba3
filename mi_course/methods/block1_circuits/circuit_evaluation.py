"""Evaluating a circuit: faithfulness, completeness, minimality (Wang et al. 2023, section 4).

``F(X)`` is the metric (IOI: the logit difference) of the model in which every node *not* in
``X`` is knocked out by mean ablation over a reference distribution (the ABC prompts: same
templates, unrelated names), so the knocked-out nodes keep their average, task-independent
behaviour. ``M`` is the set of all nodes (the heads; MLPs too with ``mlps_are_nodes=True``;
otherwise MLPs are always kept, as in the paper), ``C`` the circuit.

- **Faithfulness**: ``F(C)`` should be close to ``F(M)``. The paper: F(C) = 3.10 vs
  F(M) = 3.56 on GPT-2 small (87%).
- **Completeness**: for subsets ``K`` of ``C``, ``|F(C \\ K) - F(M \\ K)|`` should be small:
  the circuit and the whole model should break the same way when parts are removed.
- **Minimality**: for each ``v`` in ``C`` there should be a ``K`` with
  ``|F(C \\ (K + v)) - F(C \\ K)|`` large: no node is redundant. Here ``K`` is the empty set,
  or a subset given by the caller.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.methods.ablation import ablation_hooks, reference_activations
from mi_course.methods.components import Component, all_heads, all_mlps, as_components
from mi_course.methods.metrics import Metric, check_metric
from mi_course import validation as check


@dataclass
class CircuitEvaluator:
    """Computes ``F(X)`` for sets of nodes; reference activations are computed once.

    tokens ``[batch, pos]``: the task prompts; reference_tokens ``[n_ref, pos]``: the
    distribution to mean-ablate with (same length). ``mode="resample"`` replaces knocked-out
    nodes with their values on random reference prompts instead (as causal scrubbing does).
    """

    model: object
    tokens: torch.Tensor
    reference_tokens: torch.Tensor
    metric: Metric
    mlps_are_nodes: bool = False
    mode: str = "mean"
    seed: int = 0

    def __post_init__(self):
        check.tokens("tokens", self.tokens, self.model)
        check.tokens("reference_tokens", self.reference_tokens, self.model)
        expect_shape("reference_tokens", self.reference_tokens, (None, self.tokens.shape[1]),
                     "Mean ablation works position by position: the reference prompts must have the "
                     "same length as the task prompts.")
        if self.mode not in ("mean", "resample"):
            raise InputError(f"mode must be 'mean' or 'resample', got {self.mode!r}")
        self.nodes: list[Component] = all_heads(self.model) + (all_mlps(self.model) if self.mlps_are_nodes else [])
        names = {c.hook_name for c in self.nodes}
        self._reference = reference_activations(self.model, self.reference_tokens, names)
        with torch.no_grad():
            self.full = float(check_metric(self.metric, self.model(self.tokens)))

    def _nodes(self, xs: Iterable) -> set[Component]:
        out = set()
        for c in as_components(self.model, list(xs)):
            c = Component(c.kind, c.layer, c.index, None)
            if c not in self.nodes:
                raise InputError(f"{c} is not a node of this evaluation (nodes are heads"
                                 f"{' and MLPs' if self.mlps_are_nodes else ''})")
            out.add(c)
        return out

    def F(self, keep: Iterable) -> float:
        """Metric with every node outside ``keep`` knocked out."""
        keep = self._nodes(keep)
        drop = [c for c in self.nodes if c not in keep]
        if not drop:
            return self.full
        hooks = ablation_hooks(self.model, drop, self.mode, n_prompts=self.tokens.shape[0],
                               seq_len=self.tokens.shape[1], seed=self.seed, reference=self._reference)
        with torch.no_grad():
            return float(check_metric(self.metric, self.model.run_with_hooks(self.tokens, fwd_hooks=hooks)))

    def faithfulness(self, circuit: Iterable) -> dict[str, float]:
        """``{"F(C)", "F(M)", "ratio" = F(C)/F(M), "gap" = |F(M) - F(C)|, "F(empty)"}``."""
        C = self._nodes(circuit)
        fc, fm = self.F(C), self.F(self.nodes)
        return {"F(C)": fc, "F(M)": fm, "ratio": fc / fm if fm else float("nan"), "gap": abs(fm - fc),
                "F(empty)": self.F([])}

    def completeness(self, circuit: Iterable, subsets: Sequence[Iterable] | None = None,
                     n_random: int = 5, seed: int = 0) -> list[dict]:
        """``[{"K", "F(C-K)", "F(M-K)", "gap"}]`` for the given subsets ``K`` of the circuit
        (default: the empty set, each node alone, the whole circuit, ``n_random`` random halves)."""
        C = sorted(self._nodes(circuit))
        if subsets is None:
            rng = random.Random(seed)
            subsets = [[], *[[c] for c in C], C]
            subsets += [rng.sample(C, max(1, len(C) // 2)) for _ in range(n_random)]
        rows = []
        for K in subsets:
            K = self._nodes(K)
            if not K <= set(C):
                raise InputError(f"completeness: K must be a subset of the circuit, got extra {sorted(K - set(C))}")
            fck = self.F([c for c in C if c not in K])
            fmk = self.F([c for c in self.nodes if c not in K])
            rows.append({"K": sorted(K), "F(C-K)": fck, "F(M-K)": fmk, "gap": abs(fck - fmk)})
        return rows

    def minimality(self, circuit: Iterable, K: Iterable = ()) -> dict[Component, float]:
        """``{v: |F(C \\ (K + v)) - F(C \\ K)|}`` for each node ``v`` of the circuit not in ``K``."""
        C = self._nodes(circuit)
        K = self._nodes(K)
        base = self.F(C - K)
        return {v: abs(self.F(C - K - {v}) - base) for v in sorted(C - K)}


def faithfulness(model, tokens, reference_tokens, metric, circuit, **kw) -> dict[str, float]:
    """Shortcut: ``CircuitEvaluator(...).faithfulness(circuit)``."""
    return CircuitEvaluator(model, tokens, reference_tokens, metric, **kw).faithfulness(circuit)


def completeness(model, tokens, reference_tokens, metric, circuit, subsets=None, **kw) -> list[dict]:
    return CircuitEvaluator(model, tokens, reference_tokens, metric, **kw).completeness(circuit, subsets)


def minimality(model, tokens, reference_tokens, metric, circuit, **kw) -> dict:
    return CircuitEvaluator(model, tokens, reference_tokens, metric, **kw).minimality(circuit)


def faithfulness_baselines(model, pairs: Sequence, circuits: dict[str, Iterable], metric_of,
                           n_random: int = 50, size: int | None = None, seed: int = 0) -> dict:
    """Faithfulness ``F(X) / F(M)`` of named head sets beside random sets of the same size.

    pairs: ``[(tokens, reference_tokens, ds), ...]`` (e.g. one per held-out template; each pair
    must be aligned); ``metric_of(ds) -> metric``; circuits: ``{name: heads}``; ``size``: how many
    heads a random set has (default: the first circuit's size). Returns ``{name: mean ratio}`` for
    each circuit plus ``"random"``: the ``n_random`` random sets' mean ratios (a list), each
    averaged over the pairs.
    """
    if not pairs:
        raise InputError("give at least one (tokens, reference_tokens, ds) pair")
    heads = all_heads(model)
    first = next(iter(circuits.values()), None)
    size = size if size is not None else len(list(first)) if first is not None else len(heads) // 2
    if not 0 <= size <= len(heads):
        raise InputError(f"size must be in 0..{len(heads)}, got {size}")
    rng = random.Random(seed)
    random_sets = [rng.sample(heads, size) for _ in range(n_random)]
    sums = {name: 0.0 for name in circuits}
    rand = [0.0] * n_random
    for tokens, reference_tokens, ds in pairs:
        ev = CircuitEvaluator(model, tokens, reference_tokens, metric_of(ds))
        for name, c in circuits.items():
            sums[name] += ev.F(c) / ev.full
        for i, s in enumerate(random_sets):
            rand[i] += ev.F(s) / ev.full
    out = {name: v / len(pairs) for name, v in sums.items()}
    out["random"] = [v / len(pairs) for v in rand]
    return out
