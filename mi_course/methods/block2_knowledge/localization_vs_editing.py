"""Does localization inform editing? (Hase, Bansal, Kim & Ghandeharioun 2023).

ROME chose its edit layer from causal tracing: the layer where restoring the subject's hidden
state brings the fact back is the layer to edit. Hase et al. test that choice fact by fact. For
every fact and every layer ``L`` they measure

* the **tracing effect** ``TE[f, L]``: causal tracing with the hidden state after block ``L``
  restored at the **last subject token** (:func:`tracing_effects`), and
* the **edit success** ``ES[f, L]``: ROME applied at layer ``L``'s MLP, scored by the **rewrite
  score** ``(P_post(o*) - P_pre(o*)) / (1 - P_pre(o*))`` on the edit prompt (:func:`rewrite_score`;
  1 = the new object is certain after the edit, 0 = no change),

then regress edit success on the layer alone (one-hot), on the tracing effect alone, and on both
(:func:`regression_table`). Their answer on GPT-J (652 CounterFact facts): R² 0.947 (layer), 0.016
(tracing), 0.948 (both): once the layer is known, tracing adds almost nothing.

The regression pieces are pure functions of plain tensors, so a notebook can rebuild them:

>>> X = one_hot(torch.tensor([0, 1, 1]), 3)          # [3, 3]
>>> r2 = r_squared(X, torch.tensor([0.1, 0.9, 0.8]))  # least squares, then 1 - SS_res / SS_tot
>>> table = regression_table(te, es)                 # te, es: [facts, layers]
>>> table["both"] - table["layer"]                   # what tracing adds once the layer is known

:func:`measure` runs the whole experiment on ``kb-lm`` (the week-10 benchmark writes it to the
model's ``measured_week10_localization.json``).
"""

from __future__ import annotations

import time
from typing import Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods import causal_tracing as ct
from mi_course.methods import edit_evaluation as ev
from mi_course.methods import rome

__all__ = ["tracing_effects", "rewrite_score", "one_hot", "r_squared", "design_matrix", "regression_table",
           "pearson", "shuffled_baseline", "peak_layers", "peak_correlation", "peak_agreement", "per_layer_correlation", "layer_choice",
           "measure_fact", "measure", "MODELS"]

#: The three regressions of the paper's Table 1 (edit success on ...).
MODELS = ("layer", "tracing", "both")


# -- per-fact measurements -------------------------------------------------------------------------
def tracing_effects(result: ct.TraceResult) -> torch.Tensor:
    """``[n_layers]``: the tracing effect of each layer at the last subject token.

    ``(P(restored) - P(corrupted)) / P(clean)``: the share of the clean prediction that restoring the
    hidden state after block ``L`` at the subject's last token brings back (the hidden-state trace,
    ``kind="hidden"``, as Hase et al. use). Needs a trace with every layer computed.
    """
    if not isinstance(result, ct.TraceResult):
        raise InputError(f"result must be a causal_tracing.TraceResult (from causal_tracing.trace), got "
                         f"{type(result).__name__}")
    col = result.scores[:, result.subject[1] - 1]
    if torch.isnan(col).any():
        raise InputError("this trace left some layers out (layers=...); trace every layer for the tracing effects")
    if not result.high > 0:
        raise InputError("the clean probability of the target is 0, so the tracing effect is undefined")
    return (col - result.low) / result.high


def rewrite_score(p_pre: torch.Tensor | float, p_post: torch.Tensor | float) -> torch.Tensor:
    """``(p_post - p_pre) / (1 - p_pre)``: the share of the possible rise in P(new object) the edit achieved.

    p_pre, p_post: P(new object) before / after the edit (tensors of the same shape, or floats).
    1 means the new object is certain after the edit; 0 no change; negative: it became less likely.
    """
    p_pre, p_post = torch.as_tensor(p_pre, dtype=torch.float64), torch.as_tensor(p_post, dtype=torch.float64)
    if p_pre.shape != p_post.shape:
        raise InputError(f"p_pre and p_post must have the same shape, got {tuple(p_pre.shape)} and {tuple(p_post.shape)}")
    if ((p_pre < 0) | (p_pre >= 1) | (p_post < 0) | (p_post > 1)).any():
        raise InputError("p_pre must be in [0, 1) and p_post in [0, 1] (probabilities)")
    return (p_post - p_pre) / (1 - p_pre)


