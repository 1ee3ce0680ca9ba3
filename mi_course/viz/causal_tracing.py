"""Causal-tracing heatmaps (ROME Fig. 1): token x layer, switch hidden state / MLP / attention, pick a fact.

Plain HTML inside ipywidgets (no JavaScript bundle), so it works offline and tests can drive it.

>>> w = CausalTracingWidget(model, facts)            # facts: [{"prompt", "subject", "target"}, ...]
>>> w.kind.value = "mlp"; w.fact.value = 2            # or use the dropdowns
>>> w.current()                                       # the TraceResult on screen
>>> plot_trace(result, ax=ax)                         # static matplotlib version (slides, pages)

Traces are computed on first view and cached; ``CausalTracingWidget.from_results`` shows traces
computed elsewhere (no model needed).
"""

from __future__ import annotations

import html
from typing import Mapping, Sequence

import torch

from mi_course.errors import InputError
from mi_course.viz.patching import patching_html

KIND_LABELS = {"hidden": "hidden state (residual stream)", "mlp": "MLP output", "attn": "attention output"}
CMAPS = {"hidden": "Purples", "mlp": "Greens", "attn": "Reds"}  # the paper's colours


def _labels(result) -> list[str]:
    s, e = result.subject
    return [f"{t.strip() or repr(t)}{'*' if s <= i < e else ''}" for i, t in enumerate(result.tokens)]


def trace_html(result, show_values: bool = False, title: str = "") -> str:
    """HTML table of one trace: rows = tokens (subject tokens starred), columns = layers; colour =
    P(target) with the state restored, relative to the corrupted run (darker = more restored)."""
    scores = result.scores.T  # [pos, layer]
    rows = _labels(result)
    cols = [f"L{i}" for i in range(scores.shape[1])]
    cap = title or (f"{KIND_LABELS.get(result.kind, result.kind)}"
                    + (f", window {result.window}" if result.kind != "hidden" else "")
                    + (f", {result.sever} severed" if result.sever else "")
                    + f": P(target) restored; clean {result.high:.2f}, corrupted {result.low:.2f}")
    return patching_html(scores, rows, cols, cap, center=result.low, show_values=show_values)


