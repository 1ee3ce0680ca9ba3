"""Neuron viewer in the spirit of Neuroscope: what makes an MLP neuron fire, and what it writes.

>>> from mi_course.viz.neurons import NeuronViewer
>>> NeuronViewer(model, corpus_tokens, layer=2, neuron=101)   # displays in Jupyter

For the chosen neuron: its top-activating examples from a corpus sample, each a window of
text ending at the firing token with every token shaded by the neuron's activation there,
and the tokens its output weights (its *value*, ``W_out[layer, neuron]`` through the final LayerNorm and ``W_U``) promote and
suppress most. Plain ipywidgets + HTML, offline.
"""

from __future__ import annotations

import html

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.methods import ffn_memories as fm


def _tok_str(model, t: int) -> str:
    return model.tokenizer.decode([int(t)]).replace("\n", "\u21b5").replace("\t", "\u21e5")


class NeuronViewer:
    """Widget: layer and neuron pickers, top-activating examples, promoted/suppressed tokens.

    State you can read (and tests do): ``layer``, ``neuron``, ``examples`` (list of dicts with
    ``batch``, ``pos``, ``activation``, ``tokens`` (strings), ``acts`` (floats, same length)),
    ``promoted`` / ``suppressed`` (lists of ``(token, logit)``), ``message``.
    """

    def __init__(self, model, tokens: torch.Tensor, layer: int = 0, neuron: int = 0, n_examples: int = 8,
                 context: int = 16, n_tokens: int = 10):
        if model.tokenizer is None:
            raise InputError("the viewer needs a model with a tokenizer (e.g. zoo.load('text-lm-v2'))")
        expect_shape("tokens", tokens, (None, None), "Pass a corpus sample [batch, pos] of token ids.")
        if not 1 <= n_examples <= 50 or not 2 <= context <= tokens.shape[1]:
            raise InputError("n_examples must be in 1..50 and context in 2..(sequence length)")
        self.model, self.tokens = model, tokens
        self.n_examples, self.context, self.n_tokens = n_examples, context, n_tokens
        fm._check_neuron(model, layer, neuron)
        self.acts = fm.mlp_activations(model, tokens)  # [L, batch, pos, d_mlp]
        self.top = fm.top_activations(model, tokens, k=n_examples)
        self.message = ""
        self.layer, self.neuron = layer, neuron
        self._compute()
        self._build_widgets()
        self._render()

    def select(self, layer: int, neuron: int) -> None:
        """Show another neuron (raises :class:`InputError` on a bad index)."""
        fm._check_neuron(self.model, layer, neuron)
        self.layer, self.neuron = layer, neuron
        self._compute()
        if hasattr(self, "layer_box"):
            self._syncing = True
            self.layer_box.value, self.neuron_box.value = layer, neuron
            self._syncing = False
            self._render()

    def _compute(self) -> None:
        L, n = self.layer, self.neuron
        a = self.acts[L, :, :, n]
        self.max_act = float(a.max())
        self.examples = []
        for b, p, v in fm.trigger_examples(self.top, L, n):
            start = max(1, p + 1 - self.context)
            self.examples.append({
                "batch": b, "pos": p, "activation": v,
                "tokens": [_tok_str(self.model, t) for t in self.tokens[b, start : p + 2]],
                "acts": a[b, start : p + 2].tolist(),
                "firing_index": p - start,
            })
        vals, ids = fm.value_vocab(self.model, L, n).topk(self.n_tokens)
        self.promoted = [(_tok_str(self.model, t), float(v)) for v, t in zip(vals, ids)]
        vals, ids = (-fm.value_vocab(self.model, L, n)).topk(self.n_tokens)
        self.suppressed = [(_tok_str(self.model, t), -float(v)) for v, t in zip(vals, ids)]

    def _build_widgets(self) -> None:
        import ipywidgets as w

        self._syncing = False
        self.layer_box = w.BoundedIntText(value=self.layer, min=0, max=self.model.cfg.n_layers - 1, description="layer")
        self.neuron_box = w.BoundedIntText(value=self.neuron, min=0, max=self.model.cfg.d_mlp - 1, description="neuron")
        self.out = w.HTML()
        self.layer_box.observe(self._on_change, names="value")
        self.neuron_box.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.layer_box, self.neuron_box]), self.out])

    def _on_change(self, change) -> None:
        if self._syncing:
            return
        self.message = ""
        try:
            self.select(self.layer_box.value, self.neuron_box.value)
        except InputError as err:
            self.message = str(err)
            self._render()

    def _render(self) -> None:
        self.out.value = self.html()

    def html(self) -> str:
        e = html.escape
        scale = max(self.max_act, 1e-6)
        rows = []
        for ex in self.examples:
            spans = []
            for i, (t, a) in enumerate(zip(ex["tokens"], ex["acts"])):
                alpha = max(0.0, a / scale)
                border = "border-bottom:2px solid #000;" if i == ex["firing_index"] else ""
                after = "color:#888;" if i > ex["firing_index"] else ""
                spans.append(f"<span title='{a:.3f}' style='background:rgba(230,85,13,{alpha:.2f});{border}{after}'>"
                             f"{e(t)}</span>")
            rows.append(f"<tr><td style='text-align:right;padding-right:8px'>{ex['activation']:.2f}</td>"
                        f"<td style='font-family:monospace;white-space:pre'>{''.join(spans)}</td></tr>")
        prom = ", ".join(f"<code>{e(t)}</code> {v:+.2f}" for t, v in self.promoted)
        supp = ", ".join(f"<code>{e(t)}</code> {v:+.2f}" for t, v in self.suppressed)
        msg = f"<div style='color:#b00'>{e(self.message)}</div>" if self.message else ""
        return (f"{msg}<div><b>neuron {self.layer}.{self.neuron}</b>: max activation {self.max_act:.2f} in this "
                f"sample; the underlined token is where it fired, grey tokens come next</div>"
                f"<table>{''.join(rows)}</table>"
                f"<div><b>promotes</b> (value @ W_U): {prom}</div><div><b>suppresses</b>: {supp}</div>")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
