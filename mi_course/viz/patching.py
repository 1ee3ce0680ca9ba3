"""Patching heatmaps: layer x position (the prompt's tokens on the axis) or layer x head, the
value on hover. Plain HTML inside ipywidgets, so it works offline and tests can drive it.

The colour scale is fixed and symmetric about ``center`` (default +-1: patching results are the
share of the effect restored, clean = 1, corrupted = 0), the same for every result and head, and
a colour bar under the table says what the colours mean. So a result whose values are all below
0.01 looks faint beside one that reaches 0.12. Tick "fit colours to this view" (or pass
``vmax=None`` for one scale fitted to all results) to see small effects.

>>> PatchingHeatmap(patch_resid_by_pos(...), ds.position_labels())          # [layer, pos]
>>> PatchingHeatmap({"z": by_head, "q": q_by_head})                          # [layer, head] each
>>> PatchingHeatmap(patch_heads(..., by_pos=True), labels)                   # [layer, pos, head]: pick a head
"""

from __future__ import annotations

import html
from typing import Mapping, Sequence

import torch

from mi_course.errors import InputError

_CSS = (
    "<style>.mic-patch td{min-width:22px;height:20px;padding:0 2px;border:1px solid #fff;"
    "font:9px monospace;text-align:center;color:#111}"
    ".mic-patch th{font:10px monospace;padding:0 3px;white-space:nowrap}"
    ".mic-patch th.c{writing-mode:vertical-rl;transform:rotate(180deg);vertical-align:bottom}"
    ".mic-patch caption{font:bold 12px sans-serif;text-align:left}"
    ".mic-legend{font:10px sans-serif;margin:4px 0 0 0;display:flex;align-items:center;gap:6px}"
    ".mic-legend .bar{width:160px;height:10px;border:1px solid #ccc;"
    "background:linear-gradient(to right,rgba(220,38,38,1),rgba(220,38,38,0) 50%,rgba(37,99,235,0) 50%,"
    "rgba(37,99,235,1))}</style>"
)

#: The default colour scale of the widget: +-1 around ``center`` (share of the effect restored).
DEFAULT_VMAX = 1.0


def _fmt(x: float) -> str:
    return f"{x:+.3g}" if x else "0"


def legend_html(vmax: float, center: float = 0.0, note: str = "", n_beyond: int = 0) -> str:
    """The colour bar: red at ``center - vmax``, white at ``center``, blue at ``center + vmax``."""
    lo, hi = center - vmax, center + vmax
    extra = f"; {n_beyond} value(s) beyond the scale are drawn at full colour" if n_beyond else ""
    return (f"<div class='mic-legend' data-vmax='{vmax:.6g}'><span>{_fmt(lo)}</span><span class='bar'></span>"
            f"<span>{_fmt(hi)}</span><span style='color:#555'>(white = {_fmt(center)}; "
            f"{html.escape(note) or 'fixed scale'}{extra})</span></div>")


def _color(v: float, scale: float) -> str:
    if scale <= 0 or v != v:
        return "#eee"
    a = max(-1.0, min(1.0, v / scale))
    return f"rgba(37,99,235,{a:.2f})" if a >= 0 else f"rgba(220,38,38,{-a:.2f})"


