"""Checkers for week 10: does localization inform editing? (Hase et al. 2023) on ``kb-lm``.

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.localization_vs_editing`) on fixed and random cases, and recognises the
common mistakes listed with each exercise. The arrays are ``[facts, layers]``: ``tracing`` (the
tracing effect of the hidden state after block ``L`` at the last subject token) and ``success``
(ROME's rewrite score when editing layer ``L``).
"""

from __future__ import annotations

import torch

from mi_course.checking import core
from mi_course.checking.core import Case, Exercise, Mistake, yours_or_reference  # noqa: F401
from mi_course.checking import week10_bias
from mi_course.checking.week10_bias import (MASKS, MEDIATION, METRIC, SWAP, check_bias_metric,  # noqa: F401
                                            check_mediation_table, check_output_weight_masks, check_swap_gender)
from mi_course.methods import localization_vs_editing as lve


def _visible(ex: Exercise, fn, seed) -> bool:
    """The visible check (``seed=None``) returns True/False and never raises; a hidden test raises."""
    __tracebackhide__ = True  # noqa: F841
    return core.check(ex, fn, seed)


def _arrays(g: torch.Generator, F: int, L: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic ``(tracing, success)`` pair ``[F, L]`` shaped like the real sweep: both fall with
    depth, success has a per-layer level plus noise, tracing a per-fact profile."""
    depth = torch.linspace(0, 1, L)
    level = (1 - depth) ** 2 + 0.05 * torch.rand(L, generator=g)
    tracing = (torch.rand(F, 1, generator=g) * (1 - depth) + 0.15 * torch.rand(F, L, generator=g)).double()
    success = (level + 0.3 * tracing.float() * torch.rand(1, generator=g)
               + 0.1 * torch.randn(F, L, generator=g)).double()
    return tracing, success


# -- 1. the rewrite score -------------------------------------------------------------------------
def rewrite_score(p_pre: torch.Tensor, p_post: torch.Tensor) -> torch.Tensor:
    """``(p_post - p_pre) / (1 - p_pre)`` elementwise: the share of the possible rise in P(new) achieved."""
    return (p_post - p_pre) / (1 - p_pre)


def _rewrite_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (5, 12):
        p_pre = torch.rand(n, generator=g) * 0.6
        p_post = torch.rand(n, generator=g)
        out.append(Case(f"seed {seed}, {n} edits", {"p_pre": p_pre.double(), "p_post": p_post.double()}))
    return out


REWRITE = Exercise(
    id="w10_rewrite_score", title="rewrite_score", reference=rewrite_score, cases=_rewrite_cases,
    mistakes=[
        Mistake("raw difference", lambda p_pre, p_post: p_post - p_pre,
                "divide the rise by the most it could have risen, 1 - p_pre, so facts that start near 0 and "
                "near 1 are comparable."),
        Mistake("relative to p_pre", lambda p_pre, p_post: (p_post - p_pre) / p_pre,
                "the denominator is the room left above p_pre (1 - p_pre), not p_pre itself."),
        Mistake("post only", lambda p_pre, p_post: p_post,
                "the score measures the change the edit made: subtract the probability before the edit."),
    ],
    hint="The score is the rise the edit achieved, as a share of the most it could have risen (from p_pre up to 1). "
         "Self-check: p_post = 1 gives 1, and p_post = p_pre gives 0.",
)


def check_rewrite_score(fn, seed: int | None = None):
    """Check ``rewrite_score(p_pre, p_post) -> tensor`` (same shape as the inputs)."""
    return _visible(REWRITE, fn, seed)


# -- 2. the tracing effect of each layer ----------------------------------------------------------
def tracing_effect(scores: torch.Tensor, low: float, high: float, subject: tuple[int, int]) -> torch.Tensor:
    """``[layers]``: ``(scores[:, last subject token] - low) / high``.

    scores: ``[layers, pos]`` P(target) with the hidden state at (layer, pos) restored; low / high: P(target)
    of the corrupted / clean run; subject: the subject's token range ``(start, end)`` (end exclusive).
    """
    return (scores[:, subject[1] - 1] - low) / high


def _effect_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for L, P in ((4, 9), (6, 12)):
        start = int(torch.randint(1, 3, (1,), generator=g))
        end = start + int(torch.randint(2, 4, (1,), generator=g))
        low = float(torch.rand(1, generator=g)) * 0.2
        high = 0.5 + float(torch.rand(1, generator=g)) * 0.5
        scores = low + torch.rand(L, P, generator=g) * (high - low)
        out.append(Case(f"seed {seed}, {L} layers, {P} tokens, subject {start}:{end}",
                        {"scores": scores, "low": low, "high": high, "subject": (start, end)}))
    return out


EFFECT = Exercise(
    id="w10_tracing_effect", title="tracing_effect", reference=tracing_effect, cases=_effect_cases,
    mistakes=[
        Mistake("last token", lambda scores, low, high, subject: (scores[:, -1] - low) / high,
                "Hase et al. (like ROME's choice of layer) read the trace at the LAST SUBJECT token, not the prompt's "
                "last token."),
        Mistake("one past the subject", lambda scores, low, high, subject: (scores[:, subject[1]] - low) / high,
                "`end` is exclusive: the last subject token is at position end - 1."),
        Mistake("first subject token", lambda scores, low, high, subject: (scores[:, subject[0]] - low) / high,
                "use the subject's last token (end - 1), not its first."),
        Mistake("not normalised", lambda scores, low, high, subject: scores[:, subject[1] - 1] - low,
                "divide by the clean probability `high`, so the effect is the share of the prediction restored."),
        Mistake("corrupted not subtracted", lambda scores, low, high, subject: scores[:, subject[1] - 1] / high,
                "the effect is what restoring ADDS to the corrupted run: subtract `low` first."),
    ],
    hint="Use one column of `scores`, the subject's last token (`end` is exclusive), and apply the goal's formula to "
         "it: the share of the clean probability that restoring recovers above the corrupted run. The result is "
         "[layers].",
)


def check_tracing_effect(fn, seed: int | None = None):
    """Check ``tracing_effect(scores, low, high, subject) -> [layers]``."""
    return _visible(EFFECT, fn, seed)


# -- 3. one-hot layers ---------------------------------------------------------------------------
def one_hot(layers: torch.Tensor, n_layers: int) -> torch.Tensor:
    """``[n, n_layers]`` float64: row ``i`` has a 1 in column ``layers[i]``."""
    return lve.one_hot(layers, n_layers)


def _onehot_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, L in ((7, 4), (15, 6)):
        layers = torch.randint(0, L - 1, (n,), generator=g)  # the top layer never occurs
        out.append(Case(f"seed {seed}, {n} rows, n_layers={L}", {"layers": layers, "n_layers": L}))
    return out


ONEHOT = Exercise(
    id="w10_one_hot", title="one_hot", reference=one_hot, cases=_onehot_cases,
    mistakes=[
        Mistake("width from the data", lambda layers, n_layers: lve.one_hot(layers, int(layers.max()) + 1),
                "the width is `n_layers`, even when the highest layer does not occur in `layers`."),
        Mistake("transposed", lambda layers, n_layers: lve.one_hot(layers, n_layers).T,
                "one ROW per observation: the result is [n, n_layers]."),
        Mistake("layer number", lambda layers, n_layers: lve.one_hot(layers, n_layers) * layers[:, None].double(),
                "put a 1 in the layer's column, not the layer's number (layer 0 would be all zeros)."),
    ],
    hint="Start from float64 zeros of shape [n, n_layers] and set one entry per row; indexing with a row-index and a "
         "column-index tensor sets them all at once. Self-check: every row sums to 1.",
)


def check_one_hot(fn, seed: int | None = None):
    """Check ``one_hot(layers, n_layers) -> [n, n_layers]``."""
    return _visible(ONEHOT, fn, seed)


# -- 4. R² of a least-squares fit -----------------------------------------------------------------
def r_squared(X: torch.Tensor, y: torch.Tensor) -> float:
    """R² of the least-squares fit of ``y [n]`` on ``X [n, k]`` plus an intercept column."""
    return lve.r_squared(X, y, intercept=True)


def _r2_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, k in ((30, 1), (50, 3)):
        X = torch.randn(n, k, generator=g, dtype=torch.float64)
        y = 2.0 + X @ torch.randn(k, generator=g, dtype=torch.float64) + 0.8 * torch.randn(n, generator=g, dtype=torch.float64)
        out.append(Case(f"seed {seed}, n={n}, k={k}", {"X": X, "y": y}))
    return out


def _uncentred(X, y):
    beta = torch.linalg.lstsq(X, y[:, None]).solution
    return 1 - float(((y - (X @ beta)[:, 0]) ** 2).sum()) / float((y ** 2).sum())


def _no_minus(X, y):
    return 1 - lve.r_squared(X, y)


R2 = Exercise(
    id="w10_r_squared", title="r_squared", reference=r_squared, cases=_r2_cases,
    mistakes=[
        Mistake("no intercept", lambda X, y: lve.r_squared(X, y, intercept=False),
                "add a column of ones to X: without an intercept the fit is forced through the origin."),
        Mistake("uncentred SS_tot", _uncentred,
                "SS_tot is the sum of squares of y about its MEAN (and the fit needs an intercept column)."),
        Mistake("SS_res / SS_tot", _no_minus, "R² is 1 - SS_res / SS_tot: the share of variance explained."),
    ],
    hint="Fit with an intercept column added to X (look up `torch.linalg.lstsq`, in float64); R² compares the "
         "residual sum of squares with the spread of y about its mean. Self-check: a perfect fit gives 1.",
)


def check_r_squared(fn, seed: int | None = None):
    """Check ``r_squared(X, y) -> float``."""
    return _visible(R2, fn, seed)


# -- 5. the regression table ----------------------------------------------------------------------
def regression_table(tracing: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
    """``[3]``: R² of edit success on (layer one-hot, tracing effect, both), every (fact, layer) one row.

    tracing, success: ``[facts, layers]``. Hase et al.'s Table 1 for one editing method.
    """
    t = lve.regression_table(tracing, success)
    return torch.tensor([t[m] for m in lve.MODELS], dtype=torch.float64)


def _table_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for F, L in ((12, 4), (20, 6)):
        tracing, success = _arrays(g, F, L)
        out.append(Case(f"seed {seed}, {F} facts x {L} layers", {"tracing": tracing, "success": success}))
    return out


def _table_wrong(layer_major=False, numeric_layer=False, te_no_intercept=False):
    def fn(tracing, success):
        F, L = tracing.shape
        y = success.reshape(-1)
        te = tracing.reshape(-1, 1)
        if layer_major:
            layers = torch.arange(L).repeat_interleave(F)
        else:
            layers = torch.arange(L).repeat(F)
        layer_X = layers[:, None].double() if numeric_layer else lve.one_hot(layers, L)[:, 1:]
        r = [lve.r_squared(layer_X, y), lve.r_squared(te, y, intercept=not te_no_intercept),
             lve.r_squared(torch.cat([layer_X, te], 1), y)]
        return torch.tensor(r, dtype=torch.float64)
    return fn


TABLE = Exercise(
    id="w10_regression_table", title="regression_table", reference=regression_table, cases=_table_cases,
    mistakes=[
        Mistake("layers misaligned", _table_wrong(layer_major=True),
                "flatten `success` and `tracing` with reshape(-1) (fact-major: fact 0's layers first), and build the "
                "layer index the same way: torch.arange(L).repeat(F), not repeat_interleave."),
        Mistake("layer as a number", _table_wrong(numeric_layer=True),
                "encode the layer as one-hot columns (one per layer), not one numeric column: edit success need not "
                "change linearly with depth."),
        Mistake("tracing fit without intercept", _table_wrong(te_no_intercept=True),
                "the tracing-only regression needs an intercept too (a column of ones)."),
    ],
    hint="One row per (fact, layer): flatten both tables in the same fact-major order and make each row's layer index "
         "follow that order. The layer enters as one-hot columns with one left out (the intercept covers it); return "
         "the three R² in the order [layer, tracing, both].",
)


def check_regression_table(fn, seed: int | None = None):
    """Check ``regression_table(tracing, success) -> tensor [R² layer, R² tracing, R² both]``."""
    return _visible(TABLE, fn, seed)


# -- 6. per-layer correlation -------------------------------------------------------------------------
def per_layer_correlation(tracing: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
    """``[layers]``: Pearson correlation over facts of tracing effect and edit success at each layer."""
    return lve.per_layer_correlation(tracing, success)


def _corr_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for F, L in ((15, 4), (25, 6)):
        tracing, success = _arrays(g, F, L)
        out.append(Case(f"seed {seed}, {F} facts x {L} layers", {"tracing": tracing, "success": success}))
    return out


def _corr_over_layers(tracing, success):
    return torch.tensor([lve.pearson(tracing[f], success[f]) for f in range(tracing.shape[0])])


def _uncentred_corr(tracing, success):
    return (tracing * success).sum(0) / (tracing.norm(dim=0) * success.norm(dim=0))


CORR = Exercise(
    id="w10_per_layer_correlation", title="per_layer_correlation", reference=per_layer_correlation,
    cases=_corr_cases,
    mistakes=[
        Mistake("over layers", _corr_over_layers,
                "correlate ACROSS FACTS at each layer (column by column), giving one number per layer."),
        Mistake("not centred", _uncentred_corr,
                "Pearson's correlation subtracts each column's mean before the cosine."),
        Mistake("covariance", lambda tracing, success: ((tracing - tracing.mean(0)) * (success - success.mean(0))).mean(0),
                "divide the covariance by both standard deviations (a correlation lies in [-1, 1])."),
    ],
    hint="Work column by column: at each layer, the Pearson correlation across facts of the tracing effect and the "
         "edit success (centred, then normalised). Self-check: one value per layer, each in [-1, 1].",
)


def check_per_layer_correlation(fn, seed: int | None = None):
    """Check ``per_layer_correlation(tracing, success) -> [layers]``."""
    return _visible(CORR, fn, seed)


# -- 7. peak layers ------------------------------------------------------------------------------
def peak_correlation(tracing: torch.Tensor, success: torch.Tensor) -> float:
    """Pearson correlation over facts of each fact's tracing peak layer and its best edit layer."""
    return lve.peak_correlation(tracing, success)


def _peak_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for F, L in ((20, 4), (30, 6)):
        tracing = torch.rand(F, L, generator=g, dtype=torch.float64)
        success = 0.5 * tracing + torch.rand(F, L, generator=g, dtype=torch.float64)
        out.append(Case(f"seed {seed}, {F} facts x {L} layers", {"tracing": tracing, "success": success}))
    return out


PEAK = Exercise(
    id="w10_peak_correlation", title="peak_correlation", reference=peak_correlation, cases=_peak_cases,
    mistakes=[
        Mistake("peak values", lambda tracing, success: lve.pearson(tracing.max(1).values, success.max(1).values),
                "correlate the peak LAYERS (argmax over layers), not the peak values."),
        Mistake("peaks over facts", lambda tracing, success: lve.pearson(tracing.argmax(0).double(), success.argmax(0).double()),
                "each fact has a peak layer: take the argmax over layers (dim=1), one per fact."),
    ],
    hint="Correlate peak LAYERS, not peak values: one peak layer per fact from each table (over the layer dimension), "
         "converted to float before Pearson's correlation over facts.",
)


def check_peak_correlation(fn, seed: int | None = None):
    """Check ``peak_correlation(tracing, success) -> float``."""
    return _visible(PEAK, fn, seed)


# -- 8. choosing the edit layer ---------------------------------------------------------------------
def layer_choice(tracing: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
    """``[3]``: mean edit success when each fact is edited at (the one best layer on average, its own
    tracing peak, its own best layer)."""
    c = lve.layer_choice(tracing, success)
    return torch.tensor([c["fixed"], c["tracing"], c["oracle"]], dtype=torch.float64)


def _choice_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for F, L in ((15, 4), (25, 6)):
        tracing = torch.rand(F, L, generator=g, dtype=torch.float64)
        success = torch.rand(L, generator=g, dtype=torch.float64) + 0.3 * tracing + 0.4 * torch.rand(F, L, generator=g, dtype=torch.float64)
        out.append(Case(f"seed {seed}, {F} facts x {L} layers", {"tracing": tracing, "success": success}))
    return out


def _choice_wrong(fixed_from_tracing=False, tracing_one_layer=False, oracle_mean_first=False):
    def fn(tracing, success):
        F = success.shape[0]
        rows = torch.arange(F)
        fixed_layer = int(tracing.mean(0).argmax()) if fixed_from_tracing else int(success.mean(0).argmax())
        fixed = success[:, fixed_layer].mean()
        if tracing_one_layer:
            tr = success[:, int(tracing.mean(0).argmax())].mean()
        else:
            tr = success[rows, tracing.argmax(1)].mean()
        oracle = success.mean(0).max() if oracle_mean_first else success.max(1).values.mean()
        return torch.tensor([float(fixed), float(tr), float(oracle)], dtype=torch.float64)
    return fn


CHOICE = Exercise(
    id="w10_layer_choice", title="layer_choice", reference=layer_choice, cases=_choice_cases,
    mistakes=[
        Mistake("fixed layer from tracing", _choice_wrong(fixed_from_tracing=True),
                "the fixed layer is the one with the best MEAN EDIT SUCCESS over facts (success.mean(0).argmax()), "
                "chosen without looking at tracing."),
        Mistake("one tracing layer for all", _choice_wrong(tracing_one_layer=True),
                "'localize, then edit' picks a layer PER FACT: each fact's own tracing peak (tracing.argmax(1))."),
        Mistake("oracle of the mean", _choice_wrong(oracle_mean_first=True),
                "the oracle takes each fact's best layer (success.max(1)), then averages over facts."),
    ],
    hint="Each policy picks one layer per fact and averages `success` at those (fact, layer) pairs; only how the "
         "layer is picked differs. Self-check: neither fixed nor tracing can beat the oracle.",
)


def check_layer_choice(fn, seed: int | None = None):
    """Check ``layer_choice(tracing, success) -> tensor [fixed, tracing peak, oracle]``."""
    return _visible(CHOICE, fn, seed)


#: The week's exercises: Hase et al. (this module) and the bias components (``week10_bias``).
EXERCISES = {**{ex.id: ex for ex in (REWRITE, EFFECT, ONEHOT, R2, TABLE, CORR, PEAK, CHOICE)}, **week10_bias.EXERCISES}
#: Stars for the notebook's headings: the week's floor (>= 3 ★★, >= 2 ★★★) is tested.
STARS = {"w10_rewrite_score": 1, "w10_tracing_effect": 2, "w10_one_hot": 1, "w10_r_squared": 2,
         "w10_regression_table": 3, "w10_per_layer_correlation": 2, "w10_peak_correlation": 1, "w10_layer_choice": 3,
         "w10b_bias_metric": 1, "w10b_mediation": 3, "w10b_weight_masks": 2, "w10b_swap_gender": 2}
