"""QK and OV circuits and composition scores (Elhage et al. 2021, "A Mathematical Framework").

Conventions follow TransformerLens: activations are row vectors, so a head's OV circuit is
``W_OV = W_V @ W_O`` (``[d_model, d_model]``, input rows, output columns) and its QK circuit
is ``W_QK = W_Q @ W_K.T`` (query side rows, key side columns).
"""

from __future__ import annotations

import torch
from transformer_lens import FactoredMatrix

from mi_course.errors import InputError, expect_shape
from mi_course.methods.attention import head_index
from mi_course import validation as check


def head_weights(model, layer: int, head: int) -> dict[str, torch.Tensor]:
    """``W_Q, W_K, W_V`` (``[d_model, d_head]``) and ``W_O`` (``[d_head, d_model]``) of one head."""
    head_index(model, layer, head)
    return {name: getattr(model, name)[layer, head].detach() for name in ("W_Q", "W_K", "W_V", "W_O")}


def qk_circuit(model, layer: int, head: int) -> FactoredMatrix:
    """``W_Q W_K^T`` as a FactoredMatrix ``[d_model, d_model]``."""
    w = head_weights(model, layer, head)
    return FactoredMatrix(w["W_Q"], w["W_K"].T)


def ov_circuit(model, layer: int, head: int) -> FactoredMatrix:
    """``W_V W_O`` as a FactoredMatrix ``[d_model, d_model]``."""
    w = head_weights(model, layer, head)
    return FactoredMatrix(w["W_V"], w["W_O"])


def full_qk_circuit(W_E: torch.Tensor, W_Q: torch.Tensor, W_K: torch.Tensor) -> FactoredMatrix:
    """Token-to-token QK circuit ``W_E W_Q (W_E W_K)^T``: ``[d_vocab (query), d_vocab (key)]``."""
    expect_shape("W_E", W_E, (None, None), "Expected [d_vocab, d_model].")
    expect_shape("W_Q", W_Q, (W_E.shape[1], None), "Expected [d_model, d_head].")
    expect_shape("W_K", W_K, tuple(W_Q.shape), "Expected [d_model, d_head].")
    return FactoredMatrix(W_E @ W_Q, (W_E @ W_K).T)


def full_ov_circuit(W_E: torch.Tensor, W_V: torch.Tensor, W_O: torch.Tensor, W_U: torch.Tensor) -> FactoredMatrix:
    """Token-to-logit OV circuit ``W_E W_V W_O W_U``: ``[d_vocab (attended), d_vocab (logit)]``."""
    return FactoredMatrix(W_E @ W_V, W_O @ W_U)


def composition_score(left: torch.Tensor | FactoredMatrix, right: torch.Tensor | FactoredMatrix) -> float:
    """``||left @ right||_F / (||left||_F ||right||_F)``: how much two maps share a subspace.

    Both arguments are ``[d_model, d_model]``. For an earlier head's ``W_OV`` and a later
    head's ``W_QK``: K-composition is ``composition_score(W_OV, W_QK.T)``, Q-composition
    ``composition_score(W_OV, W_QK)``, V-composition ``composition_score(W_OV, W_OV_later)``.
    """
    L = left.AB if isinstance(left, FactoredMatrix) else left
    R = right.AB if isinstance(right, FactoredMatrix) else right
    expect_shape("left", L, (None, None))
    expect_shape("right", R, (L.shape[1], None), "left @ right must be defined.")
    check.finite("left", L)
    check.finite("right", R)
    denom = L.norm() * R.norm()
    if float(denom) == 0.0:
        raise InputError("composition score of a zero matrix is undefined")
    return float((L @ R).norm() / denom)


def k_composition_score(W_OV_early: torch.Tensor, W_QK_late: torch.Tensor) -> float:
    """K-composition: how much an earlier head's output is read by a later head's keys."""
    return composition_score(W_OV_early, W_QK_late.T)


def composition_scores(model, kind: str = "K") -> torch.Tensor:
    """``[layer_early, head_early, layer_late, head_late]`` scores for kind ``Q``, ``K`` or ``V``.

    Entries where the "late" layer is not after the early one are 0.
    """
    if kind not in ("Q", "K", "V"):
        raise InputError(f"kind must be 'Q', 'K' or 'V', got {kind!r}")
    nl, nh = model.cfg.n_layers, model.cfg.n_heads
    out = torch.zeros(nl, nh, nl, nh)
    for l1 in range(nl):
        for h1 in range(nh):
            ov = ov_circuit(model, l1, h1).AB
            for l2 in range(l1 + 1, nl):
                for h2 in range(nh):
                    if kind == "V":
                        right = ov_circuit(model, l2, h2).AB
                    else:
                        qk = qk_circuit(model, l2, h2).AB
                        right = qk.T if kind == "K" else qk
                    out[l1, h1, l2, h2] = composition_score(ov, right)
    return out


def baseline_composition_score(d_model: int, d_head: int, n_samples: int = 200, seed: int = 0) -> float:
    """Mean composition score of random low-rank matrices with the same shapes (the noise floor)."""
    g = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(n_samples):
        a = torch.randn(d_model, d_head, generator=g) @ torch.randn(d_head, d_model, generator=g)
        b = torch.randn(d_model, d_head, generator=g) @ torch.randn(d_head, d_model, generator=g)
        scores.append(composition_score(a, b))
    return float(torch.tensor(scores).mean())
