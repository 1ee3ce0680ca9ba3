"""The Fourier basis of Z_p and Fourier transforms of weights and activations (week 06).

From Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability": a
model that adds mod p represents its inputs by waves ``cos(w_k x)``, ``sin(w_k x)`` with
``w_k = 2 pi k / p`` for a few *key frequencies* k. These functions read that off.

Basis convention (used everywhere in the course): ``fourier_basis(p)`` is a ``[p, p]`` matrix
whose rows are orthonormal functions of ``x = 0..p-1``: row 0 the constant, row ``2k-1``
``cos(w_k x)`` and row ``2k`` ``sin(w_k x)`` for ``k = 1..(p-1)//2`` (p odd).
"""

from __future__ import annotations

import math

import torch

from mi_course.errors import InputError
from mi_course import validation as check


def _check_p(p: int) -> None:
    if not isinstance(p, int) or isinstance(p, bool) or p < 3 or p % 2 == 0:
        raise InputError(f"p must be an odd integer >= 3 (a prime such as 113), got {p!r}.")


def _check_tensor(name: str, x, min_dims: int = 1) -> None:
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim < min_dims:
        raise InputError(f"{name} needs at least {min_dims} dimension(s), got shape {list(x.shape)}.")


def n_frequencies(p: int) -> int:
    """Number of non-constant frequencies, ``(p - 1) // 2`` (56 for p = 113)."""
    _check_p(p)
    return (p - 1) // 2


