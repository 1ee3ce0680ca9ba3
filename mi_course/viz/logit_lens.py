"""Logit-lens explorer: for a prompt, what each layer would predict at each position.

>>> from mi_course.viz.logit_lens import LogitLensExplorer
>>> LogitLensExplorer(model, "def __init__(self):", target=" self")   # displays in Jupyter

Rows are layers (the residual stream after each block; the last row is the model's own
prediction), columns are positions. Each cell lists the top predicted tokens; its colour is
the probability of the chosen *target* token (or of the cell's top token when no target is
set). Choose the logit lens or a tuned lens. Works offline: plain ipywidgets + HTML.
"""

from __future__ import annotations

import html

import torch

from mi_course.errors import InputError
from mi_course.methods import logit_lens as ll

LENSES = ("logit", "tuned")


def _tok_str(model, t: int) -> str:
    s = model.tokenizer.decode([int(t)]) if model.tokenizer is not None else str(int(t))
    return s.replace("\n", "\\n").replace("\t", "\\t")


def _cell_colour(p: float) -> str:
    return f"rgba(33, 113, 181, {0.08 + 0.85 * max(0.0, min(1.0, p)):.2f})"


class LogitLensExplorer:
    """Widget: prompt box, lens choice, target token, number of top tokens; an HTML grid.

    State you can read (and tests do): ``tokens``, ``str_tokens``, ``probs``
    (``[n_layers, pos, d_vocab]`` for the current lens), ``top_ids`` (``[n_layers, pos, k]``),
    ``target_id`` (or ``None``), ``target_probs`` (``[n_layers, pos]`` or ``None``), ``message``.
    """

    def __init__(self, model, prompt: str, lens: str = "logit", target: str | None = None, k: int = 3,
                 tuned_lens: ll.TunedLens | None = None):
        if model.tokenizer is None:
            raise InputError("the explorer needs a model with a tokenizer (e.g. zoo.load('text-lm-v2'))")
        if lens not in LENSES:
            raise InputError(f"lens must be one of {LENSES}, got {lens!r}")
        if not isinstance(k, int) or not 1 <= k <= 10:
            raise InputError(f"k (top tokens per cell) must be an int in 1..10, got {k!r}")
        self.model = model
        self.tuned_lens = tuned_lens
        if lens == "tuned" and tuned_lens is None:
            self.tuned_lens = self._shipped_tuned_lens(required=True)
        elif tuned_lens is None:
            self.tuned_lens = self._shipped_tuned_lens(required=False)
        self.message = ""
        self._set_prompt(prompt, raise_errors=True)
        self.lens = lens
        self.k = k
        self.target_id = self._target_id(target, raise_errors=True)
        self._compute()
        self._build_widgets()
        self._render()

    # -- state ---------------------------------------------------------------------------------
    def _shipped_tuned_lens(self, required: bool):
        try:
            return ll.load_tuned_lens(self.model)
        except InputError:
            if required:
                raise InputError("lens='tuned' needs a tuned lens: pass tuned_lens=train_tuned_lens(model, tokens)[0] "
                                 "or use a zoo model that ships one (text-lm-v2)") from None
            return None

    def _set_prompt(self, prompt: str, raise_errors: bool = False) -> bool:
        if not isinstance(prompt, str) or not prompt.strip():
            return self._fail("the prompt must be a non-empty string", raise_errors)
        tokens = self.model.to_tokens(prompt, truncate=False)
        if tokens.shape[1] > self.model.cfg.n_ctx:
            return self._fail(f"the prompt is {tokens.shape[1]} tokens; this model reads at most {self.model.cfg.n_ctx}",
                              raise_errors)
        self.prompt = prompt
        self.tokens = tokens
        self.str_tokens = [_tok_str(self.model, t) for t in tokens[0]]
        resid, logits = ll.residual_stack(self.model, tokens)
        self._resid, self._logits = resid[:, 0], logits[0]
        return True

    def _target_id(self, target: str | None, raise_errors: bool = False):
        if target is None or target == "":
            return None
        ids = self.model.to_tokens(target, prepend_bos=False)[0]
        if ids.numel() != 1:
            pieces = [_tok_str(self.model, t) for t in ids]
            self._fail(f"target {target!r} is {ids.numel()} tokens {pieces}, not one; pick a single token", raise_errors)
            return None
        return int(ids[0])

    def _fail(self, msg: str, raise_errors: bool) -> bool:
        if raise_errors:
            raise InputError(msg)
        self.message = msg
        return False

    @torch.no_grad()
    def _compute(self) -> None:
        if self.lens == "tuned":
            logits = self.tuned_lens.forward(self.model, self._resid[:, None])[:, 0]
        else:
            logits = ll.unembed(self.model, self._resid)
        self.probs = logits.softmax(-1)  # [L, pos, vocab]
        self.top_ids = self.probs.topk(self.k, dim=-1).indices
        self.target_probs = None if self.target_id is None else self.probs[..., self.target_id]

    # -- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        import ipywidgets as w

        self.prompt_box = w.Text(value=self.prompt, description="prompt", layout=w.Layout(width="60%"),
                                 continuous_update=False)
        options = ["logit"] + (["tuned"] if self.tuned_lens is not None else [])
        self.lens_box = w.ToggleButtons(options=options, value=self.lens, description="lens")
        target = "" if self.target_id is None else self.model.tokenizer.decode([self.target_id])
        self.target_box = w.Text(value=target, description="target", continuous_update=False,
                                 placeholder="one token, e.g. ' self'")
        self.k_box = w.IntSlider(value=self.k, min=1, max=5, description="top k")
        self.out = w.HTML()
        for box in (self.prompt_box, self.lens_box, self.target_box, self.k_box):
            box.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.prompt_box, self.target_box]), w.HBox([self.lens_box, self.k_box]), self.out])

    def _on_change(self, change) -> None:
        self.message = ""
        if change["owner"] is self.prompt_box:
            self._set_prompt(change["new"])
        elif change["owner"] is self.target_box:
            tid = self._target_id(change["new"])
            if not self.message:
                self.target_id = tid
        elif change["owner"] is self.lens_box:
            self.lens = change["new"]
        elif change["owner"] is self.k_box:
            self.k = change["new"]
        self._compute()
        self._render()

    def _render(self) -> None:
        self.out.value = self.html()

    def html(self) -> str:
        """The grid as an HTML table (also what the widget shows)."""
        e = html.escape
        n_layers, n_pos = self.probs.shape[:2]
        what = (f"colour: p({e(_tok_str(self.model, self.target_id))!s})" if self.target_id is not None
                else "colour: probability of the cell's top token")
        rows = [f"<tr><th>{self.lens} lens</th>" + "".join(f"<th style='font-family:monospace'>{e(s)}</th>"
                                                            for s in self.str_tokens) + "</tr>"]
        for L in range(n_layers):
            cells = []
            for p in range(n_pos):
                ids = self.top_ids[L, p].tolist()
                shade = (self.target_probs[L, p] if self.target_probs is not None else self.probs[L, p, ids[0]]).item()
                toks = "<br>".join(f"{e(_tok_str(self.model, t))} <small>{self.probs[L, p, t].item():.2f}</small>" for t in ids)
                extra = f"<br><b>{shade:.3f}</b>" if self.target_probs is not None else ""
                cells.append(f"<td style='background:{_cell_colour(shade)};font-family:monospace;"
                             f"font-size:11px;padding:2px 4px;vertical-align:top'>{toks}{extra}</td>")
            label = f"after block {L}" + (" (output)" if L == n_layers - 1 else "")
            rows.append(f"<tr><th style='white-space:nowrap'>{label}</th>{''.join(cells)}</tr>")
        msg = f"<div style='color:#b00'>{e(self.message)}</div>" if self.message else ""
        return (f"{msg}<div style='font-size:12px'>{what}; each cell predicts the <i>next</i> token</div>"
                f"<div style='overflow-x:auto'><table style='border-collapse:collapse'>{''.join(rows)}</table></div>")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def logit_lens_explorer(model, prompt: str, **kwargs) -> LogitLensExplorer:
    """Build (and, in Jupyter, show by returning) a :class:`LogitLensExplorer`."""
    return LogitLensExplorer(model, prompt, **kwargs)
