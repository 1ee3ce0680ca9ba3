"""Feature dashboards for SAE latents, and a prompt view: which latents fire on this text.

>>> from mi_course.viz.feature_dashboard import FeatureDashboard, PromptView
>>> FeatureDashboard.from_zoo("text-lm-v2-L1-resid-topk", latent=1013)     # displays in Jupyter
>>> PromptView(model, sae, "for x in range(10):")

The dashboard (after Towards Monosemanticity and SAEDashboard) shows, for the chosen latent: its
density and activation histogram, the top-activating contexts with every token shaded by the
latent's activation (the strongest token underlined), random samples from bands of activation
(equal-width intervals from 0 to the max),
and the tokens its decoder direction promotes and suppresses through the unembedding. Everything
comes from :class:`mi_course.methods.feature_stats.FeatureStats` (shipped for zoo SAEs). Plain
ipywidgets + HTML, offline; the state is readable for tests.
"""

from __future__ import annotations

import html

from mi_course.errors import InputError
from mi_course.methods import feature_stats as fs

_CSS = ("<style>.mic-fd td{padding:1px 4px;vertical-align:top}.mic-fd .ctx{font:12px monospace;white-space:pre}"
        ".mic-fd .bar{display:inline-block;background:#e6550d;height:10px}</style>")


def _shade(tokens: list[str], acts: list[float], scale: float, center: int | None = None) -> str:
    e = html.escape
    spans = []
    for i, (t, a) in enumerate(zip(tokens, acts)):
        a = 0.0 if a != a else a
        alpha = max(0.0, min(1.0, a / scale)) if scale > 0 else 0.0
        under = "border-bottom:2px solid #000;" if i == center else ""
        spans.append(f"<span title='{a:.3f}' style='background:rgba(230,85,13,{alpha:.2f});{under}'>{e(t)}</span>")
    return "".join(spans)


