"""Checkers for week 12: Toy Models of Superposition; sparse autoencoders find features.

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.toy_models`, :mod:`mi_course.methods.sae`,
:mod:`mi_course.methods.sae_metrics`) on fixed and random cases, and recognises the common
mistakes listed with each exercise.
"""

from __future__ import annotations

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check
from mi_course.methods import sae_metrics, toy_models


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- 1. feature dimensionality -----------------------------------------------------------------
def _W_cases(seed: int) -> list[Case]:
    g = _g(seed)
    if seed == 0:
        import math

        a = torch.arange(5) * 2 * math.pi / 5
        pent = torch.stack([a.cos(), a.sin()], -1) * torch.tensor([1.0, 0.9, 1.1, 1.0, 0.8])[:, None]
        return [Case("pentagon", {"W": pent}), Case("random 6x3", {"W": torch.randn(6, 3, generator=g)})]
    n, m = int(torch.randint(4, 12, (1,), generator=g)), int(torch.randint(2, 4, (1,), generator=g))
    return [Case(f"seed {seed}, {n}x{m}", {"W": torch.randn(n, m, generator=g)})]


def _dim_reference(W: torch.Tensor) -> torch.Tensor:
    return toy_models.feature_dimensionality(W)[0]


def _dim_unnormalised(W):
    return W.norm(dim=-1).pow(2) / (W @ W.T).pow(2).sum(-1)


def _dim_without_self(W):
    unit = W / W.norm(dim=-1, keepdim=True)
    d = (unit @ W.T).pow(2)
    return W.norm(dim=-1).pow(2) / (d.sum(-1) - d.diagonal()).clamp_min(1e-12)


FEATURE_DIMENSIONALITY = Exercise(
    id="w12_feature_dimensionality",
    title="feature_dimensionality",
    reference=_dim_reference,
    cases=_W_cases,
    mistakes=[
        Mistake("W_i not normalised", _dim_unnormalised,
                "in the denominator, project every W_j on the UNIT vector W_i / ||W_i|| before squaring."),
        Mistake("j = i left out", _dim_without_self,
                "the denominator sums over all j, the feature itself included (so a lone feature gets D = 1)."),
    ],
    hint="D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2, with W_i_hat = W_i / ||W_i||; W is [n_features, n_hidden].",
)


def check_feature_dimensionality(fn, seed: int | None = None) -> None:
    """Check ``feature_dimensionality(W [n_features, n_hidden]) -> [n_features]``."""
    check(FEATURE_DIMENSIONALITY, fn, seed)


# -- 2. dimensions per feature -----------------------------------------------------------------
def _dpf_reference(W: torch.Tensor) -> torch.Tensor:
    return toy_models.dims_per_feature(W)[0]


DIMS_PER_FEATURE = Exercise(
    id="w12_dims_per_feature",
    title="dims_per_feature",
    reference=_dpf_reference,
    cases=_W_cases,
    mistakes=[
        Mistake("n instead of m", lambda W: torch.tensor(W.shape[0] / float(W.pow(2).sum())),
                "the numerator is the number of HIDDEN dimensions m (W.shape[1]), not the number of features."),
        Mistake("norm not squared", lambda W: torch.tensor(W.shape[1] / float(W.norm())),
                "divide by the SQUARED Frobenius norm ||W||_F^2 (the sum of all W_ij^2)."),
    ],
    hint="m / ||W||_F^2: hidden dimensions divided by the squared Frobenius norm of W [n_features, m].",
)


def check_dims_per_feature(fn, seed: int | None = None) -> None:
    """Check ``dims_per_feature(W [n_features, n_hidden]) -> scalar tensor``."""
    check(DIMS_PER_FEATURE, fn, seed)


# -- 3. TopK activation ------------------------------------------------------------------------
def _topk_cases(seed: int) -> list[Case]:
    g = _g(seed)
    ks = [2, 7] if seed == 0 else [int(torch.randint(1, 9, (1,), generator=g))]
    return [Case(f"seed {seed}, k={k}", {"pre": torch.randn(5, 10, generator=g) - 0.3, "k": k}) for k in ks]


def _topk_reference(pre: torch.Tensor, k: int) -> torch.Tensor:
    from mi_course.zoo.sae_models import SparseAutoencoder

    sae = SparseAutoencoder(1, pre.shape[-1], "topk", k=k)
    return sae.activation(pre)


def _topk_no_relu(pre, k):
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def _topk_abs(pre, k):
    idx = pre.abs().topk(k, dim=-1).indices
    return torch.zeros_like(pre).scatter(-1, idx, torch.relu(pre.gather(-1, idx)))


TOPK = Exercise(
    id="w12_topk",
    title="topk_activation",
    reference=_topk_reference,
    cases=_topk_cases,
    mistakes=[
        Mistake("no ReLU", _topk_no_relu,
                "latents are non-negative: apply ReLU (a negative value among the k largest must become 0)."),
        Mistake("largest by absolute value", _topk_abs,
                "keep the k LARGEST pre-activations (pre.topk), not the k largest in absolute value."),
    ],
    hint="keep the k largest entries of each row (torch.topk on the last dimension), ReLU them, zero the rest "
         "(torch.zeros_like(...).scatter(-1, indices, values)).",
)


def check_topk(fn, seed: int | None = None) -> None:
    """Check ``topk_activation(pre [batch, d_sae], k) -> [batch, d_sae]``."""
    check(TOPK, fn, seed)