def fourier_basis(p: int) -> tuple[torch.Tensor, list[str]]:
    """Orthonormal Fourier basis of functions on Z_p: ``([p, p] basis, names)``.

    ``basis[i]`` is the i-th basis function evaluated at ``x = 0..p-1``; names are
    ``['const', 'cos 1', 'sin 1', 'cos 2', ...]``. ``basis @ basis.T`` is the identity.
    """
    _check_p(p)
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    names = ["const"]
    for k in range(1, n_frequencies(p) + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
        names += [f"cos {k}", f"sin {k}"]
    basis = torch.stack(rows)
    basis = basis / basis.norm(dim=1, keepdim=True)
    return basis.float(), names


def fourier_transform_1d(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Coefficients of ``x`` in the Fourier basis along ``dim`` (size p); same shape as ``x``.

    E.g. ``W_E[:p]`` ``[p, d_model]`` -> ``[p, d_model]`` whose row ``2k-1`` is the cos-k part.
    """
    _check_tensor("x", x)
    if not -x.ndim <= dim < x.ndim:
        raise InputError(f"dim {dim} is out of range for a tensor of shape {list(x.shape)}.")
    p = x.shape[dim]
    _check_p(p)
    basis, _ = fourier_basis(p)
    moved = x.movedim(dim, 0).float()
    out = torch.einsum("ix,x...->i...", basis, moved)
    return out.movedim(0, dim)


def fourier_transform_2d(x: torch.Tensor) -> torch.Tensor:
    """2-D Fourier coefficients over the first two dimensions ``[p, p, ...]`` -> ``[p, p, ...]``.

    ``out[i, j] = sum_{a,b} basis[i, a] basis[j, b] x[a, b]``: i indexes the frequency in ``a``,
    j the frequency in ``b``. Use it on logits or neuron activations laid out as ``[a, b, ...]``.
    """
    _check_tensor("x", x, 2)
    p = x.shape[0]
    if x.shape[1] != p:
        raise InputError(f"x must be [p, p, ...] (a grid over a and b), got shape {list(x.shape)}.")
    _check_p(p)
    basis, _ = fourier_basis(p)
    over_a = torch.einsum("ia,ab...->ib...", basis, x.float())  # two small contractions, not one big one
    return torch.einsum("jb,ib...->ij...", basis, over_a)


def frequency_norms(coeffs: torch.Tensor) -> torch.Tensor:
    """Squared norm per frequency from 1-D coefficients ``[p, ...]`` -> ``[(p-1)//2 + 1]``.

    Entry 0 is the constant term; entry k sums the squares of the cos-k and sin-k rows (over
    every other dimension). For an embedding: ``frequency_norms(fourier_transform_1d(W_E[:p]))``.
    """
    _check_tensor("coeffs", coeffs)
    p = coeffs.shape[0]
    _check_p(p)
    sq = coeffs.float().pow(2).reshape(p, -1).sum(-1)
    return torch.cat([sq[:1], sq[1::2] + sq[2::2]])


def key_frequencies_from_norms(norms: torch.Tensor, fraction: float = 0.9, max_keys: int = 10) -> list[int]:
    """The fewest frequencies (largest first) that hold ``fraction`` of the non-constant norm.

    ``norms`` is :func:`frequency_norms`'s output ``[(p-1)//2 + 1]`` (entry 0 = constant, ignored).
    Returns sorted frequencies k >= 1 (at most ``max_keys``).
    """
    _check_tensor("norms", norms)
    if norms.ndim != 1 or norms.shape[0] < 2:
        raise InputError(f"norms must be a 1-D tensor [n_freq + 1] (from frequency_norms), got {list(norms.shape)}.")
    if not 0 < fraction <= 1:
        raise InputError(f"fraction must lie in (0, 1], got {fraction}.")
    _check_norms(norms)
    nonconst = norms[1:].double()
    order = nonconst.argsort(descending=True)
    cum = nonconst[order].cumsum(0) / nonconst.sum()
    n = int((cum < fraction).sum().item()) + 1
    return sorted(int(k) + 1 for k in order[: min(n, max_keys)])


def fraction_in_frequencies(norms: torch.Tensor, freqs: list[int]) -> float:
    """Share of the non-constant squared norm held by ``freqs`` (from :func:`frequency_norms`)."""
    _check_tensor("norms", norms)
    _check_freqs(freqs, norms.shape[0] - 1)
    _check_norms(norms)
    return float(norms[list(freqs)].sum() / norms[1:].sum())


def _check_norms(norms: torch.Tensor) -> None:
    """Finite, non-negative squared norms whose non-constant part is not all zero."""
    check.finite("norms", norms)
    if bool((norms < 0).any()):
        raise InputError("norms must be squared norms (>= 0), got negative values: pass frequency_norms(...)'s output")
    if float(norms[1:].sum()) <= 0:
        raise InputError("every non-constant frequency has norm 0: nothing to rank (an untrained or zeroed model?)")


def _check_freqs(freqs, n_freq: int) -> None:
    if isinstance(freqs, torch.Tensor):
        freqs = freqs.tolist()
    if not isinstance(freqs, (list, tuple)) or not freqs:
        raise InputError(f"freqs must be a non-empty list of frequencies 1..{n_freq}, got {freqs!r}.")
    bad = [k for k in freqs if not isinstance(k, int) or not 1 <= k <= n_freq]
    if bad:
        raise InputError(f"freqs must be integers in 1..{n_freq}; got {bad}.")


def neuron_frequency_fractions(acts: torch.Tensor) -> torch.Tensor:
    """Per neuron, the fraction of its variance explained by each single frequency.

    ``acts`` ``[p, p, n_neurons]`` (activation for inputs a, b) -> ``[n_neurons, (p-1)//2]``.
    Entry ``[n, k-1]`` is the share of neuron n's non-constant 2-D Fourier power in the terms
    built only from frequency k: ``cos/sin(w_k a)``, ``cos/sin(w_k b)`` and their four products
    (the paper's "quadratic forms on sinusoidal functions of the inputs").
    """
    _check_tensor("acts", acts, 3)
    if acts.ndim != 3:
        raise InputError(f"acts must be [p, p, n_neurons], got shape {list(acts.shape)}.")
    check.finite("acts", acts)
    coeffs = fourier_transform_2d(acts).pow(2)  # [p, p, n]
    p = acts.shape[0]
    total = coeffs.sum((0, 1)) - coeffs[0, 0]  # [n]
    fracs = []
    for k in range(1, n_frequencies(p) + 1):
        idx = [2 * k - 1, 2 * k]
        linear = coeffs[0, idx].sum(0) + coeffs[idx, 0].sum(0)
        quad = coeffs[idx][:, idx].sum((0, 1))
        fracs.append((linear + quad) / total.clamp_min(1e-12))
    return torch.stack(fracs, dim=1)


def key_frequencies_from_neurons(acts: torch.Tensor, min_fraction: float = 0.5, min_neurons: int = 10) -> dict[int, int]:
    """Key frequencies read off the neurons: ``{k: number of neurons}`` for clusters >= ``min_neurons``.

    Each neuron is assigned the frequency that explains most of its variance if that share is at
    least ``min_fraction``. ``acts`` ``[p, p, n_neurons]``.
    """
    fr = neuron_frequency_fractions(acts)
    best, best_k = fr.max(dim=1)
    counts: dict[int, int] = {}
    for frac, k in zip(best.tolist(), (best_k + 1).tolist()):
        if frac >= min_fraction:
            counts[k] = counts.get(k, 0) + 1
    return {k: n for k, n in sorted(counts.items()) if n >= min_neurons}


def cos_a_plus_b_minus_c(p: int, k: int) -> torch.Tensor:
    """``cos(w_k (a + b - c))`` on the grid ``[p, p, p]`` (a, b, c)."""
    _check_p(p)
    _check_freqs([k], n_frequencies(p))
    x = torch.arange(p, dtype=torch.float64)
    s = x[:, None, None] + x[None, :, None] - x[None, None, :]
    return torch.cos(2 * math.pi * k * s / p).float()


def logit_cosine_fractions(logits: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """Share of logit variance explained by each ``cos(w_k (a + b - c))``, ``k`` in ``freqs``.

    ``logits`` ``[p, p, p]`` (a, b, output c). Logits are first centred over c (softmax ignores a
    per-input constant); the cos terms of different k are orthogonal, so the shares add up.
    Returns ``[len(freqs)]``; ``.sum()`` is the fraction explained by all of them together.
    """
    _check_tensor("logits", logits)
    p = logits.shape[0]
    if logits.ndim != 3 or logits.shape != (p, p, p):
        raise InputError(f"logits must be [p, p, p] (a, b, c), got shape {list(logits.shape)}. "
                         "Reshape the [p*p, p] logits with .reshape(p, p, p).")
    _check_p(p)
    _check_freqs(freqs, n_frequencies(p))
    centred = logits.double() - logits.double().mean(-1, keepdim=True)
    total = centred.pow(2).sum()
    out = []
    for k in freqs:
        u = cos_a_plus_b_minus_c(p, k).double()
        out.append((centred * u).sum() ** 2 / (u.pow(2).sum() * total))
    return torch.stack(out).float()


def frequency_mask_2d(p: int, freqs: list[int]) -> torch.Tensor:
    """``[p, p]`` bool over 2-D Fourier components: True where both the a- and the b-component
    are the constant or a cos/sin of a frequency in ``freqs`` (the terms a key-frequency
    approximation keeps: constant, terms in a or b alone, and their products)."""
    _check_p(p)
    _check_freqs(freqs, n_frequencies(p))
    keep = torch.zeros(p, dtype=torch.bool)
    keep[0] = True
    for k in freqs:
        keep[2 * k - 1] = keep[2 * k] = True
    return keep[:, None] & keep[None, :]


def approximate_in_frequencies(x: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """``x`` ``[p, p, ...]`` over (a, b) with only the 2-D Fourier terms of :func:`frequency_mask_2d`
    kept: transform, zero every other component, transform back. Same shape as ``x``."""
    _check_tensor("x", x, 2)
    p = x.shape[0]
    coeffs = fourier_transform_2d(x)
    mask = frequency_mask_2d(p, freqs).reshape(p, p, *([1] * (x.ndim - 2)))
    basis, _ = fourier_basis(p)
    kept = coeffs * mask
    back = torch.einsum("ia,ib...->ab...", basis, kept)   # the basis is orthonormal: its inverse is its transpose
    return torch.einsum("jb,aj...->ab...", basis, back)


def output_frequency_norms(W: torch.Tensor) -> torch.Tensor:
    """``W`` ``[n, p]`` (e.g. each neuron's effect on the p logits, ``W_out @ W_U``) -> ``[n, (p-1)//2 + 1]``:
    the squared norm of each row per frequency over the output c (entry 0: the constant)."""
    _check_tensor("W", W, 2)
    p = W.shape[1]
    _check_p(p)
    basis, _ = fourier_basis(p)
    return _row_frequency_norms(W.float() @ basis.T)


def _row_frequency_norms(coeffs: torch.Tensor) -> torch.Tensor:
    sq = coeffs.pow(2)
    return torch.cat([sq[:, :1], sq[:, 1::2] + sq[:, 2::2]], dim=1)