def patching_html(values: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str],
                  title: str = "", center: float = 0.0, show_values: bool = False,
                  vmax: float | None = None, legend: bool = True, scale_note: str = "") -> str:
    """An HTML table: one row per ``row_labels`` (layers), one column per ``col_labels``
    (tokens or heads); blue above ``center``, red below; ``title=`` on each cell shows the value.

    ``vmax``: the colour scale runs from ``center - vmax`` (full red) to ``center + vmax`` (full
    blue); ``None`` fits it to these values. ``legend``: a colour bar under the table."""
    if not isinstance(values, torch.Tensor) or values.ndim != 2:
        raise InputError(f"values must be a 2-D tensor [rows, cols], got "
                         f"{list(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__}")
    R, C = values.shape
    if len(row_labels) != R or len(col_labels) != C:
        raise InputError(f"labels do not fit the values: {R} x {C} values, {len(row_labels)} row labels and "
                         f"{len(col_labels)} column labels")
    v = values.detach().float().cpu() - center
    finite = v[torch.isfinite(v)]
    if vmax is None:
        scale = float(finite.abs().max()) if finite.numel() else 0.0
        scale_note = scale_note or "fitted to these values"
    else:
        if not (isinstance(vmax, (int, float)) and vmax > 0 and vmax != float("inf")):
            raise InputError(f"vmax must be a positive number (the colour scale's half-width), got {vmax!r}")
        scale = float(vmax)
    cols = [html.escape(str(c)) for c in col_labels]
    rows_html = []
    for i, r in enumerate(row_labels):
        r = html.escape(str(r))
        cells = []
        for j in range(C):
            x = float(values[i, j])
            text = f"{x:.2f}" if show_values else ""
            cells.append(f"<td style='background:{_color(x - center, scale)}' title='{r}, {cols[j]}: {x:.4g}'>{text}</td>")
        rows_html.append(f"<tr><th>{r}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th class='c'>{c}</th>" for c in cols)
    cap = f"<caption>{html.escape(title)}</caption>" if title else ""
    table = f"<table class='mic-patch'>{cap}<tr><th></th>{head}</tr>{''.join(rows_html)}</table>"
    if legend and scale > 0:
        table += legend_html(scale, center, scale_note, int((finite.abs() > scale * (1 + 1e-6)).sum()))
    return _CSS + table


def _as_2d(values: torch.Tensor, labels: Sequence[str] | None, head: int | None):
    """(2-D values, row labels, column labels) for a [layer], [layer, pos], [layer, head] or
    [layer, pos, head] result."""
    if values.ndim == 1:
        return values[:, None], [f"L{i}" for i in range(len(values))], ["all positions"]
    if values.ndim == 2:
        rows = [f"L{i}" for i in range(values.shape[0])]
        if labels is None:
            return values, rows, [f"H{h}" for h in range(values.shape[1])]
        return values, rows, list(labels)
    if values.ndim == 3:
        L, P, H = values.shape
        rows = [f"L{i}" for i in range(L)]
        cols = list(labels) if labels is not None else [f"pos {p}" for p in range(P)]
        if head is None:  # sum over heads
            return values.sum(-1), rows, cols
        return values[:, :, head], rows, cols
    raise InputError(f"patching results are [layer], [layer, pos], [layer, head] or [layer, pos, head]; "
                     f"got {values.ndim} dimensions")