# -- 4. the ReLU + L1 SAE loss -----------------------------------------------------------------
def _loss_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for coeff in ([0.5, 3.0] if seed == 0 else [float(torch.rand(1, generator=g)) * 4 + 0.1]):
        x = torch.randn(8, 6, generator=g)
        out.append(Case(f"seed {seed}, l1_coeff={coeff:.2f}", {
            "x": x, "x_hat": x + 0.3 * torch.randn(8, 6, generator=g),
            "latents": torch.relu(torch.randn(8, 12, generator=g)),
            "W_dec": torch.randn(12, 6, generator=g) * torch.rand(12, 1, generator=g), "l1_coeff": coeff}))
    return out


def _loss_reference(x, x_hat, latents, W_dec, l1_coeff):
    return (x - x_hat).pow(2).sum(-1).mean() + l1_coeff * (latents * W_dec.norm(dim=-1)).sum(-1).mean()


L1_LOSS = Exercise(
    id="w12_sae_l1_loss",
    title="sae_l1_loss",
    reference=_loss_reference,
    cases=_loss_cases,
    mistakes=[
        Mistake("no decoder norms", lambda x, x_hat, latents, W_dec, l1_coeff:
                (x - x_hat).pow(2).sum(-1).mean() + l1_coeff * latents.sum(-1).mean(),
                "weight each latent's activation by the norm of its decoder row, ||W_dec[i]|| (otherwise the SAE "
                "shrinks f and grows W_dec to dodge the penalty)."),
        Mistake("MSE averaged over dimensions", lambda x, x_hat, latents, W_dec, l1_coeff:
                (x - x_hat).pow(2).mean() + l1_coeff * (latents * W_dec.norm(dim=-1)).sum(-1).mean(),
                "sum the squared error over the d dimensions of each token, then average over tokens."),
    ],
    hint="mean over tokens of ||x - x_hat||^2, plus l1_coeff * mean over tokens of sum_i f_i * ||W_dec[i]||.",
)


def check_sae_l1_loss(fn, seed: int | None = None) -> None:
    """Check ``sae_l1_loss(x, x_hat, latents, W_dec, l1_coeff) -> scalar``."""
    check(L1_LOSS, fn, seed)


# -- 5. MMCS -----------------------------------------------------------------------------------
def _mmcs_cases(seed: int) -> list[Case]:
    g = _g(seed)
    truth = torch.randn(6, 5, generator=g)
    dec = torch.cat([truth[:4] * 3 + 0.2 * torch.randn(4, 5, generator=g), torch.randn(6, 5, generator=g)])
    return [Case(f"seed {seed}", {"decoder": dec, "truth": truth})]


def _mmcs_reference(decoder, truth):
    return torch.tensor(sae_metrics.mmcs(decoder, truth))


def _mmcs_unnormalised(decoder, truth):
    return (truth @ decoder.T).max(-1).values.mean()


def _mmcs_wrong_axis(decoder, truth):
    cos = torch.nn.functional.normalize(truth, dim=-1) @ torch.nn.functional.normalize(decoder, dim=-1).T
    return cos.max(0).values.mean()


MMCS = Exercise(
    id="w12_mmcs",
    title="mmcs",
    reference=_mmcs_reference,
    cases=_mmcs_cases,
    mistakes=[
        Mistake("dot products, not cosines", _mmcs_unnormalised,
                "normalise both the decoder rows and the ground-truth features to unit length first."),
        Mistake("max over the wrong axis", _mmcs_wrong_axis,
                "for each GROUND-TRUTH feature take its best decoder direction, then average over the features "
                "(not over the decoder rows)."),
    ],
    hint="cos = truth_unit @ decoder_unit.T ([n_true, d_sae]); max over decoder rows, mean over features.",
)


def check_mmcs(fn, seed: int | None = None) -> None:
    """Check ``mmcs(decoder [d_sae, d], truth [n_true, d]) -> scalar``."""
    check(MMCS, fn, seed)


# -- 6. explained variance ---------------------------------------------------------------------
def _ev_cases(seed: int) -> list[Case]:
    g = _g(seed)
    x = torch.randn(50, 4, generator=g) + 2.0
    return [Case(f"seed {seed}", {"x": x, "x_hat": x + 0.5 * torch.randn(50, 4, generator=g)})]


EXPLAINED_VARIANCE = Exercise(
    id="w12_explained_variance",
    title="explained_variance",
    reference=lambda x, x_hat: torch.tensor(sae_metrics.explained_variance(x, x_hat)),
    cases=_ev_cases,
    mistakes=[
        Mistake("not centred", lambda x, x_hat: 1 - (x - x_hat).pow(2).sum() / x.pow(2).sum(),
                "the variance is around the MEAN activation: divide by sum ||x - x.mean(0)||^2, not sum ||x||^2."),
        Mistake("1 - EV (the FVU)", lambda x, x_hat: (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum(),
                "that is the fraction of variance UNexplained; explained variance is 1 minus it."),
    ],
    hint="1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over all tokens.",
)


def check_explained_variance(fn, seed: int | None = None) -> None:
    """Check ``explained_variance(x [n, d], x_hat [n, d]) -> scalar``."""
    check(EXPLAINED_VARIANCE, fn, seed)


EXERCISES = {ex.id: ex for ex in (FEATURE_DIMENSIONALITY, DIMS_PER_FEATURE, TOPK, L1_LOSS, MMCS, EXPLAINED_VARIANCE)}
