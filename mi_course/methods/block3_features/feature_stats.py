"""What each SAE latent responds to and what it writes: the numbers behind a feature dashboard.

Towards Monosemanticity (Bricken et al. 2023) and SAEDashboard show, for each latent: its
activation histogram and density, the top-activating contexts with per-token activations,
contexts sampled from activation quantile bands (so the dashboard is not only the extremes),
and the tokens its decoder direction promotes and suppresses through the unembedding. This
module computes all of it for an SAE over a model's activations on a token stream:

>>> stats = compute_feature_stats(model, sae, tokens)          # tokens [n_windows, n_ctx]
>>> stats.contexts(latent=7, which="top")                      # list of Context
>>> stats.histogram(7)                                         # (bin edges [n_bins+1], counts [n_bins])
>>> stats.density[7]                                           # fraction of tokens it fires on
>>> logit_effects(sae, model)                                  # [d_sae, d_vocab]
>>> prompt_latents(model, sae, "def f(self):")                 # which latents fire on a text, per token

The stream is split by window: even windows are the *explanation* split (top contexts and
quantile samples, what a dashboard shows and an explainer reads), odd windows the *scoring*
split (held-out activating and non-activating contexts for :mod:`mi_course.methods.autointerp`).
The first position of every window (``<|endoftext|>``) is left out, as in SAE training.

Decoder direction through the unembedding. A latent adds ``f * W_dec[i]`` to the residual
stream; its direct effect on the logits goes through the final LayerNorm and ``W_U``. As in the
papers (Bricken et al. 2023's "logit weights"; the neuron viewer's value logits), the LayerNorm
is approximated by what it does to a direction: centring and the elementwise weight
``w_ln``; its division by the residual stream's norm is one positive number per position, which
changes no ranking, so it is left out (:func:`mi_course.methods.ffn_memories.value_logits`).

Slow on a CPU for a whole split (about a minute for text-lm's 128k held-out tokens), so the zoo
ships the result next to the SAE (:func:`load_feature_stats`, sha256 in the SAE's card);
:func:`compute_feature_stats` on a few dozen windows is fast enough for a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError, expect_shape

__all__ = ["Context", "FeatureStats", "compute_feature_stats", "top_windows", "logit_effects", "top_logit_tokens",
           "prompt_latents", "latent_activations", "save_feature_stats", "load_feature_stats",
           "STATS_FILE", "token_strings"]

STATS_FILE = "feature_stats.safetensors"


@dataclass
class Context:
    """A window of tokens around one position of one window of the stream.

    ``tokens`` (ids) and ``acts`` (the latent's activation on each) have the same length;
    ``center`` is the index within them of ``pos``; ``activation`` the value there.
    """

    window: int
    pos: int
    center: int
    activation: float
    tokens: list[int]
    acts: list[float]


@dataclass
class FeatureStats:
    """Per-latent statistics of one SAE on one token stream (all tensors indexed by latent first).

    ``tokens`` ``[n_windows, n_ctx]`` the stream; ``density`` / ``max_act`` ``[d_sae]``;
    ``hist_counts`` ``[d_sae, n_bins]`` counts of non-zero activations in ``n_bins`` equal bins
    from 0 to ``max_act``; ``*_idx`` ``[d_sae, n, 2]`` (window, position) of each context, -1 where
    there are too few; ``*_acts`` ``[d_sae, n, before + 1 + after]`` the latent's activation on
    each token of the context (NaN off the window's edges). ``top``: strongest window-maxima of the
    explanation split (one per window); ``quantile``: ``per_band`` random samples from each of
    ``n_bands`` activation bands of the explanation split, equal-width intervals of activation
    from 0 to ``max_act`` (band 0 lowest; Anthropic's "subsample intervals"; a band with no
    activation in it stays empty); ``score_pos`` / ``score_neg``: activating (spread evenly over the
    same bands, as far as they hold enough) / non-activating (the latent is zero on every token
    of the context) contexts of the scoring split.
    """

    tokens: torch.Tensor
    density: torch.Tensor
    max_act: torch.Tensor
    hist_counts: torch.Tensor
    top_idx: torch.Tensor
    top_acts: torch.Tensor
    quantile_idx: torch.Tensor
    quantile_acts: torch.Tensor
    score_pos_idx: torch.Tensor
    score_pos_acts: torch.Tensor
    score_neg_idx: torch.Tensor
    before: int
    after: int
    promoted: torch.Tensor | None = None       # [d_sae, n_logit] token ids
    promoted_logits: torch.Tensor | None = None
    suppressed: torch.Tensor | None = None
    suppressed_logits: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def d_sae(self) -> int:
        return int(self.density.numel())

    @property
    def n_bands(self) -> int:
        return int(self.quantile_idx.shape[1])

    def _check_latent(self, latent: int) -> int:
        if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < self.d_sae:
            raise InputError(f"latent must be an int in 0..{self.d_sae - 1}, got {latent!r}")
        return latent

    def alive(self) -> torch.Tensor:
        """Indices of latents that fire at least once on the stream."""
        return (self.density > 0).nonzero()[:, 0]

    def histogram(self, latent: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(edges [n_bins + 1], counts [n_bins])`` of the latent's non-zero activations."""
        i = self._check_latent(latent)
        n = self.hist_counts.shape[1]
        return torch.linspace(0, float(self.max_act[i]), n + 1), self.hist_counts[i]

    def _make(self, idx: torch.Tensor, acts: torch.Tensor | None) -> list[Context]:
        out = []
        for j in range(idx.shape[0]):
            w, p = int(idx[j, 0]), int(idx[j, 1])
            if w < 0:
                continue
            lo, hi = max(1, p - self.before), min(self.tokens.shape[1], p + self.after + 1)
            off = lo - (p - self.before)
            a = (acts[j, off : off + hi - lo].float().tolist() if acts is not None else [0.0] * (hi - lo))
            out.append(Context(w, p, p - lo, a[p - lo], self.tokens[w, lo:hi].tolist(), a))
        return out

    def contexts(self, latent: int, which: str = "top") -> list[Context]:
        """Contexts of ``latent``: ``"top"``, ``"quantile"`` (lowest band first), ``"score_activating"``,
        ``"score_non_activating"``."""
        i = self._check_latent(latent)
        if which == "top":
            return self._make(self.top_idx[i], self.top_acts[i])
        if which == "quantile":
            return self._make(self.quantile_idx[i].reshape(-1, 2), self.quantile_acts[i].reshape(-1, self.quantile_acts.shape[-1]))
        if which == "score_activating":
            return self._make(self.score_pos_idx[i], self.score_pos_acts[i])
        if which == "score_non_activating":
            return self._make(self.score_neg_idx[i], None)
        raise InputError(f"which must be 'top', 'quantile', 'score_activating' or 'score_non_activating', got {which!r}")

    def quantile_bands(self, latent: int) -> list[list[Context]]:
        """``n_bands`` lists of contexts, lowest activation band first."""
        i = self._check_latent(latent)
        return [self._make(self.quantile_idx[i, b], self.quantile_acts[i, b]) for b in range(self.n_bands)]

    def logit_tokens(self, latent: int) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """``(promoted, suppressed)``: lists of ``(token id, logit effect)``, strongest first."""
        i = self._check_latent(latent)
        if self.promoted is None:
            raise InputError("these stats have no logit tables: pass the model to compute_feature_stats")
        pro = [(int(t), float(v)) for t, v in zip(self.promoted[i], self.promoted_logits[i])]
        sup = [(int(t), float(v)) for t, v in zip(self.suppressed[i], self.suppressed_logits[i])]
        return pro, sup


# ------------------------------------------------------------------------------------ helpers
def _check_sae_model(model, sae) -> str:
    hook = getattr(sae, "hook_name", None)
    if not hook:
        raise InputError("the SAE has no hook_name (the activation it reads); load it with zoo.load_sae "
                         "or set sae.hook_name")
    if getattr(sae, "kind", "sae") != "sae":
        raise InputError("feature statistics are for SAEs; a transcoder's latents read its hook_name the same "
                         "way, load it as an SAE to use this")
    if model.cfg.d_model != sae.d_in:
        raise InputError(f"the SAE reads d_in={sae.d_in}, the model's d_model is {model.cfg.d_model}")
    return hook


@torch.no_grad()
def latent_activations(model, sae, tokens: torch.Tensor, batch: int = 32, progress: bool = False) -> torch.Tensor:
    """``[n_windows, n_ctx, d_sae]`` latent activations (float16) of ``sae`` on ``tokens`` ``[n_windows, n_ctx]``;
    position 0 (``<|endoftext|>``) set to 0."""
    hook = _check_sae_model(model, sae)
    expect_shape("tokens", tokens, (None, None), "Pass windows of token ids [n_windows, n_ctx].")
    if tokens.shape[1] > model.cfg.n_ctx:
        raise InputError(f"windows of {tokens.shape[1]} tokens exceed the model's n_ctx={model.cfg.n_ctx}")
    out = torch.zeros(tokens.shape[0], tokens.shape[1], sae.d_sae, dtype=torch.float16)
    for i in tqdm(range(0, tokens.shape[0], batch), desc="latent activations", disable=not progress, leave=False):
        _, cache = model.run_with_cache(tokens[i : i + batch], names_filter=lambda n: n == hook)
        out[i : i + batch, 1:] = sae.encode(cache[hook][:, 1:]).to(torch.float16)
    return out


def top_windows(acts: torch.Tensor, k: int) -> torch.Tensor:
    """The top-activating contexts of one latent, one per window: ``[min(k, n_windows), 2]`` rows
    ``(window, position)`` of the ``k`` windows with the largest maximum activation, strongest
    first, each at the position of its maximum. ``acts`` ``[n_windows, n_ctx]``."""
    expect_shape("acts", acts, (None, None), "Pass one latent's activations [n_windows, n_ctx].")
    wmax, warg = acts.max(-1)
    order = wmax.argsort(descending=True, stable=True)[:k]
    return torch.stack([order, warg[order]], -1)


def _context_acts(col: torch.Tensor, idx: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """``[n, before+1+after]`` values of ``col`` ``[n_windows, n_ctx]`` around each (window, pos) of ``idx`` (NaN off edges)."""
    width = before + 1 + after
    out = torch.full((idx.shape[0], width), float("nan"), dtype=torch.float16)
    n_ctx = col.shape[1]
    for j in range(idx.shape[0]):
        w, p = int(idx[j, 0]), int(idx[j, 1])
        if w < 0:
            continue
        lo, hi = max(1, p - before), min(n_ctx, p + after + 1)
        off = lo - (p - before)
        out[j, off : off + hi - lo] = col[w, lo:hi]
    return out


def _pad_idx(pairs: list[tuple[int, int]], n: int) -> torch.Tensor:
    out = torch.full((n, 2), -1, dtype=torch.long)
    if pairs:
        out[: len(pairs)] = torch.tensor(pairs[:n], dtype=torch.long)
    return out


@torch.no_grad()
def logit_effects(sae, model) -> torch.Tensor:
    """``[d_sae, d_vocab]``: each decoder direction through the final LayerNorm (centring and its
    weight; the norm's scale left out, see the module docstring) and ``W_U``."""
    from mi_course.methods.ffn_memories import _ln_final_weight, value_logits

    if model.cfg.d_model != sae.d_out:
        raise InputError(f"the SAE writes d={sae.d_out}, the model's d_model is {model.cfg.d_model}")
    return value_logits(sae.decoder_directions.detach(), _ln_final_weight(model), model.W_U.detach())


def top_logit_tokens(sae, model, k: int = 10) -> dict[str, torch.Tensor]:
    """Per latent, the ``k`` tokens its decoder direction promotes / suppresses most:
    ``promoted``, ``promoted_logits``, ``suppressed``, ``suppressed_logits``, each ``[d_sae, k]``."""
    eff = logit_effects(sae, model)
    pv, pi = eff.topk(k, dim=-1)
    sv, si = (-eff).topk(k, dim=-1)
    return {"promoted": pi, "promoted_logits": pv, "suppressed": si, "suppressed_logits": -sv}


@torch.no_grad()
def compute_feature_stats(model, sae, tokens: torch.Tensor, k_top: int = 10, n_bands: int = 4, per_band: int = 3,
                          n_score: int = 20, before: int = 10, after: int = 4, n_bins: int = 30, n_logit: int = 10,
                          batch: int = 32, seed: int = 0, progress: bool = True,
                          acts: torch.Tensor | None = None) -> FeatureStats:
    """Dashboard statistics of every latent of ``sae`` over ``model``'s activations on ``tokens``.

    ``tokens`` ``[n_windows, n_ctx]`` with at least 2 windows (even ones: explanation split, odd:
    scoring split). ``acts`` may pass precomputed :func:`latent_activations`. Seeded: the same
    inputs give the same samples. See :class:`FeatureStats` for what each field holds.
    """
    expect_shape("tokens", tokens, (None, None), "Pass windows of token ids [n_windows, n_ctx].")
    if tokens.shape[0] < 2:
        raise InputError("tokens needs at least 2 windows (an explanation and a scoring split)")
    for name, v in (("k_top", k_top), ("n_bands", n_bands), ("per_band", per_band), ("n_score", n_score),
                    ("n_bins", n_bins)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a positive int, got {v!r}")
    if before < 0 or after < 0:
        raise InputError(f"before and after must be >= 0, got {before}, {after}")
    A = latent_activations(model, sae, tokens, batch, progress) if acts is None else acts
    expect_shape("acts", A, (tokens.shape[0], tokens.shape[1], sae.d_sae), "Pass latent_activations(model, sae, tokens).")
    n_win, n_ctx, d_sae = A.shape
    g = torch.Generator().manual_seed(seed)
    explain = torch.arange(n_win) % 2 == 0
    n_tok = n_win * (n_ctx - 1)
    density = (A[:, 1:] > 0).sum((0, 1)).float() / n_tok
    max_act = A.amax((0, 1)).float()
    width = before + 1 + after
    hist = torch.zeros(d_sae, n_bins, dtype=torch.long)
    top_idx = torch.full((d_sae, k_top, 2), -1, dtype=torch.long)
    top_acts = torch.full((d_sae, k_top, width), float("nan"), dtype=torch.float16)
    q_idx = torch.full((d_sae, n_bands, per_band, 2), -1, dtype=torch.long)
    q_acts = torch.full((d_sae, n_bands, per_band, width), float("nan"), dtype=torch.float16)
    sp_idx = torch.full((d_sae, n_score, 2), -1, dtype=torch.long)
    sp_acts = torch.full((d_sae, n_score, width), float("nan"), dtype=torch.float16)
    sn_idx = torch.full((d_sae, n_score, 2), -1, dtype=torch.long)
    ex_w, sc_w = explain.nonzero()[:, 0], (~explain).nonzero()[:, 0]
    AT = A.permute(2, 0, 1)  # [d_sae, n_win, n_ctx] (a view; .contiguous() per chunk below)
    for i in tqdm(range(d_sae), desc="latents", disable=not progress, leave=False):
        if max_act[i] <= 0:
            continue
        col = AT[i].float()  # [n_win, n_ctx]
        nz = col[:, 1:][col[:, 1:] > 0]
        hist[i] = torch.histc(nz, bins=n_bins, min=0.0, max=float(max_act[i]))
        # top: the strongest window maxima of the explanation split, one context per window
        best = top_windows(col[ex_w], k_top)
        pairs = [(int(ex_w[w]), int(p)) for w, p in best.tolist() if col[ex_w[w], p] > 0]
        top_idx[i] = _pad_idx(pairs, k_top)
        top_acts[i] = _context_acts(col, top_idx[i], before, after)
        # quantile bands of the explanation split's non-zero activations
        for split_w, kind in ((ex_w, "explain"), (sc_w, "score")):
            sub = col[split_w]
            w_i, p_i = (sub > 0).nonzero(as_tuple=True)
            if w_i.numel() == 0:
                continue
            vals = sub[w_i, p_i]
            # equal-width intervals of activation from 0 to the latent's max (Anthropic's "subsample intervals")
            which_band = (vals / float(max_act[i]) * n_bands).long().clamp(0, n_bands - 1)
            bands = [(which_band == b).nonzero()[:, 0] for b in range(n_bands)]
            if kind == "explain":
                for b, band in enumerate(bands):
                    if band.numel() == 0:
                        continue
                    pick = band[torch.randperm(band.numel(), generator=g)[:per_band]]
                    q_idx[i, b] = _pad_idx([(int(split_w[w_i[j]]), int(p_i[j])) for j in pick], per_band)
                    q_acts[i, b] = _context_acts(col, q_idx[i, b], before, after)
            else:
                per = [n_score // n_bands + (1 if b < n_score % n_bands else 0) for b in range(n_bands)]
                picked = []
                for b, band in enumerate(bands):
                    picked.append(band[torch.randperm(band.numel(), generator=g)[:per[b]]])
                picked = torch.cat(picked)
                if picked.numel() < n_score:  # bands too thin: fill up with other activating positions
                    rest = torch.ones(vals.numel(), dtype=torch.bool)
                    rest[picked] = False
                    rest = rest.nonzero()[:, 0]
                    picked = torch.cat([picked, rest[torch.randperm(rest.numel(), generator=g)[: n_score - picked.numel()]]])
                pairs = [(int(split_w[w_i[j]]), int(p_i[j])) for j in picked]
                sp_idx[i] = _pad_idx(pairs, n_score)
                sp_acts[i] = _context_acts(col, sp_idx[i], before, after)
        # non-activating: scoring-split positions whose whole context is zero for this latent
        on = (col[sc_w] > 0).float()[:, None]  # [n_sc, 1, n_ctx]
        near = torch.nn.functional.max_pool1d(on, before + after + 1, stride=1, padding=0)[:, 0]
        # near[w, s] covers positions s..s+before+after: centre s+before
        cand_w, cand_s = (near == 0).nonzero(as_tuple=True)
        centre = cand_s + before
        ok = centre >= 1
        cand_w, centre = cand_w[ok], centre[ok]
        if cand_w.numel():
            pick = torch.randperm(cand_w.numel(), generator=g)[:n_score]
            sn_idx[i] = _pad_idx([(int(sc_w[cand_w[j]]), int(centre[j])) for j in pick], n_score)
    stats = FeatureStats(tokens=tokens.clone(), density=density, max_act=max_act, hist_counts=hist, top_idx=top_idx,
                         top_acts=top_acts, quantile_idx=q_idx, quantile_acts=q_acts, score_pos_idx=sp_idx,
                         score_pos_acts=sp_acts, score_neg_idx=sn_idx, before=before, after=after,
                         meta={"n_windows": n_win, "n_ctx": n_ctx, "tokens": n_tok, "seed": seed})
    if hasattr(model, "W_U"):
        lt = top_logit_tokens(sae, model, min(n_logit, model.cfg.d_vocab))
        stats.promoted, stats.promoted_logits = lt["promoted"], lt["promoted_logits"]
        stats.suppressed, stats.suppressed_logits = lt["suppressed"], lt["suppressed_logits"]
    return stats


# -------------------------------------------------------------------------------- prompt view
@torch.no_grad()
def prompt_latents(model, sae, text: str, k: int = 5) -> dict:
    """Which latents fire on ``text``, per token.

    Returns ``tokens`` (ids, ``<|endoftext|>`` first), ``acts`` ``[pos, d_sae]`` (position 0 set to 0),
    ``top`` (per position, up to ``k`` ``(latent, activation)`` pairs, strongest first) and
    ``totals`` (the latents with the largest summed activation over the text, ``[(latent, sum)]``).
    """
    hook = _check_sae_model(model, sae)
    if not isinstance(text, str) or not text:
        raise InputError("text must be a non-empty string")
    toks = model.to_tokens(text)
    if toks.shape[1] > model.cfg.n_ctx:
        raise InputError(f"the text is {toks.shape[1]} tokens, the model takes at most {model.cfg.n_ctx}")
    _, cache = model.run_with_cache(toks, names_filter=lambda n: n == hook)
    acts = sae.encode(cache[hook][0]).float()
    acts[0] = 0
    top = []
    for row in acts:
        v, i = row.topk(min(k, row.numel()))
        top.append([(int(a), float(b)) for b, a in zip(v, i) if b > 0])
    tot_v, tot_i = acts.sum(0).topk(min(k, acts.shape[1]))
    return {"tokens": toks[0].tolist(), "acts": acts, "top": top,
            "totals": [(int(a), float(b)) for b, a in zip(tot_v, tot_i) if b > 0]}


def token_strings(tokenizer, ids) -> list[str]:
    """Display strings of token ``ids`` (newline as ↵, tab as ⇥)."""
    return [tokenizer.decode([int(t)]).replace("\n", "\u21b5").replace("\t", "\u21e5") for t in ids]


# ------------------------------------------------------------------------------ shipped files
_TENSORS = ("tokens", "density", "max_act", "hist_counts", "top_idx", "top_acts", "quantile_idx", "quantile_acts",
            "score_pos_idx", "score_pos_acts", "score_neg_idx", "promoted", "promoted_logits", "suppressed",
            "suppressed_logits")


def save_feature_stats(stats: FeatureStats, path) -> None:
    """Write ``stats`` to a safetensors file (ids and indices as int16 where they fit, activations float16; 0644)."""
    from pathlib import Path

    from safetensors.torch import save_file

    d = {}
    for name in _TENSORS:
        t = getattr(stats, name)
        if t is None:
            continue
        if name in ("tokens", "promoted", "suppressed") or name.endswith("_idx"):
            t = t.to(torch.int16 if (t.numel() == 0 or int(t.abs().max()) < 2 ** 15) else torch.int32)
        elif name == "hist_counts":
            t = t.to(torch.int32)
        elif t.is_floating_point() and name not in ("density", "max_act"):
            t = t.to(torch.float16)
        d[name] = t.contiguous()
    meta = {"before": str(stats.before), "after": str(stats.after),
            **{k: str(v) for k, v in stats.meta.items()}}
    path = Path(path)
    save_file(d, str(path), metadata=meta)
    path.chmod(0o644)


def _read(path) -> FeatureStats:
    from safetensors import safe_open
    from safetensors.torch import load_file

    d = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata() or {})
    before, after = int(meta.pop("before")), int(meta.pop("after"))
    kw = {}
    for name in _TENSORS:
        t = d.get(name)
        if t is not None and (name.endswith("_idx") or name in ("tokens", "promoted", "suppressed", "hist_counts")):
            t = t.long()
        kw[name] = t
    return FeatureStats(**kw, before=before, after=after, meta={k: (int(v) if v.isdigit() else v) for k, v in meta.items()})


def load_feature_stats(sae_name: str) -> FeatureStats:
    """The shipped dashboard statistics of zoo SAE ``sae_name`` (sha256 checked against its card,
    ``card.extra["feature_stats"]``), computed on its model's held-out text."""
    from mi_course.zoo.cards import verify_file
    from mi_course.zoo.saes import sae_card

    card = sae_card(sae_name)
    info = (card.extra or {}).get("feature_stats")
    if not info:
        raise InputError(f"zoo SAE '{sae_name}' ships no feature statistics; compute them with "
                         "methods.feature_stats.compute_feature_stats(model, sae, tokens)")
    path = card.folder / info["file"]
    verify_file(path, info["sha256"], f"feature statistics of '{sae_name}'", info.get("command"))
    if info.get("sae_sha256") and info["sae_sha256"] != card.sha256:
        raise InputError(f"{info['file']} was computed on another checkpoint of '{sae_name}' (the SAE was "
                         f"retrained): rebuild it with `{info.get('command')}`")
    return _read(path)