# -- the regression --------------------------------------------------------------------------------
def _matrix(name: str, x, ndim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim != ndim:
        raise InputError(f"{name} must be a {ndim}-d tensor, got shape {tuple(x.shape)}")
    if not torch.isfinite(x.double()).all():
        raise InputError(f"{name} has NaN or infinite entries")
    return x


def one_hot(layers: torch.Tensor, n_layers: int) -> torch.Tensor:
    """``[n, n_layers]`` float64 indicator rows: row ``i`` has a 1 in column ``layers[i]``.

    layers: ``[n]`` integer layer indices in ``0..n_layers-1``.
    """
    layers = _matrix("layers", layers, 1)
    if layers.dtype.is_floating_point or layers.dtype == torch.bool:
        raise InputError(f"layers must be integer indices, got dtype {layers.dtype}")
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise InputError(f"n_layers must be a positive int, got {n_layers!r}")
    if len(layers) and (layers.min() < 0 or layers.max() >= n_layers):
        raise InputError(f"layers must lie in 0..{n_layers - 1}, got {int(layers.min())}..{int(layers.max())}")
    out = torch.zeros(len(layers), n_layers, dtype=torch.float64)
    out[torch.arange(len(layers)), layers.long()] = 1.0
    return out


def r_squared(X: torch.Tensor, y: torch.Tensor, intercept: bool = True) -> float:
    """R² of the least-squares fit of ``y`` on the columns of ``X`` (float64).

    X: ``[n, k]`` predictors; y: ``[n]``. ``intercept``: add a constant column (harmless when ``X``
    already spans it, as a full one-hot does). R² = 1 - SS_res / SS_tot, with SS_tot about y's mean.
    """
    X, y = _matrix("X", X, 2).double(), _matrix("y", y, 1).double()
    if X.shape[0] != y.shape[0]:
        raise InputError(f"X has {X.shape[0]} rows but y has {y.shape[0]} entries")
    if intercept:
        X = torch.cat([torch.ones(len(y), 1, dtype=X.dtype), X], 1)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    if ss_tot == 0:
        raise InputError("y is constant, so R² is undefined")
    beta = torch.linalg.lstsq(X, y[:, None], driver="gelsd").solution
    ss_res = float(((y - (X @ beta)[:, 0]) ** 2).sum())
    return 1.0 - ss_res / ss_tot


def _pair(tracing, success) -> tuple[torch.Tensor, torch.Tensor]:
    te, es = _matrix("tracing", tracing, 2).double(), _matrix("success", success, 2).double()
    if te.shape != es.shape:
        raise InputError(f"tracing and success must both be [facts, layers], got {tuple(te.shape)} and {tuple(es.shape)}")
    return te, es


def design_matrix(tracing: torch.Tensor, model: str) -> torch.Tensor:
    """The predictors of one regression for ``tracing [facts, layers]`` flattened fact-major.

    ``"layer"``: one-hot of the layer without its first column ``[F*L, L - 1]`` (layer 0 is the
    baseline that :func:`r_squared`'s intercept stands for: with all ``L`` columns and an intercept
    the design is rank-deficient, and some least-squares drivers then return a wrong fit);
    ``"tracing"``: the tracing effect ``[F*L, 1]``; ``"both"``: the two side by side ``[F*L, L]``.
    """
    te = _matrix("tracing", tracing, 2).double()
    if model not in MODELS:
        raise InputError(f"model must be one of {MODELS}, got {model!r}")
    F, L = te.shape
    layer = one_hot(torch.arange(L).repeat(F), L)[:, 1:]
    if model == "layer":
        return layer
    if model == "tracing":
        return te.reshape(-1, 1)
    return torch.cat([layer, te.reshape(-1, 1)], 1)


def regression_table(tracing: torch.Tensor, success: torch.Tensor) -> dict[str, float]:
    """``{"layer", "tracing", "both"}`` → R² of edit success on those predictors (Hase et al. Table 1).

    tracing, success: ``[facts, layers]``; every (fact, layer) pair is one observation.
    """
    te, es = _pair(tracing, success)
    y = es.reshape(-1)
    return {m: r_squared(design_matrix(te, m), y) for m in MODELS}


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation of two ``[n]`` vectors (NaN when either is constant)."""
    x, y = _matrix("x", x, 1).double(), _matrix("y", y, 1).double()
    if x.shape != y.shape:
        raise InputError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    x, y = x - x.mean(), y - y.mean()
    den = float(x.norm() * y.norm())
    return float("nan") if den == 0 else float((x * y).sum()) / den


def peak_layers(scores: torch.Tensor) -> torch.Tensor:
    """``[facts]``: each fact's layer of largest score (``scores [facts, layers]``; ties: the first)."""
    return _matrix("scores", scores, 2).argmax(1)


def peak_correlation(tracing: torch.Tensor, success: torch.Tensor) -> float:
    """Pearson correlation over facts of the tracing peak layer and the best edit layer."""
    te, es = _pair(tracing, success)
    return pearson(peak_layers(te).double(), peak_layers(es).double())


def peak_agreement(tracing: torch.Tensor, success: torch.Tensor) -> float:
    """Fraction of facts whose best edit layer is their tracing peak layer."""
    te, es = _pair(tracing, success)
    return float((peak_layers(te) == peak_layers(es)).double().mean())


def per_layer_correlation(tracing: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
    """``[layers]``: at each layer, the correlation over facts of tracing effect and edit success
    (the paper's Fig. 1 is one such scatter: GPT-J layer 6, ρ = -0.13)."""
    te, es = _pair(tracing, success)
    return torch.tensor([pearson(te[:, L], es[:, L]) for L in range(te.shape[1])])


def layer_choice(tracing: torch.Tensor, success: torch.Tensor) -> dict[str, float]:
    """Mean edit success under three ways of choosing each fact's edit layer.

    ``fixed``: the one layer best on average (what the layer-only regression recommends);
    ``tracing``: each fact's tracing peak (what "localize, then edit" recommends);
    ``oracle``: each fact's best layer (an upper bound). Also ``fixed_layer``.
    """
    te, es = _pair(tracing, success)
    F = es.shape[0]
    fixed = int(es.mean(0).argmax())
    rows = torch.arange(F)
    return {"fixed": float(es[:, fixed].mean()), "tracing": float(es[rows, peak_layers(te)].mean()),
            "oracle": float(es.max(1).values.mean()), "fixed_layer": fixed}


def shuffled_baseline(tracing: torch.Tensor, success: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """The R² table with each layer's tracing effects shuffled across facts (a baseline).

    What any extra per-(fact, layer) number adds to the layer-only fit by chance: "both" minus
    "layer" here is the increment a meaningless predictor with the same per-layer distribution earns.
    """
    te, es = _pair(tracing, success)
    g = torch.Generator().manual_seed(seed)
    shuffled = torch.stack([te[torch.randperm(te.shape[0], generator=g), L] for L in range(te.shape[1])], 1)
    return regression_table(shuffled, es)


# -- the experiment on a model ----------------------------------------------------------------------
def measure_fact(model, kb, fact: dict, target_new: str, layers: Sequence[int] | None = None,
                 n_samples: int = 10, noise: float | None = None, seed: int = 0,
                 C: dict[int, torch.Tensor] | None = None) -> dict:
    """One fact's row: tracing effects and ROME edit scores at each layer.

    fact: ``{"prompt" (template), "subject", "target", "relation"}`` (as :func:`edit_evaluation.known_facts`).
    target_new: the counterfactual object. Returns ``{"tracing": [L], "rewrite": [L], "paraphrase": [L],
    "neighbourhood": [L], "p_true", "p_new"}``: rewrite score on the edit prompt, mean rewrite score on
    the relation's other templates, and the fraction of neighbour prompts still preferring the true
    object (ROME's NS).
    """
    layers = list(range(model.cfg.n_layers)) if layers is None else [ct.check_layer(model, int(x)) for x in layers]
    prompt = fact["prompt"].format(fact["subject"])
    res = ct.trace(model, prompt, fact["subject"], fact["target"], kind="hidden", n_samples=n_samples,
                   noise=noise, seed=seed)
    te = tracing_effects(res)[layers]
    case = ev.kb_case(model, kb, fact["subject"], fact["relation"], target_new, template=fact["prompt"])
    ids = [case.target_new, case.target_true]
    pre_e = ev.next_token_probs(model, case.rewrite_prompts, ids)
    pre_p = ev.next_token_probs(model, case.paraphrase_prompts, ids)
    C = C if C is not None else rome.second_moments(model, layers=layers)
    out = {"tracing": [float(x) for x in te], "rewrite": [], "paraphrase": [], "neighbourhood": [],
           "p_true": float(pre_e[0, 1]), "p_new": float(pre_e[0, 0])}
    for L in layers:
        e = rome.rome_edit(model, case.request, L, C=C[L])
        post_e = ev.next_token_probs(model, case.rewrite_prompts, ids, e)
        out["rewrite"].append(float(rewrite_score(pre_e[0, 0], post_e[0, 0])))
        if case.paraphrase_prompts:
            post_p = ev.next_token_probs(model, case.paraphrase_prompts, ids, e)
            out["paraphrase"].append(float(rewrite_score(pre_p[:, 0], post_p[:, 0]).mean()))
        else:
            out["paraphrase"].append(float("nan"))
        if case.neighborhood_prompts:
            post_n = ev.next_token_probs(model, case.neighborhood_prompts, ids, e)
            out["neighbourhood"].append(float((post_n[:, 1] > post_n[:, 0]).double().mean()))
        else:
            out["neighbourhood"].append(float("nan"))
    return out


def counterfactual_targets(kb, facts: Sequence[dict], seed: int = 0) -> list[str]:
    """A seeded new object for each fact: a random other candidate object of its relation."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for f in facts:
        others = [o for o in kb.objects(f["relation"]) if o != f["target"]]
        out.append(others[int(torch.randint(len(others), (1,), generator=g))])
    return out


def measure(model, kb, n_facts: int = 80, n_samples: int = 10, seed: int = 0, progress: bool = True,
            facts: Sequence[dict] | None = None) -> dict:
    """The whole experiment: ``n_facts`` seeded known facts × every layer.

    Noise: 3x the std of the subjects' token embeddings (as week 08). Returns per-fact arrays
    (``tracing``, ``rewrite``, ``paraphrase``, ``neighbourhood``: lists of ``[layers]``), the facts and
    their new objects, the R² table of rewrite score (and of paraphrase score), correlations, the
    layer-choice comparison, settings and seconds.
    """
    if facts is None:
        if isinstance(n_facts, bool) or not isinstance(n_facts, int) or n_facts < 2:
            raise InputError(f"n_facts must be an int >= 2, got {n_facts!r}")
        facts = ev.known_facts(model, kb, n_facts, seed)
    facts = list(facts)
    news = counterfactual_targets(kb, facts, seed + 1)
    noise = ct.NOISE_FACTOR * ct.embedding_std(model, kb.subjects)
    t0 = time.time()
    C = rome.second_moments(model)
    rows = [measure_fact(model, kb, f, new, n_samples=n_samples, noise=noise, seed=seed, C=C)
            for f, new in tqdm(list(zip(facts, news)), desc="trace + ROME at every layer", disable=not progress)]
    arrays = {k: [[round(x, 5) for x in r[k]] for r in rows] for k in ("tracing", "rewrite", "paraphrase", "neighbourhood")}
    te, rw = torch.tensor(arrays["tracing"]), torch.tensor(arrays["rewrite"])
    out = {
        "paper": "Hase et al. 2023, Does Localization Inform Editing?",
        "settings": {"n_facts": len(facts), "n_layers": model.cfg.n_layers, "n_samples": n_samples,
                     "noise": round(noise, 4), "seed": seed, "trace": "hidden state after block L, last subject token",
                     "edit": "ROME at layer L (RomeHparams defaults), one fact at a time from the original weights",
                     "success": "rewrite score (P_post(new) - P_pre(new)) / (1 - P_pre(new)) on the edit prompt"},
        "facts": [{**f, "target_new": n} for f, n in zip(facts, news)],
        **arrays,
        "r2": {k: round(v, 4) for k, v in regression_table(te, rw).items()},
        "r2_paraphrase": {k: round(v, 4) for k, v in regression_table(te, torch.tensor(arrays["paraphrase"])).items()},
        "r2_shuffled_tracing": {k: round(v, 4) for k, v in shuffled_baseline(te, rw, seed).items()},
        "peak_correlation": round(peak_correlation(te, rw), 4),
        "peak_agreement": round(peak_agreement(te, rw), 4),
        "tracing_peak_counts": torch.bincount(peak_layers(te), minlength=te.shape[1]).tolist(),
        "edit_peak_counts": torch.bincount(peak_layers(rw), minlength=te.shape[1]).tolist(),
        "per_layer_correlation": [round(float(x), 4) for x in per_layer_correlation(te, rw)],
        "mean_tracing": [round(float(x), 4) for x in te.mean(0)],
        "mean_rewrite": [round(float(x), 4) for x in rw.mean(0)],
        "layer_choice": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in layer_choice(te, rw).items()},
        "seconds": round(time.time() - t0),
    }
    return out