class PatchingHeatmap:
    """Interactive heatmap of one or several patching results.

    results: a tensor or ``{name: tensor}``; labels: the prompt's tokens for results with a
    position axis (``ds.position_labels()``), or None for ``[layer, head]`` results.
    Controls (attributes): ``result`` (which result), ``head`` (for ``[layer, pos, head]``
    results; ``-1`` = sum over heads), ``show_values``, ``rescale`` (fit the colours to the
    view on screen); ``out.value`` holds the HTML, with a colour bar.

    vmax: half-width of the fixed, symmetric colour scale around ``center`` (default 1: the share
    of the effect restored); ``None`` fits one scale to all results (still the same for all).
    """

    def __init__(self, results: torch.Tensor | Mapping[str, torch.Tensor], labels: Sequence[str] | None = None,
                 title: str = "", center: float = 0.0, vmax: float | None = DEFAULT_VMAX):
        import ipywidgets as w

        if isinstance(results, torch.Tensor):
            results = {title or "result": results}
        if not isinstance(results, Mapping) or not results:
            raise InputError("results must be a tensor or a non-empty dict of tensors")
        for name, v in results.items():
            if not isinstance(v, torch.Tensor):
                raise InputError(f"result {name!r} is a {type(v).__name__}, expected a tensor")
            if v.ndim not in (1, 2, 3):
                raise InputError(f"result {name!r} has shape {list(v.shape)}; expected [layer], [layer, pos], "
                                 "[layer, head] or [layer, pos, head]")
            if labels is not None and v.ndim == 3 and v.shape[1] != len(labels):
                raise InputError(f"result {name!r} has {v.shape[1]} positions but {len(labels)} labels were given")
            if labels is not None and v.ndim == 2 and _has_pos_axis(name, v, labels) and v.shape[1] != len(labels):
                raise InputError(f"result {name!r} has {v.shape[1]} columns but {len(labels)} labels were given")
        self.results = dict(results)
        self.labels = list(labels) if labels is not None else None
        self.title = title
        self.center = center
        if vmax is None:  # one scale for every result (and every head's view: heads summed or single)
            spans = [float((v.detach().float() - center)[torch.isfinite(v)].abs().max()) for v in self.results.values()
                     if torch.isfinite(v).any()]
            spans += [float((v.detach().float().sum(-1) - center)[torch.isfinite(v.sum(-1))].abs().max())
                      for v in self.results.values() if v.ndim == 3 and torch.isfinite(v.sum(-1)).any()]
            vmax, self._note = (max(spans) if spans and max(spans) > 0 else 1.0), "one scale fitted to all results"
        else:
            self._note = "fixed scale"
        if isinstance(vmax, bool) or not isinstance(vmax, (int, float)) or not 0 < vmax < float("inf"):
            raise InputError(f"vmax must be a positive number (the colour scale's half-width) or None, got {vmax!r}")
        self.vmax = float(vmax)
        style = {"description_width": "70px"}
        self.result = w.Dropdown(options=list(self.results), value=next(iter(self.results)),
                                 description="result", style=style)
        self.head = w.Dropdown(options=[("sum of heads", -1)], value=-1, description="head", style=style)
        self.show_values = w.Checkbox(False, description="numbers")
        self.rescale = w.Checkbox(False, description="fit colours to this view")
        self.out = w.HTML()
        self.result.observe(lambda _c: self._on_result(), names="value")
        for ctl in (self.head, self.show_values, self.rescale):
            ctl.observe(lambda _c: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.result, self.head, self.show_values, self.rescale]), self.out])
        self._on_result()

    def _on_result(self) -> None:
        v = self.results[self.result.value]
        if v.ndim == 3:
            self.head.options = [("sum of heads", -1)] + [(f"H{h}", h) for h in range(v.shape[2])]
            self.head.layout.display = ""
        else:
            self.head.options = [("sum of heads", -1)]
            self.head.layout.display = "none"
        self.head.value = -1
        self.update()

    def current(self) -> tuple[torch.Tensor, list[str], list[str]]:
        """The 2-D values and labels on screen."""
        v = self.results[self.result.value]
        labels = self.labels if (v.ndim == 3 or (v.ndim == 2 and _has_pos_axis(self.result.value, v, self.labels))) else None
        return _as_2d(v, labels, None if self.head.value == -1 else self.head.value)

    def update(self) -> None:
        values, rows, cols = self.current()
        title = self.title or self.result.value
        if self.results[self.result.value].ndim == 3:
            title += " (" + ("sum of heads" if self.head.value == -1 else f"head {self.head.value}") + ")"
        if self.rescale.value:
            vmax, note = None, "fitted to this view: compare colours only within it"
        else:
            vmax, note = self.vmax, self._note
        self.out.value = patching_html(values, rows, cols, title, self.center, self.show_values.value,
                                       vmax=vmax, scale_note=note)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _has_pos_axis(name: str, v: torch.Tensor, labels) -> bool:
    """A 2-D result is [layer, pos] when labels are given and fit it; otherwise [layer, head]."""
    return labels is not None and v.shape[1] == len(labels)


def plot_patching(values: torch.Tensor, col_labels: Sequence[str] | None = None, title: str = "", ax=None,
                  xlabel: str = "", vmax: float | None = DEFAULT_VMAX, center: float = 0.0):
    """Static matplotlib version (``[layer, pos]`` or ``[layer, head]``) for slides and pages.

    The colour scale is symmetric about ``center``, +-``vmax`` (default 1; ``None`` fits it to the
    values), with a colour bar; the layer axis has one integer tick per layer.
    """
    import matplotlib.pyplot as plt

    values, rows, cols = _as_2d(values, col_labels, None)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 0.45 * len(cols)), 0.5 * len(rows) + 1.5))
    v = values.detach().float().cpu() - center
    if vmax is None:
        vmax = float(v[torch.isfinite(v)].abs().max()) if torch.isfinite(v).any() else 1.0
        vmax = vmax or 1.0
    im = ax.imshow((v + center).numpy(), cmap="RdBu", vmin=center - vmax, vmax=center + vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), [r.removeprefix("L") for r in rows], fontsize=8)  # integer layers
    ax.set_ylabel("layer")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.figure.colorbar(im, ax=ax, fraction=0.03)
    return ax