class CausalTracingWidget:
    """Interactive causal tracing: dropdowns ``kind`` and ``fact``, checkbox ``show_values``; ``out.value``
    holds the HTML. ``window`` and ``n_samples`` are passed to :func:`causal_tracing.trace`."""

    def __init__(self, model=None, facts: Sequence[dict] = (), kinds: Sequence[str] = ("hidden", "mlp", "attn"),
                 window: int = 1, n_samples: int = 10, noise: float | None = None,
                 results: Mapping[tuple[int, str], object] | None = None):
        import ipywidgets as w

        from mi_course.methods import causal_tracing as ct

        bad = [k for k in kinds if k not in ct.KINDS]
        if bad or not kinds:
            raise InputError(f"kinds must be a non-empty subset of {ct.KINDS}, got {list(kinds)}")
        if not facts:
            raise InputError("facts is empty: pass at least one {'prompt', 'subject', 'target'} dict")
        for f in facts:
            if not isinstance(f, Mapping) or not {"prompt", "subject"} <= set(f) or not ({"target", "target_true"} & set(f)):
                raise InputError(f"each fact needs 'prompt', 'subject' and 'target', got {f!r}")
        if model is None and results is None:
            raise InputError("pass a model (to trace) or precomputed results")
        self.model, self.facts, self.window, self.n_samples, self.noise = model, list(facts), window, n_samples, noise
        self._cache: dict[tuple[int, str], object] = dict(results or {})
        style = {"description_width": "50px"}
        labels = [(self._fact_label(f), i) for i, f in enumerate(self.facts)]
        self.fact = w.Dropdown(options=labels, value=0, description="fact", style=style,
                               layout=w.Layout(width="420px"))
        self.kind = w.ToggleButtons(options=[(KIND_LABELS[k].split(" (")[0], k) for k in kinds], value=kinds[0])
        self.show_values = w.Checkbox(False, description="numbers")
        self.out = w.HTML()
        for ctl in (self.fact, self.kind, self.show_values):
            ctl.observe(lambda _c: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.fact, self.show_values]), self.kind, self.out])
        self.update()

    @classmethod
    def from_results(cls, facts: Sequence[dict], results: Mapping[tuple[int, str], object],
                     kinds: Sequence[str] = ("hidden", "mlp", "attn")) -> "CausalTracingWidget":
        """A widget over precomputed traces ``{(fact index, kind): TraceResult}``."""
        return cls(None, facts, kinds, results=results)

    @staticmethod
    def _fact_label(f: Mapping) -> str:
        prompt = f["prompt"].format(f["subject"]) if "{}" in f["prompt"] else f["prompt"]
        return f"{prompt} -> {f.get('target', f.get('target_true'))}"

    def current(self):
        """The :class:`TraceResult` on screen (computed and cached on first view)."""
        key = (self.fact.value, self.kind.value)
        if key not in self._cache:
            if self.model is None:
                raise InputError(f"no precomputed trace for fact {key[0]} ({key[1]}) and no model to compute it")
            from mi_course.methods import causal_tracing as ct

            f = self.facts[key[0]]
            prompt = f["prompt"].format(f["subject"]) if "{}" in f["prompt"] else f["prompt"]
            with torch.no_grad():
                self._cache[key] = ct.trace(self.model, prompt, f["subject"], f.get("target", f.get("target_true")),
                                            kind=key[1], window=self.window, n_samples=self.n_samples, noise=self.noise)
        return self._cache[key]

    def update(self) -> None:
        self.out.value = trace_html(self.current(), self.show_values.value)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def plot_trace(result, ax=None, title: str | None = None):
    """Static heatmap of one trace in the paper's layout (tokens down, layers across)."""
    import matplotlib.pyplot as plt

    scores = result.scores.T.detach().float().cpu()
    rows = _labels(result)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 0.32 * len(rows) + 1.2))
    im = ax.imshow(scores.numpy(), cmap=CMAPS.get(result.kind, "Purples"), vmin=result.low,
                   vmax=max(result.high, float(scores.max())), aspect="auto")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(scores.shape[1]), [str(i) for i in range(scores.shape[1])], fontsize=8)
    ax.set_xlabel("layer")
    ax.set_title(html.unescape(title if title is not None else KIND_LABELS.get(result.kind, result.kind)), fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.05, label="P(target)")
    return ax


def plot_aie(aie: torch.Tensor, kind: str = "hidden", ax=None, title: str | None = None):
    """Heatmap of an average indirect effect table ``[layer, 6 named positions]`` (paper Fig. 2)."""
    import matplotlib.pyplot as plt

    from mi_course.methods.causal_tracing import POSITION_NAMES

    if not isinstance(aie, torch.Tensor) or aie.ndim != 2 or aie.shape[1] != len(POSITION_NAMES):
        raise InputError(f"aie must be [layer, {len(POSITION_NAMES)}], got "
                         f"{list(aie.shape) if isinstance(aie, torch.Tensor) else type(aie).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.4, 2.6))
    v = aie.T.detach().float().cpu()
    im = ax.imshow(torch.nan_to_num(v, nan=0.0).numpy(), cmap=CMAPS.get(kind, "Purples"), vmin=0,
                   vmax=max(1e-3, float(torch.nan_to_num(v, nan=0.0).max())), aspect="auto")
    ax.set_yticks(range(len(POSITION_NAMES)), POSITION_NAMES, fontsize=8)
    ax.set_xticks(range(v.shape[1]), [str(i) for i in range(v.shape[1])], fontsize=8)
    ax.set_xlabel("layer")
    ax.set_title(title if title is not None else f"AIE: {KIND_LABELS.get(kind, kind)}", fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.05)
    return ax
