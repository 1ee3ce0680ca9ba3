"""How good is a sparse autoencoder? Reconstruction, sparsity, faithfulness, and ground truth.

=========================  ====================================================================
metric                     definition
=========================  ====================================================================
L0                         mean number of active latents per token
MSE                        mean over tokens of ||x - x_hat||^2
explained variance         1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2
shrinkage                  mean ||x_hat|| / ||x|| (below 1 for L1 SAEs)
dead / dense latents       never firing over the evaluation tokens / firing on > ``dense`` of them
CE loss recovered          (L_zero - L_spliced) / (L_zero - L_clean): the SAE spliced into the
                           model against zero-ablating that activation (Bricken et al. 2023)
KL                         mean KL(clean || spliced) of next-token distributions; KL score likewise
MMCS                       mean over ground-truth features of the best cosine with any decoder
                           direction (Sharkey et al. 2022)
matched cosine (MCC)       the same with a one-to-one (Hungarian) matching (SynthSAEBench)
precision / recall         per matched latent: P(feature on | latent on), P(latent on | feature on)
=========================  ====================================================================

Always beside a baseline: :func:`random_directions` (chance level of MMCS and matched cosine) and
:func:`mi_course.methods.sae.random_decoder_sae` (an SAE whose decoder is random and whose encoder
alone is trained).
"""

from __future__ import annotations

import numpy as np
import torch

from mi_course.errors import InputError

__all__ = ["l0", "mse", "explained_variance", "shrinkage", "firing_frequency", "dead_and_dense",
           "reconstruction_metrics", "spliced_losses", "mmcs", "linear_sum_assignment", "matched_cosine",
           "latent_precision_recall", "random_directions", "ground_truth_report"]


