"""Talking heads: communication between heads through low-rank subspaces (Merullo et al. 2024).

A later (*receiver*) head reads the residual stream through its QK and OV matrices, which
have rank ``d_head`` at most. Their SVD splits each into rank-1 components
``s_i u_i v_i^T``; an earlier (*sender*) head often writes into only one or two of the
directions a receiver reads. Here:

* :func:`svd` of a head's QK or OV circuit (reusing :mod:`mi_course.methods.circuits`);
* :func:`component_composition_scores`: the composition score of a sender's OV with each
  rank-1 component of a receiver's QK (K-, Q-) or OV (V-composition);
* :func:`read_subspace`: an orthonormal basis of the directions a receiver component reads;
* :func:`run_with_projected_sender`: run the model with a subspace projected out of one
  sender head's output, and see the receiver's attention change.

Directions live in the residual stream *after* the receiver's LayerNorm scale: with
``fold_ln=True`` the receiver's LN weights are folded into its matrices, so the directions
are those of the (normalised) residual stream the head reads.
"""

from __future__ import annotations

from typing import Callable

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.methods import circuits
from mi_course.methods.attention import head_index
from mi_course.zoo import hooks as hk
from mi_course import validation as check

KINDS = ("Q", "K", "V")


def svd(matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(U [d, r], S [r], Vh [r, d])`` of a ``[d, d]`` tensor or FactoredMatrix, ``r = rank bound``.

    For a FactoredMatrix ``A @ B`` with inner size ``r`` only the first ``r`` components are
    returned (the rest are zero).
    """
    if type(matrix).__name__ == "FactoredMatrix":
        U, S, V = matrix.svd()  # U [d, r], S [r], V [d, r]
        return U, S, V.T
    expect_shape("matrix", matrix, (None, None))
    return torch.linalg.svd(matrix, full_matrices=False)


def _ln_weight(model, layer: int) -> torch.Tensor:
    sd = model.state_dict()
    key = f"blocks.{layer}.ln1.weight"
    return sd[key].detach() if key in sd else torch.ones(model.cfg.d_model)


def receiver_matrix(model, layer: int, head: int, kind: str, fold_ln: bool = True) -> torch.Tensor:
    """The receiver's ``[d_model, d_model]`` matrix for a composition ``kind``.

    ``Q``: ``W_QK`` (rows: query side); ``K``: ``W_QK^T`` (rows: key side); ``V``: ``W_OV``.
    In each the *rows* index the residual directions through which the receiver reads the sender.
    """
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    head_index(model, layer, head)
    if kind == "V":
        M = circuits.ov_circuit(model, layer, head).AB
        w = _ln_weight(model, layer) if fold_ln else None
        return M if w is None else w[:, None] * M
    M = circuits.qk_circuit(model, layer, head).AB
    if fold_ln:
        w = _ln_weight(model, layer)
        M = w[:, None] * M * w[None, :]
    return M if kind == "Q" else M.T


def component_composition_scores(sender_ov: torch.Tensor, receiver: torch.Tensor, n_components: int | None = None) -> torch.Tensor:
    """Composition score of ``sender_ov`` with each rank-1 SVD component of ``receiver``: ``[r]``.

    sender_ov: ``[d_model, d_model]`` (rows in, columns out); receiver: ``[d_model, d_model]`` whose
    rows read the sender's output (see :func:`receiver_matrix`). Component ``i`` is
    ``s_i u_i v_i^T``; its score is ``||sender_ov @ s_i u_i v_i^T||_F / (||sender_ov||_F ||s_i u_i v_i^T||_F)``
    ``= ||sender_ov @ u_i|| / ||sender_ov||_F``: the share of the sender's output the component reads.
    """
    expect_shape("sender_ov", sender_ov, (None, None))
    expect_shape("receiver", receiver, (sender_ov.shape[1], None))
    U, S, _ = svd(receiver)
    r = int((S > S[0] * 1e-6).sum()) if n_components is None else n_components
    return torch.stack([
        torch.tensor(circuits.composition_score(sender_ov, S[i] * torch.outer(U[:, i], _unit_row(receiver, U[:, i]))))
        for i in range(r)
    ])


def _unit_row(receiver: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The right singular vector paired with left vector ``u`` (``receiver^T u`` normalised)."""
    v = receiver.T @ u
    return v / v.norm().clamp_min(1e-12)


def read_subspace(receiver: torch.Tensor, components: list[int] | int) -> torch.Tensor:
    """Orthonormal basis ``[d_model, k]`` of the read directions ``u_i`` of the chosen components."""
    if isinstance(components, int):
        components = list(range(components))
    U, _, _ = svd(receiver)
    if not components or max(components) >= U.shape[1] or min(components) < 0:
        raise InputError(f"components must be indices in 0..{U.shape[1] - 1}, got {components}")
    return U[:, components]


def random_subspace(d_model: int, k: int, seed: int = 0) -> torch.Tensor:
    """A random orthonormal basis ``[d_model, k]`` (the control for an intervention)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d_model, k, generator=g))
    return q


def project_out(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``x - (x B) B^T`` for an orthonormal ``basis [d_model, k]``; ``x [..., d_model]``."""
    if x.shape[-1] != basis.shape[0]:
        raise InputError(f"x has d_model={x.shape[-1]} but basis has {basis.shape[0]} rows")
    return x - (x @ basis) @ basis.T


def sender_output(model, z: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """One head's write into the residual stream, ``z[:, :, head] @ W_O``: ``[batch, pos, d_model]``."""
    return z[:, :, head] @ model.W_O[layer, head].detach()


def run_with_projected_sender(model, tokens: torch.Tensor, layer: int, head: int, basis: torch.Tensor,
                              names_filter: Callable[[str], bool] | None = None):
    """Run ``model`` on ``tokens`` with ``basis`` projected out of head ``layer.head``'s output.

    Only that head's contribution is changed; everything downstream sees the edited residual.
    Returns ``(logits, cache)`` (cache filtered by ``names_filter``; attention patterns by default).
    """
    head_index(model, layer, head)
    check.tokens("tokens", tokens, model)
    expect_shape("basis", basis, (model.cfg.d_model, None), "Expected an orthonormal [d_model, k] basis.")
    check.finite("basis", basis)
    store: dict[str, torch.Tensor] = {}

    def grab_z(z, hook):
        store["z"] = z
        return z

    def edit_out(out, hook):
        w = sender_output(model, store["z"], layer, head)
        return out - (w - project_out(w, basis))

    names_filter = names_filter or hk.only("pattern")
    hooks = [(hk.z(layer), grab_z), (hk.attn_out(layer), edit_out)]
    with model.hooks(fwd_hooks=hooks):
        logits, cache = model.run_with_cache(tokens, names_filter=names_filter)
    return logits, cache


def channel(sender_ov: torch.Tensor, receiver: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The communication channel from a sender to a receiver: SVD of ``sender_ov @ receiver``.

    Returns ``(strengths [d_model], directions [d_model, d_model])``: ``directions[:, i]`` is the
    residual direction the sender writes (``sender_ov^T u_i``, normalised) for the ``i``-th
    strongest singular component of the product. A rank-1 channel has one large strength.
    """
    expect_shape("sender_ov", sender_ov, (None, None))
    expect_shape("receiver", receiver, (sender_ov.shape[1], None))
    U, S, _ = torch.linalg.svd(sender_ov @ receiver)
    D = sender_ov.T @ U
    return S, D / D.norm(dim=0, keepdim=True).clamp_min(1e-12)


def channel_basis(sender_ov: torch.Tensor, receiver: torch.Tensor, k: int) -> torch.Tensor:
    """Orthonormal basis ``[d_model, k]`` of the ``k`` strongest channel directions (see :func:`channel`)."""
    if not isinstance(k, int) or not 1 <= k <= sender_ov.shape[0]:
        raise InputError(f"k must be an int in 1..{sender_ov.shape[0]}, got {k!r}")
    _, D = channel(sender_ov, receiver)
    q, _ = torch.linalg.qr(D[:, :k])
    return q


def effective_rank(strengths: torch.Tensor, share: float = 0.9) -> int:
    """How many components hold ``share`` of the squared singular values (the channel's dimension)."""
    check.finite("strengths", strengths)
    if not 0 < check.number("share", share) <= 1:
        raise InputError(f"share must lie in (0, 1], got {share}")
    s2 = strengths.double() ** 2
    c = s2.cumsum(0) / s2.sum()
    return int((c < share).sum()) + 1


def project_out_span(x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Remove from ``x [..., d_model]`` its component in the span of ``directions [d_model, k]``
    (any directions: they are orthonormalised first, by QR)."""
    expect_shape("directions", directions, (x.shape[-1], None), "Expected [d_model, k].")
    q, _ = torch.linalg.qr(directions)
    return project_out(x, q)


# -- week 04 exercises: the baseline, scores from raw weights, the intervention ---------------
def ln1_weight(model, layer: int) -> torch.Tensor:
    """The LayerNorm scale ``[d_model]`` in front of layer ``layer``'s attention (ones if the model has none)."""
    return _ln_weight(model, layer)


def direction_scores(sender_ov: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Composition score of ``sender_ov [d_model, d_model]`` with a reader along each column of
    ``directions [d_model, n]`` (any length; normalised here): ``||sender_ov @ u|| / ||sender_ov||_F``, ``[n]``.

    The score of a *random* unit direction is about ``1/sqrt(d_model)``; over an orthonormal
    basis of the whole space the squared scores sum to exactly 1.
    """
    expect_shape("sender_ov", sender_ov, (None, None))
    expect_shape("directions", directions, (sender_ov.shape[1], None), "Expected [d_model, n] directions.")
    u = directions / directions.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return (sender_ov @ u).norm(dim=0) / sender_ov.norm()


def random_direction_scores(sender_ov: torch.Tensor, n: int = 2000, seed: int = 0) -> torch.Tensor:
    """The baseline for :func:`component_composition_scores`: scores of ``n`` random unit directions ``[n]``."""
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive int, got {n!r}")
    g = torch.Generator().manual_seed(seed)
    return direction_scores(sender_ov, torch.randn(sender_ov.shape[1], n, generator=g))


def sender_receiver_scores(model, sender_layer: int, receiver_layer: int, receiver_head: int, kind: str) -> torch.Tensor:
    """Component composition scores ``[n_heads, r]`` of every head of ``sender_layer`` (its OV
    circuit) with each SVD component of one receiver's matrix (``kind`` Q, K or V, LN scale folded in).
    """
    if not isinstance(sender_layer, int) or not 0 <= sender_layer < receiver_layer:
        raise InputError(f"sender_layer must be an int below receiver_layer={receiver_layer}, got {sender_layer!r}")
    R = receiver_matrix(model, receiver_layer, receiver_head, kind)
    scores = [component_composition_scores(circuits.ov_circuit(model, sender_layer, h).AB, R)
              for h in range(model.cfg.n_heads)]
    r = min(len(s) for s in scores)
    return torch.stack([s[:r] for s in scores])


def remove_from_head_output(model, tokens: torch.Tensor, layer: int, head: int, basis: torch.Tensor) -> torch.Tensor:
    """Logits ``[batch, pos, d_vocab]`` of ``model`` on ``tokens`` with the span of the orthonormal
    ``basis [d_model, k]`` removed from head ``layer.head``'s output (see :func:`run_with_projected_sender`)."""
    logits, _ = run_with_projected_sender(model, tokens, layer, head, basis, names_filter=lambda n: False)
    return logits


def run_with_edit_seen_only_by(model, tokens: torch.Tensor, layer: int, head: int, basis: torch.Tensor,
                               reader_layer: int) -> torch.Tensor:
    """Like :func:`remove_from_head_output`, but only the attention of ``reader_layer`` sees the edit:
    the removed part is taken out of ``blocks.{reader_layer}.hook_resid_pre`` and put back at
    ``hook_resid_mid``, so the direct path to the logits and every MLP keep it. Returns logits."""
    head_index(model, layer, head)
    if not isinstance(reader_layer, int) or not layer < reader_layer < model.cfg.n_layers:
        raise InputError(f"reader_layer must be an int in {layer + 1}..{model.cfg.n_layers - 1}, got {reader_layer!r}")
    expect_shape("basis", basis, (model.cfg.d_model, None), "Expected an orthonormal [d_model, k] basis.")
    store: dict[str, torch.Tensor] = {}

    def grab_z(z, hook):
        store["z"] = z
        return z

    def remove(x, hook):
        w = sender_output(model, store["z"], layer, head)
        store["removed"] = w - project_out(w, basis)
        return x - store["removed"]

    def restore(x, hook):
        return x + store["removed"]

    hooks = [(hk.z(layer), grab_z), (hk.resid_pre(reader_layer), remove),
             (hk.resid_mid(reader_layer), restore)]
    with model.hooks(fwd_hooks=hooks):
        return model(tokens)


def empirical_p_value(effect: float, random_effects: torch.Tensor) -> float:
    """How often a random control does at least as much as ``effect``: ``(1 + #{random >= effect}) / (1 + n)``.

    effect: e.g. the drop in logit difference from removing a channel direction; random_effects:
    ``[n]`` the same drop for ``n`` random directions. The ``+1`` counts the tested direction itself,
    so the value is never 0 (with ``n`` controls the smallest possible value is ``1/(n+1)``).
    """
    r = torch.as_tensor(random_effects, dtype=torch.float64).flatten()
    if r.numel() == 0 or torch.isnan(r).any():
        raise InputError("random_effects must be a non-empty tensor without NaN")
    return float((1 + (r >= float(effect)).sum()) / (1 + r.numel()))
