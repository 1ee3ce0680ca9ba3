"""Attention-pattern explorer: pick an example, a layer and a head; see the pattern as a grid
or as highlighted tokens ("which earlier tokens does this token look at?")."""

from __future__ import annotations

import html
from typing import Sequence

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.zoo import hooks as hk

_CSS = (
    "<style>.mic-att td{width:14px;height:14px;padding:0;border:1px solid #fff}"
    ".mic-att th{font:10px monospace;padding:0 2px;white-space:nowrap}"
    ".mic-att th.k{writing-mode:vertical-rl;transform:rotate(180deg)}"
    ".mic-tok span{font:13px monospace;padding:1px 2px;margin:1px;border-radius:3px;display:inline-block}"
    ".mic-tok span.q{outline:2px solid #dc2626}</style>"
)


def _color(v: float) -> str:
    return f"rgba(37,99,235,{max(0.0, min(1.0, v)):.2f})"


def attention_html(pattern: torch.Tensor, tokens: Sequence[str], view: str = "grid", query: int | None = None) -> str:
    """HTML for one head's pattern ``[query_pos, key_pos]`` over ``tokens``.

    ``view="grid"``: a heatmap, queries down, keys across, the value on hover.
    ``view="tokens"``: the text, each token shaded by how much ``query`` attends to it.
    """
    expect_shape("pattern", pattern, (len(tokens), len(tokens)), "Expected one head's [query_pos, key_pos] pattern.")
    p = pattern.detach().float().cpu()
    toks = [html.escape(t) for t in tokens]
    if view == "grid":
        head = "".join(f"<th class='k'>{t}</th>" for t in toks)
        rows = []
        for i, t in enumerate(toks):
            cells = "".join(
                f"<td style='background:{_color(float(p[i, j]))}' title='{t} &rarr; {toks[j]}: {float(p[i, j]):.2f}'></td>"
                for j in range(len(toks))
            )
            rows.append(f"<tr><th>{t}</th>{cells}</tr>")
        return f"{_CSS}<table class='mic-att'><tr><th></th>{head}</tr>{''.join(rows)}</table>"
    if view == "tokens":
        q = len(toks) - 1 if query is None else int(query)
        if not 0 <= q < len(toks):
            raise InputError(f"query must be in 0..{len(toks) - 1}, got {query}")
        spans = []
        for j, t in enumerate(toks):
            val = float(p[q, j]) if j <= q else 0.0
            cls = " class='q'" if j == q else ""
            spans.append(f"<span{cls} style='background:{_color(val)}' title='{val:.2f}'>{t}</span>")
        return f"{_CSS}<div class='mic-tok'>{''.join(spans)}</div>"
    raise InputError(f"view must be 'grid' or 'tokens', got {view!r}")


class AttentionExplorer:
    """Interactive attention patterns of ``model`` on a batch of examples.

    >>> AttentionExplorer(model, tokens, token_names)   # in a notebook cell: shows the widget

    tokens: ``[batch, pos]`` token ids; token_names: a display name per vocabulary id
    (defaults to the zoo card's names, or ``model.to_str_tokens`` for models with a tokenizer).
    """

    def __init__(self, model, tokens: torch.Tensor, token_names: Sequence[str] | None = None, max_pos: int = 64):
        import ipywidgets as w

        if tokens.ndim == 1:
            tokens = tokens[None]
        expect_shape("tokens", tokens, (None, None), "Expected token ids [batch, pos].")
        if tokens.shape[1] > max_pos:
            raise InputError(f"{tokens.shape[1]} positions is too many to draw; pass at most {max_pos} (slice the tokens).")
        if int(tokens.max()) >= model.cfg.d_vocab or int(tokens.min()) < 0:
            raise InputError(f"token ids must be in 0..{model.cfg.d_vocab - 1} for this model")
        if token_names is None:
            card = getattr(model, "zoo_card", None)
            token_names = card.token_names if card is not None and card.token_names else None
        if token_names is None:
            token_names = [str(i) for i in range(model.cfg.d_vocab)]
        self.token_names = list(token_names)
        self.tokens = tokens
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=hk.only("pattern"))
        # [layer, batch, head, q, k]
        self.patterns = torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])
        n_layers, _, n_heads, n_pos, _ = self.patterns.shape
        style = {"description_width": "70px"}
        self.example = w.Dropdown(options=[(f"example {i}", i) for i in range(tokens.shape[0])],
                                  value=0, description="example", style=style)
        self.layer = w.IntSlider(0, 0, n_layers - 1, description="layer", style=style)
        self.head = w.IntSlider(0, 0, n_heads - 1, description="head", style=style)
        self.view = w.ToggleButtons(options=["grid", "tokens"], value="grid", description="view", style=style)
        self.query = w.IntSlider(n_pos - 1, 0, n_pos - 1, description="query pos", style=style)
        self.out = w.HTML()
        for ctl in (self.example, self.layer, self.head, self.view, self.query):
            ctl.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.example, self.view]), w.HBox([self.layer, self.head]), self.query, self.out])
        self.update()

    def str_tokens(self, example: int) -> list[str]:
        return [self.token_names[int(t)] for t in self.tokens[example]]

    def update(self) -> None:
        p = self.patterns[self.layer.value, self.example.value, self.head.value]
        self.query.layout.display = "" if self.view.value == "tokens" else "none"
        self.out.value = attention_html(p, self.str_tokens(self.example.value), self.view.value, self.query.value)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def plot_attention(pattern: torch.Tensor, tokens: Sequence[str], title: str = "", ax=None):
    """Matplotlib heatmap of one head's pattern ``[query_pos, key_pos]`` (for slides and static pages)."""
    import matplotlib.pyplot as plt

    expect_shape("pattern", pattern, (len(tokens), len(tokens)))
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(pattern.detach().cpu(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
    ax.set_yticks(range(len(tokens)), tokens, fontsize=6)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    ax.set_title(title)
    return ax