def _2d(name: str, t: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim < 2:
        raise InputError(f"{name} must be [..., d], got shape {list(t.shape)}")
    return t.reshape(-1, t.shape[-1]).float()


def l0(latents: torch.Tensor) -> float:
    """Mean number of non-zero latents per token. ``latents`` ``[..., d_sae]``."""
    return float((_2d("latents", latents) != 0).float().sum(-1).mean())


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean over tokens of the squared error summed over dimensions. Both ``[..., d]``."""
    x, x_hat = _2d("x", x), _2d("x_hat", x_hat)
    if x.shape != x_hat.shape:
        raise InputError(f"x {list(x.shape)} and x_hat {list(x_hat.shape)} differ in shape")
    return float((x - x_hat).pow(2).sum(-1).mean())


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2`` over tokens (FVU = 1 - this). Both ``[..., d]``."""
    x, x_hat = _2d("x", x), _2d("x_hat", x_hat)
    if x.shape != x_hat.shape:
        raise InputError(f"x {list(x.shape)} and x_hat {list(x_hat.shape)} differ in shape")
    total = (x - x.mean(0)).pow(2).sum()
    return float(1 - (x - x_hat).pow(2).sum() / total.clamp_min(1e-12))


def shrinkage(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean ``||x_hat|| / ||x||`` over tokens with ``x != 0`` (1 = no shrinkage). Both ``[..., d]``."""
    x, x_hat = _2d("x", x), _2d("x_hat", x_hat)
    nx = x.norm(dim=-1)
    keep = nx > 1e-6 * nx.max().clamp_min(1e-12)
    return float((x_hat.norm(dim=-1)[keep] / nx[keep]).mean()) if keep.any() else float("nan")


def firing_frequency(latents: torch.Tensor) -> torch.Tensor:
    """``[d_sae]`` fraction of tokens on which each latent is non-zero."""
    return (_2d("latents", latents) != 0).float().mean(0)


def dead_and_dense(latents: torch.Tensor, dense: float = 0.1) -> dict[str, int]:
    """Latents that never fire on these tokens, and those that fire on more than ``dense`` of them."""
    freq = firing_frequency(latents)
    return {"dead": int((freq == 0).sum()), "dense": int((freq > dense).sum()), "n_latents": int(freq.numel())}


@torch.no_grad()
def reconstruction_metrics(sae, x: torch.Tensor, y: torch.Tensor | None = None, dense: float = 0.1) -> dict:
    """L0, MSE, explained variance, shrinkage, dead and dense latents of ``sae`` on inputs ``x`` ``[n, d_in]``.

    For a transcoder pass the targets ``y`` ``[n, d_out]`` (the MLP's outputs).
    """
    f = sae.encode(x)
    x_hat = sae.decode(f)
    target = x if y is None else y
    return {"l0": l0(f), "mse": mse(target, x_hat), "explained_variance": explained_variance(target, x_hat),
            "shrinkage": shrinkage(target, x_hat), **dead_and_dense(f, dense)}


# --------------------------------------------------------------------------------- faithfulness
@torch.no_grad()
def spliced_losses(model, sae, tokens: torch.Tensor, hook_name: str | None = None,
                   output_hook_name: str | None = None, batch: int = 8) -> dict[str, float]:
    """Next-token loss of ``model`` on ``tokens`` ``[n, pos]``: clean, with the SAE spliced in, and zero-ablated.

    An SAE replaces the activation at ``hook_name`` (default ``sae.hook_name``) by its
    reconstruction; a transcoder replaces the activation at ``output_hook_name`` by its
    prediction from ``hook_name``. Returns ``clean``, ``spliced``, ``zero_ablated`` losses,
    ``ce_loss_recovered`` = (zero - spliced) / (zero - clean), ``kl_spliced`` and ``kl_zero``
    (mean KL(clean || other) per token) and ``kl_score`` = 1 - kl_spliced / kl_zero.
    The first position (``<|endoftext|>``) is not replaced (as in training).
    """
    hook_name = hook_name or getattr(sae, "hook_name", None)
    if sae.kind == "transcoder":
        output_hook_name = output_hook_name or getattr(sae, "output_hook_name", None)
        if not output_hook_name:
            raise InputError("a transcoder needs output_hook_name (the activation it replaces)")
    if not hook_name:
        raise InputError("hook_name is needed (the activation the SAE reads)")
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        raise InputError(f"tokens must be [n, pos], got {getattr(tokens, 'shape', type(tokens))}")
    target = output_hook_name if sae.kind == "transcoder" else hook_name
    sums = {"clean": 0.0, "spliced": 0.0, "zero_ablated": 0.0, "kl_spliced": 0.0, "kl_zero": 0.0}
    count = 0
    for i in range(0, tokens.shape[0], batch):
        t = tokens[i : i + batch]
        stash = {}

        def read_input(act, hook):
            stash["x"] = act
            return act

        def splice(act, hook):
            src = stash["x"] if sae.kind == "transcoder" else act
            new = sae.decode(sae.encode(src[:, 1:])).to(act.dtype)
            return torch.cat([act[:, :1], new], 1)

        def zero(act, hook):
            return torch.cat([act[:, :1], torch.zeros_like(act[:, 1:])], 1)

        clean = model(t).log_softmax(-1)
        hooks = ([(hook_name, read_input)] if sae.kind == "transcoder" else []) + [(target, splice)]
        spliced = model.run_with_hooks(t, fwd_hooks=hooks).log_softmax(-1)
        zeroed = model.run_with_hooks(t, fwd_hooks=[(target, zero)]).log_softmax(-1)
        nxt = t[:, 1:, None]
        for name, lp in (("clean", clean), ("spliced", spliced), ("zero_ablated", zeroed)):
            sums[name] += float(-lp[:, :-1].gather(-1, nxt).sum())
        p = clean[:, :-1].exp()
        sums["kl_spliced"] += float((p * (clean[:, :-1] - spliced[:, :-1])).sum())
        sums["kl_zero"] += float((p * (clean[:, :-1] - zeroed[:, :-1])).sum())
        count += nxt.numel()
    out = {k: v / count for k, v in sums.items()}
    denom = out["zero_ablated"] - out["clean"]
    out["ce_loss_recovered"] = (out["zero_ablated"] - out["spliced"]) / denom if abs(denom) > 1e-9 else float("nan")
    out["kl_score"] = 1 - out["kl_spliced"] / out["kl_zero"] if out["kl_zero"] > 1e-12 else float("nan")
    return out


# --------------------------------------------------------------------------------- ground truth
def _unit(name: str, d: torch.Tensor) -> torch.Tensor:
    d = _2d(name, d)
    return d / d.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def cosine_matrix(decoder: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``[n_true, d_sae]`` cosines between ground-truth features ``[n_true, d]`` and decoder rows ``[d_sae, d]``."""
    dec, tru = _unit("decoder", decoder), _unit("truth", truth)
    if dec.shape[-1] != tru.shape[-1]:
        raise InputError(f"decoder rows have dimension {dec.shape[-1]}, ground-truth features {tru.shape[-1]}")
    return tru @ dec.T


def mmcs(decoder: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean max cosine similarity: for each ground-truth feature, its best decoder direction's cosine, averaged.

    ``decoder`` ``[d_sae, d]`` (rows: one latent's direction), ``truth`` ``[n_true, d]``.
    """
    return float(cosine_matrix(decoder, truth).max(-1).values.mean())


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a minimum-cost one-to-one assignment (Hungarian algorithm, O(n^2 m)).

    ``cost`` ``[n, m]`` with ``n <= m`` (transposed otherwise). Same answer as scipy's function.
    """
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2:
        raise InputError(f"cost must be 2-D, got shape {cost.shape}")
    if cost.shape[0] > cost.shape[1]:
        c, r = linear_sum_assignment(cost.T)
        order = np.argsort(r)
        return r[order], c[order]
    n, m = cost.shape
    INF = float("inf")
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=int)  # p[j]: row (1-based) assigned to column j
    way = np.zeros(m + 1, dtype=int)
    a = np.zeros((n + 1, m + 1))
    a[1:, 1:] = cost
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, INF)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = a[i0, 1:] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], INF)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    cols = np.nonzero(p[1:])[0]
    rows = p[1:][cols] - 1
    order = np.argsort(rows)
    return rows[order], cols[order]


def matched_cosine(decoder: torch.Tensor, truth: torch.Tensor) -> tuple[float, torch.Tensor]:
    """One-to-one matching of ground-truth features to decoder directions maximising total |cosine|.

    Returns ``(mean |cosine| over matched pairs, match [n_true] latent index per feature, -1 if
    none)``; with fewer latents than features, unmatched features count as 0.
    """
    cos = cosine_matrix(decoder, truth).abs()
    rows, cols = linear_sum_assignment(-cos.numpy())
    match = torch.full((cos.shape[0],), -1, dtype=torch.long)
    match[torch.as_tensor(rows)] = torch.as_tensor(cols)
    total = float(cos[torch.as_tensor(rows), torch.as_tensor(cols)].sum())
    return total / cos.shape[0], match


def latent_precision_recall(latents: torch.Tensor, true_coeffs: torch.Tensor, match: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per ground-truth feature, how well its matched latent fires with it.

    ``latents`` ``[n, d_sae]``, ``true_coeffs`` ``[n, n_true]`` (the planted features' coefficients
    on the same inputs), ``match`` ``[n_true]`` from :func:`matched_cosine`. Returns ``precision``
    (P(feature on | latent on)), ``recall`` (P(latent on | feature on)) and ``f1``, each
    ``[n_true]`` (0 for unmatched features or latents that never fire).
    """
    lat, tru = _2d("latents", latents), _2d("true_coeffs", true_coeffs)
    if lat.shape[0] != tru.shape[0]:
        raise InputError(f"latents cover {lat.shape[0]} inputs, true_coeffs {tru.shape[0]}")
    if match.shape != (tru.shape[1],):
        raise InputError(f"match must be [{tru.shape[1]}], got {list(match.shape)}")
    on_lat = lat[:, match.clamp_min(0)] > 0  # [n, n_true]
    on_tru = tru > 0
    both = (on_lat & on_tru).float().sum(0)
    prec = both / on_lat.float().sum(0).clamp_min(1)
    rec = both / on_tru.float().sum(0).clamp_min(1)
    unmatched = match < 0
    prec[unmatched] = 0
    rec[unmatched] = 0
    f1 = 2 * prec * rec / (prec + rec).clamp_min(1e-12)
    return {"precision": prec, "recall": rec, "f1": f1}


def random_directions(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``[n, d]`` random unit directions: the chance level for :func:`mmcs` and :func:`matched_cosine`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x / x.norm(dim=-1, keepdim=True)


@torch.no_grad()
def ground_truth_report(sae, truth: torch.Tensor, x: torch.Tensor, true_coeffs: torch.Tensor,
                        cos_threshold: float = 0.9) -> dict:
    """MMCS, matched cosine, fraction of features recovered (matched cosine > ``cos_threshold``),
    mean precision/recall of the matched latents, with reconstruction metrics, for one SAE."""
    dec = sae.decoder_directions
    mcc, match = matched_cosine(dec, truth)
    cos = cosine_matrix(dec, truth).abs()
    matched_cos = torch.where(match >= 0, cos[torch.arange(len(match)), match.clamp_min(0)], torch.zeros(()))
    pr = latent_precision_recall(sae.encode(x), true_coeffs, match)
    return {"mmcs": mmcs(dec, truth), "matched_cosine": mcc,
            "recovered_frac": float((matched_cos > cos_threshold).float().mean()),
            "precision": float(pr["precision"].mean()), "recall": float(pr["recall"].mean()),
            **reconstruction_metrics(sae, x)}