class _LatentPicker:
    """The latent box both viewers share: typing a latent shows it; a bad one shows the error in red."""

    def _show_latent_in_box(self, latent: int) -> None:
        if hasattr(self, "latent_box"):
            self._syncing = True
            self.latent_box.value = latent
            self._syncing = False
            self._render()

    def _on_latent(self, change) -> None:
        if self._syncing:
            return
        self.message = ""
        try:
            self.select(int(self.latent_box.value))
        except InputError as err:
            self.message = str(err)
            self._render()

    def _render(self) -> None:
        self.out.value = self.html()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class FeatureDashboard(_LatentPicker):
    """Widget: a latent selector and the latent's dashboard.

    State you can read (and tests do): ``latent``, ``density``, ``max_act``, ``hist`` (``(edges,
    counts)``), ``top`` / ``bands`` (lists of contexts as dicts with ``tokens`` (strings), ``acts``,
    ``center``, ``activation``), ``promoted`` / ``suppressed`` (lists of ``(token, logit effect)``),
    ``message``; ``out.value`` is the HTML shown.
    """

    def __init__(self, stats: fs.FeatureStats, tokenizer, latent: int | None = None, n_top: int = 10):
        if not isinstance(stats, fs.FeatureStats):
            raise InputError("stats must be FeatureStats (methods.feature_stats.compute_feature_stats or "
                             "load_feature_stats)")
        if not hasattr(tokenizer, "decode"):
            raise InputError("tokenizer must have a decode method (e.g. model.tokenizer)")
        if isinstance(n_top, bool) or not isinstance(n_top, int) or n_top < 1:
            raise InputError(f"n_top must be a positive int, got {n_top!r}")
        self.stats, self.tokenizer, self.n_top = stats, tokenizer, n_top
        alive = stats.alive()
        self.message = ""
        self.latent = int(alive[0]) if latent is None and len(alive) else (0 if latent is None else latent)
        self._compute()
        self._build_widgets()
        self._render()

    @classmethod
    def from_zoo(cls, sae_name: str, latent: int | None = None, **kwargs) -> "FeatureDashboard":
        """The dashboard of a zoo SAE from its shipped statistics (no model run)."""
        from mi_course import zoo
        from mi_course.zoo.tokenizer_files import tokenizer_for

        stats = fs.load_feature_stats(sae_name)
        tok = tokenizer_for(zoo.card(zoo.sae_card(sae_name).model_name))
        return cls(stats, tok, latent, **kwargs)

    def select(self, latent: int) -> None:
        """Show another latent (raises :class:`InputError` on a bad index)."""
        self.stats._check_latent(latent)
        self.latent = latent
        self._compute()
        self._show_latent_in_box(latent)

    def _ctx(self, c: fs.Context) -> dict:
        return {"tokens": fs.token_strings(self.tokenizer, c.tokens), "acts": c.acts, "center": c.center,
                "activation": c.activation, "window": c.window, "pos": c.pos}

    def _compute(self) -> None:
        s, i = self.stats, self.stats._check_latent(self.latent)
        self.density, self.max_act = float(s.density[i]), float(s.max_act[i])
        self.hist = s.histogram(i)
        self.top = [self._ctx(c) for c in s.contexts(i, "top")[: self.n_top]]
        self.bands = [[self._ctx(c) for c in band] for band in s.quantile_bands(i)]
        self.promoted = self.suppressed = []
        if s.promoted is not None:
            pro, sup = s.logit_tokens(i)
            name = lambda t: fs.token_strings(self.tokenizer, [t])[0]  # noqa: E731
            self.promoted = [(name(t), v) for t, v in pro]
            self.suppressed = [(name(t), v) for t, v in sup]

    def _build_widgets(self) -> None:
        import ipywidgets as w

        self._syncing = False
        self.latent_box = w.BoundedIntText(value=self.latent, min=0, max=self.stats.d_sae - 1, description="latent")
        self.out = w.HTML()
        self.latent_box.observe(self._on_latent, names="value")
        self.widget = w.VBox([self.latent_box, self.out])

    def text(self, n: int = 3) -> str:
        """A plain-text summary (for printed output): density, the ``n`` top contexts with the strongest
        token in [[ ]], and the top promoted tokens."""
        if self.max_act <= 0:
            return f"latent {self.latent}: dead on this stream"
        lines = [f"latent {self.latent}: fires on {100 * self.density:.2f}% of tokens, max {self.max_act:.2f}"]
        for c in self.top[:n]:
            t, j = c["tokens"], c["center"]
            lines.append(f"  {c['activation']:5.2f}  " + "".join(t[:j]) + "[[" + t[j] + "]]" + "".join(t[j + 1 :]))
        if self.promoted:
            lines.append("  promotes: " + " ".join(repr(t) for t, _ in self.promoted[:6]))
        return "\n".join(lines)

    def histogram_html(self) -> str:
        edges, counts = self.hist
        peak = max(int(counts.max()), 1) if counts.numel() else 1
        rows = []
        for k in range(counts.numel()):
            n = int(counts[k])
            rows.append(f"<tr><td style='text-align:right;font:10px monospace'>{float(edges[k]):.2f}</td>"
                        f"<td><span class='bar' style='width:{200 * n / peak:.0f}px'></span> "
                        f"<span style='font:10px monospace'>{n}</span></td></tr>")
        return f"<table>{''.join(rows)}</table>"

    def html(self) -> str:
        e = html.escape
        scale = max(self.max_act, 1e-6)
        msg = f"<div style='color:#b00'>{e(self.message)}</div>" if self.message else ""
        if self.max_act <= 0:
            return (f"{_CSS}{msg}<div class='mic-fd'><b>latent {self.latent}</b>: dead (never fires on the "
                    f"{self.stats.meta.get('tokens', '?')} tokens of this stream)</div>")
        top = "".join(f"<tr><td>{c['activation']:.2f}</td><td class='ctx'>{_shade(c['tokens'], c['acts'], scale, c['center'])}"
                      f"</td></tr>" for c in self.top)
        bands = []
        for b, band in enumerate(self.bands):
            lo, hi = 100 * b // len(self.bands), 100 * (b + 1) // len(self.bands)
            rows = "".join(f"<tr><td>{c['activation']:.2f}</td><td class='ctx'>"
                           f"{_shade(c['tokens'], c['acts'], scale, c['center'])}</td></tr>" for c in band)
            bands.append(f"<tr><td colspan=2><i>activation {lo}-{hi}% of the max</i></td></tr>{rows}")
        prom = ", ".join(f"<code>{e(t)}</code> {v:+.2f}" for t, v in self.promoted)
        supp = ", ".join(f"<code>{e(t)}</code> {v:+.2f}" for t, v in self.suppressed)
        return (f"{_CSS}{msg}<div class='mic-fd'><div><b>latent {self.latent}</b>: fires on {100 * self.density:.2f}% "
                f"of tokens; max activation {self.max_act:.2f}</div>"
                f"<table><tr><td><b>activation histogram</b> (non-zero values){self.histogram_html()}</td>"
                f"<td><b>top-activating contexts</b> (strongest token underlined)<table>{top}</table></td></tr></table>"
                f"<div><b>random samples from bands of activation</b><table>{''.join(bands)}</table></div>"
                f"<div><b>promotes</b> (decoder direction through the final LayerNorm and W_U): {prom}</div>"
                f"<div><b>suppresses</b>: {supp}</div></div>")


