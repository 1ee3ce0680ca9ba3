"""Checkers for week 06: Progress measures for grokking (Nanda et al. 2023).

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.fourier`, :mod:`mi_course.methods.grokking`) on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

import math

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.methods import fourier, grokking

_SMALL_PRIMES = [5, 7, 11, 13, 17, 19, 23]


def _primes(seed: int, n: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(_SMALL_PRIMES), generator=g)[:n]
    return sorted(_SMALL_PRIMES[i] for i in idx.tolist())


def _raw_waves(p: int, sin_first: bool = False, normalise: bool = True, period: float | None = None) -> torch.Tensor:
    x = torch.arange(p, dtype=torch.float64)
    period = p if period is None else period
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, (p - 1) // 2 + 1):
        c, s = torch.cos(2 * math.pi * k * x / period), torch.sin(2 * math.pi * k * x / period)
        rows += [s, c] if sin_first else [c, s]
    B = torch.stack(rows)
    if normalise:
        B = B / B.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return B.float()


# -- 1. Fourier basis --------------------------------------------------------------------------
def _basis_cases(seed: int) -> list[Case]:
    return [Case(f"p={p}", {"p": p}) for p in ([5, 113] if seed == 0 else _primes(seed, 2))]


def _basis_reference(p: int) -> torch.Tensor:
    return fourier.fourier_basis(p)[0]


FOURIER_BASIS = Exercise(
    id="w06_fourier_basis",
    title="fourier_basis",
    reference=_basis_reference,
    cases=_basis_cases,
    mistakes=[
        Mistake("not normalised", lambda p: _raw_waves(p, normalise=False),
                "the rows must have unit norm (so the basis is orthonormal): divide each wave by its norm "
                "(sqrt(p) for the constant, sqrt(p/2) for cos and sin)."),
        Mistake("sin before cos", lambda p: _raw_waves(p, sin_first=True),
                "use the course's order: row 2k-1 is cos(w_k x) and row 2k is sin(w_k x)."),
        Mistake("w_k without /p", lambda p: _raw_waves(p, period=1.0),
                "w_k = 2*pi*k/p: you left out the division by p, so every wave is sampled at whole periods."),
    ],
    hint="rows in the order constant, cos 1, sin 1, cos 2, sin 2, ...; every row has unit norm. Self-check: "
         "B @ B.T must be the identity.",
    atol=1e-5,
)


def check_fourier_basis(fn, seed: int | None = None) -> bool:
    """Check ``fourier_basis(p) -> [p, p]`` (rows: const, cos 1, sin 1, ..., unit norm)."""
    return check(FOURIER_BASIS, fn, seed)


# -- 2. 2-D Fourier transform ------------------------------------------------------------------
def _grid_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in ([7, 13] if seed == 0 else _primes(seed, 2)):
        x = torch.randn(p, p, generator=g)
        a = torch.arange(p, dtype=torch.float32)
        x = x + 3 * torch.cos(2 * math.pi * 2 * a / p)[:, None] * torch.sin(2 * math.pi * 1 * a / p)[None, :]
        out.append(Case(f"seed {seed}, p={p}", {"x": x}))
    return out


def _ft2_one_side(x):
    return fourier.fourier_transform_1d(x, dim=0)


def _ft2_untransposed(x):
    B, _ = fourier.fourier_basis(x.shape[0])
    return B @ x @ B


def _ft2_columns(x):
    B, _ = fourier.fourier_basis(x.shape[0])
    return B.T @ x @ B


FOURIER_2D = Exercise(
    id="w06_fourier_transform_2d",
    title="fourier_transform_2d",
    reference=fourier.fourier_transform_2d,
    cases=_grid_cases,
    mistakes=[
        Mistake("only along a", _ft2_one_side,
                "you transformed only the first dimension (a); transform along b too: B @ x @ B.T."),
        Mistake("B on the right without transpose", _ft2_untransposed,
                "on the b side the basis must be transposed: out = B @ x @ B.T (out[i, j] = sum_ab B[i,a] B[j,b] x[a,b])."),
        Mistake("basis as columns", _ft2_columns,
                "the basis vectors are the *rows* of B: out = B @ x @ B.T, not B.T @ x @ B."),
    ],
    hint="transform one axis at a time with the Fourier basis: first the a axis (rows), then the b axis (columns). "
         "Self-check: a constant x puts all its weight at [0, 0].",
    atol=1e-4,
)


def check_fourier_transform_2d(fn, seed: int | None = None) -> bool:
    """Check ``fourier_transform_2d(x [p, p]) -> [p, p]``."""
    return check(FOURIER_2D, fn, seed)


# -- 3. embedding norm per frequency -------------------------------------------------------------
def _embed_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for p, d in ([(7, 4), (13, 16)] if seed == 0 else [(q, 8) for q in _primes(seed, 2)]):
        W = 0.1 * torch.randn(p, d, generator=g)
        a = torch.arange(p, dtype=torch.float32)
        k = int(torch.randint(1, (p - 1) // 2 + 1, (1,), generator=g))
        W = W + torch.cos(2 * math.pi * k * a / p)[:, None] * torch.randn(1, d, generator=g) + 0.5
        out.append(Case(f"seed {seed}, p={p}, d_model={d}", {"W_E": W}))
    return out


def _embed_norms(W_E):
    return fourier.frequency_norms(fourier.fourier_transform_1d(W_E, dim=0))


def _embed_cos_only(W_E):
    c = fourier.fourier_transform_1d(W_E, dim=0).pow(2).sum(-1)
    return torch.cat([c[:1], c[1::2]])


def _embed_not_squared(W_E):
    return _embed_norms(W_E).sqrt()


def _embed_per_row(W_E):
    return fourier.fourier_transform_1d(W_E, dim=0).pow(2).sum(-1)


EMBED_NORMS = Exercise(
    id="w06_embedding_frequency_norms",
    title="embedding_frequency_norms",
    reference=_embed_norms,
    cases=_embed_cases,
    mistakes=[
        Mistake("cos only", _embed_cos_only,
                "a frequency has two basis rows: add the squared norms of both the cos-k row (2k-1) and the sin-k row (2k)."),
        Mistake("not squared", _embed_not_squared,
                "return the *squared* norm per frequency (sum of squares of the cos and sin rows), not its square root."),
        Mistake("one entry per basis row", _embed_per_row,
                "return one entry per *frequency* ((p-1)//2 + 1 of them), not per basis row: add the cos-k row (2k-1) "
                "and the sin-k row (2k) together; entry 0 is the constant."),
    ],
    hint="work in the Fourier basis along the token dimension; frequency k's norm gathers the power of both its cos "
         "and sin components over all of d_model; entry 0 is the constant alone.",
    atol=1e-4,
)


def check_embedding_frequency_norms(fn, seed: int | None = None) -> bool:
    """Check ``embedding_frequency_norms(W_E [p, d_model]) -> [(p-1)//2 + 1]``."""
    return check(EMBED_NORMS, fn, seed)


# -- 4. key frequencies from norms ---------------------------------------------------------------
def _key_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    fractions = [0.5, 0.7, 0.8, 0.95, 0.99]
    for n_freq, n_keys in [(56, 5), (20, 3), (30, 8)]:
        norms = 0.05 * torch.rand(n_freq + 1, generator=g)
        keys = torch.randperm(n_freq, generator=g)[:n_keys] + 1
        # graded key norms (not all far above the floor), so that the fraction decides how many are kept
        norms[keys] = 0.3 + 3 * torch.rand(n_keys, generator=g)
        norms[0] = 10.0  # a big constant term, to be ignored
        fraction = fractions[int(torch.randint(0, len(fractions), (1,), generator=g))]
        out.append(Case(f"seed {seed}, {n_freq} frequencies, {n_keys} keys, fraction {fraction}",
                        {"norms": norms, "fraction": fraction}))
    return out


def _key_with_const(norms, fraction):
    order = norms.double().argsort(descending=True)
    cum = norms.double()[order].cumsum(0) / norms.double().sum()
    n = int((cum < fraction).sum()) + 1
    return sorted(int(k) for k in order[:n])


def _key_fixed_fraction(norms, fraction):
    return key_frequencies(norms, 0.9)


def _key_off_by_one(norms, fraction):
    return [k - 1 for k in key_frequencies(norms, fraction)]


def _key_unsorted(norms, fraction):
    keys = key_frequencies(norms, fraction)
    return sorted(keys, key=lambda k: -float(norms[k]))


def key_frequencies(norms, fraction=0.9):
    """The fewest frequencies (sorted) whose norms reach ``fraction`` of the non-constant total (no cap)."""
    return fourier.key_frequencies_from_norms(norms, fraction, max_keys=len(norms))


KEY_FREQS = Exercise(
    id="w06_key_frequencies",
    title="key_frequencies",
    reference=key_frequencies,
    cases=_key_cases,
    mistakes=[
        Mistake("counted the constant", _key_with_const,
                "entry 0 is the constant term, not a frequency: leave it out (rank and sum only norms[1:])."),
        Mistake("ignored fraction", _key_fixed_fraction,
                "keep frequencies until their share reaches the `fraction` you are given; it is not always 0.9."),
        Mistake("index off by one", _key_off_by_one,
                "indices into norms[1:] start at 0 but frequencies start at 1: add 1."),
        Mistake("not sorted", _key_unsorted,
                "return the frequencies sorted in increasing order (sorted(...))."),
    ],
    hint="rank frequencies 1.. by norm, keep the fewest whose norms add up to `fraction` of the non-constant total, return them sorted.",
)


def check_key_frequencies(fn, seed: int | None = None) -> bool:
    """Check ``key_frequencies(norms, fraction) -> sorted list[int]``."""
    return check(KEY_FREQS, fn, seed)


# -- 5./6. restricted and excluded logits --------------------------------------------------------
def _logit_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in ([11, 13] if seed == 0 else _primes(seed, 2)):
        n_freq = (p - 1) // 2
        freqs = sorted((torch.randperm(n_freq, generator=g)[:2] + 1).tolist())
        s = (torch.arange(p)[:, None] + torch.arange(p)[None, :]).reshape(-1).double()
        c = torch.arange(p).double()
        L = torch.randn(p * p, p, generator=g, dtype=torch.float64) + 2.0
        for k in freqs:
            L = L + 4 * torch.cos(2 * math.pi * k * (s[:, None] - c[None, :]) / p)
        out.append(Case(f"seed {seed}, p={p}, freqs={freqs}", {"logits": L.float(), "freqs": freqs}))
    return out


def _restricted_no_mean(logits, freqs):
    return grokking.key_components(logits, freqs)


def _restricted_cos_only(logits, freqs):
    p = logits.shape[1]
    D = grokking.sum_directions(p, freqs)[0::2]
    L = logits.double()
    return (D.T @ (D @ L) + L.mean(0, keepdim=True)).float()


def _excluded_minus_mean(logits, freqs):
    return logits - grokking.restricted_logits(logits, freqs)


def _excluded_cos_only(logits, freqs):
    p = logits.shape[1]
    D = grokking.sum_directions(p, freqs)[0::2]
    L = logits.double()
    return (L - D.T @ (D @ L)).float()


RESTRICTED = Exercise(
    id="w06_restricted_logits",
    title="restricted_logits",
    reference=grokking.restricted_logits,
    cases=_logit_cases,
    mistakes=[
        Mistake("no mean", _restricted_no_mean,
                "add back each output's mean over all pairs (logits.mean(0)): the key directions have mean zero, so "
                "without it the restricted logits lose the per-output bias."),
        Mistake("cos only", _restricted_cos_only,
                "keep both cos(w_k(a+b)) and sin(w_k(a+b)) for each key frequency: the model's logits use both "
                "(cos(w(a+b-c)) = cos(w(a+b))cos(wc) + sin(w(a+b))sin(wc))."),
        Mistake("returned the excluded logits", grokking.excluded_logits,
                "that is what is *left* after removing the key components (the excluded logits); restricted "
                "logits keep only the key components (plus the mean)."),
    ],
    hint="keep only the logits' components along the key directions cos(w_k(a+b)) and sin(w_k(a+b)) (k in "
         "freqs), then add back each output's mean over pairs; grokking.sum_directions gives the directions.",
    atol=1e-3,
)

EXCLUDED = Exercise(
    id="w06_excluded_logits",
    title="excluded_logits",
    reference=grokking.excluded_logits,
    cases=_logit_cases,
    mistakes=[
        Mistake("removed the mean too", _excluded_minus_mean,
                "remove only the key-frequency components, not each output's mean: subtract key_components, not the "
                "restricted logits."),
        Mistake("cos only", _excluded_cos_only,
                "remove both the cos(w_k(a+b)) and the sin(w_k(a+b)) components of each key frequency."),
        Mistake("returned the restricted logits", grokking.restricted_logits,
                "those are the restricted logits (what is kept); excluded logits are the logits *minus* the key components."),
    ],
    hint="what is left of the logits once their components along the key directions cos(w_k(a+b)) and "
         "sin(w_k(a+b)) (k in freqs) are removed: the complement of restricted_logits.",
    atol=1e-3,
)


def check_restricted_logits(fn, seed: int | None = None) -> bool:
    """Check ``restricted_logits(logits [p*p, p], freqs) -> [p*p, p]``."""
    return check(RESTRICTED, fn, seed)


def check_excluded_logits(fn, seed: int | None = None) -> bool:
    """Check ``excluded_logits(logits [p*p, p], freqs) -> [p*p, p]``."""
    return check(EXCLUDED, fn, seed)


# -- 7. neurons explained by one frequency -------------------------------------------------------
def _neuron_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for p, n in ([(11, 6), (13, 10)] if seed == 0 else [(q, 8) for q in _primes(seed, 2)]):
        a = torch.arange(p, dtype=torch.float32)
        acts = 0.3 * torch.randn(p, p, n, generator=g)
        for j in range(n):
            k = int(torch.randint(1, (p - 1) // 2 + 1, (1,), generator=g))
            ca, sa = torch.cos(2 * math.pi * k * a / p), torch.sin(2 * math.pi * k * a / p)
            w = torch.randn(3, generator=g)
            acts[:, :, j] += w[0] * ca[:, None] + w[1] * ca[:, None] * ca[None, :] + w[2] * sa[:, None] * sa[None, :] + 1.0
        out.append(Case(f"seed {seed}, p={p}, {n} neurons", {"acts": acts}))
    return out


def _neuron_linear_only(acts):
    c = fourier.fourier_transform_2d(acts).pow(2)
    p = acts.shape[0]
    total = c.sum((0, 1)) - c[0, 0]
    rows = [(c[0, [2 * k - 1, 2 * k]].sum(0) + c[[2 * k - 1, 2 * k], 0].sum(0)) / total for k in range(1, (p - 1) // 2 + 1)]
    return torch.stack(rows, 1)


def _neuron_with_const(acts):
    c = fourier.fourier_transform_2d(acts).pow(2)
    p = acts.shape[0]
    total = c.sum((0, 1))
    rows = []
    for k in range(1, (p - 1) // 2 + 1):
        idx = [2 * k - 1, 2 * k]
        rows.append((c[0, idx].sum(0) + c[idx, 0].sum(0) + c[idx][:, idx].sum((0, 1))) / total)
    return torch.stack(rows, 1)


def _neuron_quadratic_only(acts):
    c = fourier.fourier_transform_2d(acts).pow(2)
    p = acts.shape[0]
    total = c.sum((0, 1)) - c[0, 0]
    rows = [c[[2 * k - 1, 2 * k]][:, [2 * k - 1, 2 * k]].sum((0, 1)) / total for k in range(1, (p - 1) // 2 + 1)]
    return torch.stack(rows, 1)


NEURON_FRACTIONS = Exercise(
    id="w06_neuron_frequency_fractions",
    title="neuron_frequency_fractions",
    reference=fourier.neuron_frequency_fractions,
    cases=_neuron_cases,
    mistakes=[
        Mistake("linear terms only", _neuron_linear_only,
                "include the products too: cos(w a)cos(w b), cos(w a)sin(w b), sin(w a)cos(w b), sin(w a)sin(w b) "
                "(entries [2k-1:2k+1, 2k-1:2k+1]) as well as the terms in a alone and b alone."),
        Mistake("quadratic terms only", _neuron_quadratic_only,
                "include the terms in a alone and b alone ([0, 2k-1], [0, 2k], [2k-1, 0], [2k, 0]) as well as the products."),
        Mistake("constant in the total", _neuron_with_const,
                "divide by the *non-constant* power: leave the [0, 0] (mean) entry out of the total."),
    ],
    hint="work with each neuron's 2-D Fourier power; frequency k owns the terms in a alone, in b alone and their "
         "products, and the fraction is relative to the neuron's total power without the constant term.",
    atol=1e-4,
)


def check_neuron_frequency_fractions(fn, seed: int | None = None) -> bool:
    """Check ``neuron_frequency_fractions(acts [p, p, n]) -> [n, (p-1)//2]``."""
    return check(NEURON_FRACTIONS, fn, seed)


# -- 8. the neuron-to-logit map in the Fourier basis ----------------------------------------------
def neuron_logit_frequencies(W_out, W_U):
    """``[n, (p-1)//2 + 1]``: squared norm of each neuron's logit map ``W_out @ W_U`` per output frequency."""
    return fourier.output_frequency_norms(W_out @ W_U)


def _nlf_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in ([11, 13] if seed == 0 else _primes(seed, 2)):
        n, d = int(torch.randint(4, 9, (1,), generator=g)), 6
        out.append(Case(f"seed {seed}, p={p}, {n} neurons", {"W_out": torch.randn(n, d, generator=g),
                                                            "W_U": torch.randn(d, p, generator=g)}))
    return out


def _nlf_not_squared(W_out, W_U):
    return fourier.output_frequency_norms(W_out @ W_U).sqrt()


def _nlf_cos_only(W_out, W_U):
    W = W_out @ W_U
    basis, _ = fourier.fourier_basis(W.shape[1])
    sq = (W @ basis.T).pow(2)
    return torch.cat([sq[:, :1], sq[:, 1::2]], dim=1)


def _nlf_over_neurons(W_out, W_U):
    W = W_out @ W_U
    basis, _ = fourier.fourier_basis(W.shape[1])
    sq = (basis @ W.T).pow(2)  # the same numbers, but [frequency component, neuron]
    return torch.cat([sq[:1], sq[1::2] + sq[2::2]]).T


NEURON_LOGITS = Exercise(
    id="w06_neuron_logit_frequencies",
    title="neuron_logit_frequencies",
    reference=neuron_logit_frequencies,
    cases=_nlf_cases,
    mistakes=[
        Mistake("norm, not squared", _nlf_not_squared,
                "return squared norms (cos^2 + sin^2 per frequency), as for the embedding, not their square root."),
        Mistake("cosines only", _nlf_cos_only,
                "each frequency has a cos and a sin component: add the squares of both (columns 2k-1 and 2k)."),
    ],
    hint="like embedding_frequency_norms, but over the output axis c: each neuron's row of the map to the logits "
         "(W_out then W_U), with the cos-k and sin-k power combined per frequency.",
)


def check_neuron_logit_frequencies(fn, seed: int | None = None) -> bool:
    """Check ``neuron_logit_frequencies(W_out, W_U) -> [n, (p-1)//2 + 1]``."""
    return check(NEURON_LOGITS, fn, seed)


# -- 9. neurons approximated by their key frequencies -----------------------------------------------
def _waves_grid(p: int, n: int, g: torch.Generator) -> torch.Tensor:
    a = torch.arange(p, dtype=torch.float64)[:, None, None]
    b = torch.arange(p, dtype=torch.float64)[None, :, None]
    k = torch.randint(1, (p - 1) // 2 + 1, (n,), generator=g).double()
    ph = torch.rand(n, generator=g, dtype=torch.float64) * 6.28
    w = 2 * math.pi * k / p
    x = torch.cos(w * a + ph) + torch.cos(w * b + ph) + torch.randn(p, p, n, generator=g, dtype=torch.float64) * 0.3
    return torch.relu(x).float()


def _approx_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in ([11, 13] if seed == 0 else _primes(seed, 2)):
        n = int(torch.randint(3, 7, (1,), generator=g))
        n_freq = (p - 1) // 2
        freqs = sorted((torch.randperm(n_freq, generator=g)[: int(torch.randint(1, 3, (1,), generator=g))] + 1).tolist())
        out.append(Case(f"seed {seed}, p={p}, {n} neurons, freqs={freqs}", {"acts": _waves_grid(p, n, g), "freqs": freqs}))
    return out


def _approx_products_only(acts, freqs):
    p = acts.shape[0]
    coeffs = fourier.fourier_transform_2d(acts)
    keep = torch.zeros(p, dtype=torch.bool)
    for k in freqs:
        keep[2 * k - 1] = keep[2 * k] = True
    mask = (keep[:, None] & keep[None, :])[..., None]
    B, _ = fourier.fourier_basis(p)
    return torch.einsum("jb,ajn->abn", B, torch.einsum("ia,ijn->ajn", B, coeffs * mask))


def _approx_no_inverse(acts, freqs):
    mask = fourier.frequency_mask_2d(acts.shape[0], freqs)[..., None]
    return fourier.fourier_transform_2d(acts) * mask


def _approx_no_constant(acts, freqs):
    return fourier.approximate_in_frequencies(acts, freqs) - acts.mean((0, 1), keepdim=True)


def approximate_neurons(acts, freqs):
    """``[p, p, n]``: each neuron keeps only its 2-D Fourier terms in ``freqs`` (and the constant)."""
    return fourier.approximate_in_frequencies(acts, freqs)


APPROX = Exercise(
    id="w06_approximate_neurons",
    title="approximate_neurons",
    reference=approximate_neurons,
    cases=_approx_cases,
    mistakes=[
        Mistake("products only", _approx_products_only,
                "keep the constant and the terms in a alone and b alone too (row 0 and column 0 of the 2-D grid), "
                "not only the products of two waves."),
        Mistake("no way back", _approx_no_inverse,
                "you returned the kept Fourier *coefficients*; transform them back to a function of (a, b) with "
                "the transposed basis (the basis is orthonormal)."),
        Mistake("lost the constant", _approx_no_constant,
                "component [0, 0] (the neuron's mean) is one of the terms to keep."),
    ],
    hint="three steps: into the 2-D Fourier basis, keep only the terms both of whose indices are the constant or a "
         "frequency in freqs, and back again. The basis is orthonormal, so its inverse is its transpose.",
    atol=1e-4,
)


def check_approximate_neurons(fn, seed: int | None = None) -> bool:
    """Check ``approximate_neurons(acts, freqs) -> [p, p, n]``."""
    return check(APPROX, fn, seed)


# -- 10. the loss of the approximation, and of ablating each frequency ----------------------------
def _abl_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for p in ([11, 13] if seed == 0 else _primes(seed, 2)):
        n = int(torch.randint(4, 8, (1,), generator=g))
        n_freq = (p - 1) // 2
        freqs = sorted((torch.randperm(n_freq, generator=g)[: int(torch.randint(2, 4, (1,), generator=g))] + 1).tolist())
        acts = _waves_grid(p, n, g)
        W_L = torch.randn(n, p, generator=g) * 2
        logits = (acts.reshape(p * p, n) @ W_L + torch.randn(p * p, p, generator=g)).float()
        out.append(Case(f"seed {seed}, p={p}, {n} neurons, freqs={freqs}",
                        {"acts": acts, "W_L": W_L, "logits": logits, "freqs": freqs}))
    return out


def _abl_only_k(acts, W_L, logits, freqs):
    out = [grokking.loss_on(grokking.replace_neurons(logits, acts, fourier.approximate_in_frequencies(acts, freqs), W_L))]
    for k in freqs:
        out.append(grokking.loss_on(grokking.replace_neurons(logits, acts, fourier.approximate_in_frequencies(acts, [k]), W_L)))
    return torch.tensor(out, dtype=torch.float64)


def _abl_added(acts, W_L, logits, freqs):
    p = acts.shape[0]
    out = []
    for drop in [None, *freqs]:
        keep = [k for k in freqs if k != drop]
        new = fourier.approximate_in_frequencies(acts, keep)
        out.append(grokking.loss_on(logits + new.reshape(p * p, -1) @ W_L))
    return torch.tensor(out, dtype=torch.float64)


def _abl_wrong_labels(acts, W_L, logits, freqs):
    p = acts.shape[0]
    y = torch.arange(p * p) % p  # b, not (a + b) mod p
    out = []
    for drop in [None, *freqs]:
        keep = [k for k in freqs if k != drop]
        L = grokking.replace_neurons(logits, acts, fourier.approximate_in_frequencies(acts, keep), W_L)
        out.append(float(torch.nn.functional.cross_entropy(L.double(), y)))
    return torch.tensor(out, dtype=torch.float64)


ABLATION = Exercise(
    id="w06_frequency_ablation_losses",
    title="frequency_ablation_losses",
    reference=grokking.frequency_ablation_losses,
    cases=_abl_cases,
    mistakes=[
        Mistake("kept only the ablated frequency", _abl_only_k,
                "ablating frequency k means keeping every key frequency *except* k, not k alone."),
        Mistake("added instead of replaced", _abl_added,
                "the approximation *replaces* the neurons: add (new - acts) @ W_L to the logits, not new @ W_L."),
        Mistake("wrong labels", _abl_wrong_labels,
                "the answer for pair row a*p + b is (a + b) % p."),
    ],
    hint="the MLP is the last layer, so replacing the neurons changes the logits only by the change in the neurons "
         "mapped through W_L; the first loss keeps every key frequency, each later one drops one of them.",
    atol=1e-4,
    rtol=1e-3,
)


def check_frequency_ablation_losses(fn, seed: int | None = None) -> bool:
    """Check ``frequency_ablation_losses(acts, W_L, logits, freqs) -> [1 + len(freqs)]``."""
    return check(ABLATION, fn, seed)


EXERCISES = {ex.id: ex for ex in [FOURIER_BASIS, FOURIER_2D, EMBED_NORMS, KEY_FREQS, RESTRICTED, EXCLUDED,
                                  NEURON_FRACTIONS, NEURON_LOGITS, APPROX, ABLATION]}
