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
from mi_course.zoo import hooks as hk


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


# --- Week 02, in depth: circuits over the vocabulary, and decompositions on real inputs -------
def top1_diagonal_fraction(table: torch.Tensor | FactoredMatrix) -> float:
    """Fraction of rows whose largest entry is on the diagonal (``argmax(row i) == i``).

    table: ``[n, n]`` (tensor or FactoredMatrix), e.g. a full OV circuit (does attending to token
    *i* raise the logit of *i* most?) or a full QK circuit (does query token *i* prefer key *i*?).
    Chance level for a random table is ``1/n``.
    """
    t = table.AB if isinstance(table, FactoredMatrix) else table
    expect_shape("table", t, (None, None), "Expected a square [n, n] table.")
    if t.shape[0] != t.shape[1]:
        raise InputError(f"table must be square, got {list(t.shape)}")
    return float((t.argmax(dim=-1) == torch.arange(t.shape[0], device=t.device)).float().mean())


def k_composition_circuit(
    W_E: torch.Tensor, W_Q: torch.Tensor, W_K: torch.Tensor, W_V_prev: torch.Tensor, W_O_prev: torch.Tensor,
) -> FactoredMatrix:
    """The full K-composition circuit of a later head through an earlier (previous-token) head.

    ``W_E W_Q (W_E W_V' W_O' W_K)^T``: ``[d_vocab (query token), d_vocab (token the earlier head
    moved into the key position)]``. If the earlier head is a previous-token head, entry ``[i, j]``
    is the score of a query on token *i* for a key position whose *previous* token is *j*: an
    induction head wants a large diagonal. LayerNorm, positions and biases are ignored.

    W_E ``[d_vocab, d_model]``; W_Q, W_K, W_V_prev ``[d_model, d_head]``; W_O_prev ``[d_head, d_model]``.
    """
    expect_shape("W_E", W_E, (None, None), "Expected [d_vocab, d_model].")
    d_model = W_E.shape[1]
    expect_shape("W_Q", W_Q, (d_model, None), "Expected [d_model, d_head].")
    expect_shape("W_K", W_K, tuple(W_Q.shape), "Expected [d_model, d_head].")
    expect_shape("W_V_prev", W_V_prev, (d_model, None), "Expected [d_model, d_head].")
    expect_shape("W_O_prev", W_O_prev, (W_V_prev.shape[1], d_model), "Expected [d_head, d_model].")
    return FactoredMatrix(W_E @ W_Q, (W_E @ W_V_prev @ W_O_prev @ W_K).T)


def source_names(model, layer: int) -> list[str]:
    """Names of what the residual stream before ``layer`` is a sum of (biases left out):
    ``["embed", "pos", "0.0", "0.1", ..., f"{layer-1}.{n_heads-1}"]``."""
    return ["embed", "pos"] + [f"{l}.{h}" for l in range(layer) for h in range(model.cfg.n_heads)]


def _residual_sources(model, cache, layer: int) -> torch.Tensor:
    """``[n_source, batch, pos, d_model]`` in the order of :func:`source_names` (biases left out)."""
    parts = [cache["hook_embed"], cache["hook_pos_embed"]]
    for l in range(layer):
        parts += list(torch.einsum("bphe,hed->hbpd", cache[hk.z(l)], model.W_O[l].detach()))
    return torch.stack(parts)


def _through_layernorm(x: torch.Tensor, scale: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The linear part of a LayerNorm with its scale frozen at the run's value: centre, divide, weight."""
    return (x - x.mean(-1, keepdim=True)) / scale * weight


@torch.no_grad()
def qk_by_source(model, tokens: torch.Tensor, seq_len: int, layer: int, head: int) -> torch.Tensor:
    """Where a head's induction attention score comes from: ``[n_source (query), n_source (key)]``.

    On repeated tokens (:func:`~mi_course.data.induction.repeated_random_tokens`), split the
    residual stream entering ``layer`` into its sources (:func:`source_names`: token embedding,
    positional embedding, each earlier head's output), pass each through the layer's LayerNorm
    with the scale frozen at the run's value (centre, divide by ``ln1.hook_scale``, times
    ``ln1.w``), project with the head's ``W_Q`` (query side) and ``W_K`` (key side), and average
    ``q_s . k_t / sqrt(d_head)`` over the batch and the induction pairs (query ``i`` in the second
    copy, key ``i - seq_len + 1``). Entry ``[s, t]``: the score that query source *s* and key
    source *t* contribute. Constant terms (LayerNorm bias, ``b_Q``, ``b_K``, ``b_O``) are left out.
    """
    from mi_course.methods.attention import head_index

    head_index(model, layer, head)
    expect_shape("tokens", tokens, (None, 2 * seq_len + 1), "Expected repeated tokens [batch, 2*seq_len+1].")
    _, cache = model.run_with_cache(tokens)
    src = _residual_sources(model, cache, layer)                       # [s, b, p, d_model]
    ln = model.blocks[layer].ln1
    x = _through_layernorm(src, cache[hk.ln1_scale(layer)], ln.w.detach())
    q = x @ model.W_Q[layer, head].detach()                             # [s, b, p, d_head]
    k = x @ model.W_K[layer, head].detach()
    queries = torch.arange(seq_len + 1, 2 * seq_len + 1)
    scores = torch.einsum("sbqe,tbqe->stbq", q[:, :, queries], k[:, :, queries - seq_len + 1])
    return scores.mean(dim=(-2, -1)) / model.cfg.d_head**0.5


def path_names(model) -> list[str]:
    """Names of the paths :func:`logit_attribution_by_path` returns: ``embed``, ``pos``, every head."""
    return source_names(model, model.cfg.n_layers)


@torch.no_grad()
def logit_attribution_by_path(model, tokens: torch.Tensor) -> torch.Tensor:
    """Direct logit attribution of the *correct next token*, per path and position.

    Returns ``[n_path, batch, pos-1]`` (paths in the order of :func:`path_names`): at position
    ``i``, how much each term of the final residual stream (token embedding, positional
    embedding, each head's output) adds to the logit of ``tokens[:, i+1]``, through the final
    LayerNorm with its scale frozen at the run's value (centre, divide by ``ln_final.hook_scale``,
    times ``ln_final.w``) and ``W_U``. The paths plus the constant terms (``b_O``, the LayerNorm
    bias, ``b_U``) add up exactly to the logit.
    """
    expect_shape("tokens", tokens, (None, None), "Expected [batch, pos].")
    _, cache = model.run_with_cache(tokens)
    src = _residual_sources(model, cache, model.cfg.n_layers)          # [path, b, p, d_model]
    x = _through_layernorm(src, cache[hk.FINAL_SCALE], model.ln_final.w.detach())
    W_U_next = model.W_U.detach()[:, tokens[:, 1:]]                     # [d_model, b, p-1]
    return torch.einsum("sbpd,dbp->sbp", x[:, :, :-1], W_U_next)