class PromptView(_LatentPicker):
    """Widget: type a text, see which latents fire on each token; pick a latent to shade the text by it.

    State: ``text``, ``tokens`` (strings), ``top`` (per token, ``[(latent, activation)]``), ``totals``
    (latents with the largest summed activation), ``latent`` (the one shading the text; default the
    first of ``totals``), ``latent_acts`` (its activation per token), ``message``, ``out.value``.
    """

    def __init__(self, model, sae, text: str, latent: int | None = None, k: int = 5):
        if getattr(model, "tokenizer", None) is None:
            raise InputError("the prompt view needs a model with a tokenizer (e.g. zoo.load('text-lm-v2'))")
        self.model, self.sae, self.k = model, sae, k
        self.message = ""
        self.latent = latent
        self._set_text(text)
        self._build_widgets()
        self._render()

    def _set_text(self, text: str) -> None:
        res = fs.prompt_latents(self.model, self.sae, text, self.k)
        self.text = text
        self.acts = res["acts"]
        self.tokens = fs.token_strings(self.model.tokenizer, res["tokens"])
        self.top, self.totals = res["top"], res["totals"]
        if self.latent is None or not 0 <= self.latent < self.sae.d_sae:
            self.latent = self.totals[0][0] if self.totals else 0
        self.latent_acts = self.acts[:, self.latent].tolist()

    def select(self, latent: int) -> None:
        if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < self.sae.d_sae:
            raise InputError(f"latent must be an int in 0..{self.sae.d_sae - 1}, got {latent!r}")
        self.latent = latent
        self.latent_acts = self.acts[:, latent].tolist()
        self._show_latent_in_box(latent)

    def _build_widgets(self) -> None:
        import ipywidgets as w

        self._syncing = False
        self.text_box = w.Text(value=self.text, description="text", continuous_update=False,
                               layout=w.Layout(width="60%"))
        self.latent_box = w.BoundedIntText(value=self.latent, min=0, max=self.sae.d_sae - 1, description="latent")
        self.out = w.HTML()
        self.text_box.observe(self._on_text, names="value")
        self.latent_box.observe(self._on_latent, names="value")
        self.widget = w.VBox([w.HBox([self.text_box, self.latent_box]), self.out])

    def _on_text(self, change) -> None:
        self.message = ""
        try:
            self._set_text(self.text_box.value)
        except InputError as err:
            self.message = str(err)
        self._render()

    def html(self) -> str:
        e = html.escape
        msg = f"<div style='color:#b00'>{e(self.message)}</div>" if self.message else ""
        scale = max(max(self.latent_acts[1:], default=0.0), 1e-6)
        shaded = _shade(self.tokens[1:], self.latent_acts[1:], scale)
        rows = "".join(f"<tr><td class='ctx'>{e(t)}</td><td>"
                       + ", ".join(f"{j} ({v:.2f})" for j, v in top) + "</td></tr>"
                       for t, top in zip(self.tokens[1:], self.top[1:]))
        tot = ", ".join(f"{j} ({v:.1f})" for j, v in self.totals)
        return (f"{_CSS}{msg}<div class='mic-fd'><div><b>latent {self.latent}</b> on the text "
                f"(max {scale:.2f}):</div><div class='ctx'>{shaded}</div>"
                f"<div><b>most active over the text</b> (summed): {tot}</div>"
                f"<table><tr><th>token</th><th>top latents (activation)</th></tr>{rows}</table></div>")
