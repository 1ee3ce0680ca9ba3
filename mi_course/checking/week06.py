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
    hint="rows: the constant, then cos(2 pi k x / p), sin(2 pi k x / p) for k = 1..(p-1)//2, each of unit norm.",
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
    hint="out[i, j] = sum over a, b of B[i, a] * B[j, b] * x[a, b], i.e. B @ x @ B.T.",
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
    hint="transform W_E along the token dimension, square, sum over d_model, then add each cos-k/sin-k pair; entry 0 is the constant.",
    atol=1e-4,
)


def check_embedding_frequency_norms(fn, seed: int | None = None) -> bool:
    """Check ``embedding_frequency_norms(W_E [p, d_model]) -> [(p-1)//2 + 1]``."""
    return check(EMBED_NORMS, fn, seed)


# -- 4. key frequencies from norms ---------------------------------------------------------------
def _key_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n_freq, n_keys in [(56, 5), (20, 3)]:
        norms = 0.05 * torch.rand(n_freq + 1, generator=g)
        keys = torch.randperm(n_freq, generator=g)[:n_keys] + 1
        norms[keys] = 2 + 3 * torch.rand(n_keys, generator=g)
        norms[0] = 10.0  # a big constant term, to be ignored
        out.append(Case(f"seed {seed}, {n_freq} frequencies, {n_keys} keys", {"norms": norms, "fraction": 0.9}))
    return out


def _key_with_const(norms, fraction):
    order = norms.double().argsort(descending=True)
    cum = norms.double()[order].cumsum(0) / norms.double().sum()
    n = int((cum < fraction).sum()) + 1
    return sorted(int(k) for k in order[:n])


def _key_off_by_one(norms, fraction):
    return [k - 1 for k in fourier.key_frequencies_from_norms(norms, fraction)]


def _key_unsorted(norms, fraction):
    keys = fourier.key_frequencies_from_norms(norms, fraction)
    return sorted(keys, key=lambda k: -float(norms[k]))


KEY_FREQS = Exercise(
    id="w06_key_frequencies",
    title="key_frequencies",
    reference=fourier.key_frequencies_from_norms,
    cases=_key_cases,
    mistakes=[
        Mistake("counted the constant", _key_with_const,
                "entry 0 is the constant term, not a frequency: leave it out (rank and sum only norms[1:])."),
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
    hint="project each output column of the [p*p, p] logits onto the unit vectors cos(w_k(a+b)), sin(w_k(a+b)) "
         "(k in freqs), sum the projections, and add the mean over pairs.",
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
    hint="logits minus their projection onto the unit vectors cos(w_k(a+b)), sin(w_k(a+b)) for k in freqs.",
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
    hint="2-D transform the [p, p, n] activations, square; for each k add the a-only, b-only and product entries of "
         "frequency k and divide by the total power without the [0, 0] entry.",
    atol=1e-4,
)


def check_neuron_frequency_fractions(fn, seed: int | None = None) -> bool:
    """Check ``neuron_frequency_fractions(acts [p, p, n]) -> [n, (p-1)//2]``."""
    return check(NEURON_FRACTIONS, fn, seed)


EXERCISES = {ex.id: ex for ex in [FOURIER_BASIS, FOURIER_2D, EMBED_NORMS, KEY_FREQS, RESTRICTED, EXCLUDED,
                                  NEURON_FRACTIONS]}
