"""Progress measures for grokking (Nanda, Chan, Lieberum, Smith, Steinhardt; ICLR 2023).

Model-level tools for the modular-addition model ``modadd-p113``: logits and neuron
activations on the full ``[a, b]`` grid, key frequencies, the fraction of the logits explained
by ``cos(w_k (a + b - c))``, and the paper's progress measures:

* **restricted loss**: keep only the logit components along ``cos(w_k (a+b))`` and
  ``sin(w_k (a+b))`` for the key frequencies (plus each output's mean); loss on all pairs.
  Low when the Fourier circuit alone does the task.
* **excluded loss**: remove exactly those components; loss on the *training* pairs. It rises
  during circuit formation, while the train loss stays low: memorisation is being replaced.
* **sum of squared weights**: falls during circuit formation and more sharply during cleanup.

The Fourier basis itself lives in :mod:`mi_course.methods.fourier`. Pair ``(a, b)`` is row
``a * p + b`` of every ``[p*p, ...]`` tensor here (as :func:`mi_course.data.modadd.all_pairs`).
"""

from __future__ import annotations

import math

import torch

from mi_course.data.modadd import all_pairs
from mi_course.errors import InputError
from mi_course.methods.fourier import (
    _check_freqs, fourier_transform_1d, frequency_norms, key_frequencies_from_neurons,
    n_frequencies, neuron_frequency_fractions,
)
from mi_course.zoo import hooks as hk
from mi_course import validation as check


def _p_of(model) -> int:
    """The modulus of a modular-addition model; any other kind of model is a clear error."""
    return check.modadd_p(model)


def _is_plain(model) -> bool:
    from mi_course.zoo.modadd import ModAddTransformer

    return isinstance(model, ModAddTransformer)


def model_state(model) -> dict[str, torch.Tensor]:
    """Bridge-style state dict of a bridge, a :class:`ModAddTransformer` or a state dict itself."""
    if isinstance(model, dict):
        return model
    if _is_plain(model):
        return model.bridge_state_dict()
    if hasattr(model, "state_dict"):
        return model.state_dict()
    raise InputError(f"Expected a model or a state dict, got {type(model).__name__}.")


@torch.no_grad()
def all_logits(model, batch_size: int = 4096) -> torch.Tensor:
    """Logits at the ``=`` position for every pair: ``[p, p, p]`` indexed (a, b, c)."""
    p = _p_of(model)
    tokens = all_pairs(p)
    outs = []
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i: i + batch_size]
        out = model(chunk)
        outs.append(out if _is_plain(model) else out[:, -1, :])
    return torch.cat(outs).reshape(p, p, p).float()


@torch.no_grad()
def neuron_activations(model) -> torch.Tensor:
    """MLP neuron activations (after ReLU) at the ``=`` position: ``[p, p, d_mlp]``."""
    p = _p_of(model)
    tokens = all_pairs(p)
    if _is_plain(model):
        acts = model.neuron_acts(tokens)
    else:
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hk.mlp_post(0))
        acts = cache[hk.mlp_post(0)][:, -1, :]
    return acts.reshape(p, p, -1).float()


def embedding_frequency_norms(model) -> torch.Tensor:
    """Squared norm of the token embedding ``W_E[:p]`` per frequency: ``[(p-1)//2 + 1]`` (0 = constant)."""
    state = model_state(model)
    if "embed.weight" not in state:
        raise InputError("expected a modular-addition model or its state dict (no 'embed.weight' in it)")
    W_E = state["embed.weight"].float()
    p = W_E.shape[0] - 1  # the last token is '='
    if not isinstance(model, dict):
        p = _p_of(model)  # an IOI or text model is refused here, not read as p = d_vocab - 1
    elif "unembed.weight" in state and state["unembed.weight"].shape[0] != p:
        raise InputError(f"expected a modular-addition state dict (d_vocab = p + 1, d_vocab_out = p), got d_vocab "
                         f"{W_E.shape[0]} and d_vocab_out {state['unembed.weight'].shape[0]}")
    return frequency_norms(fourier_transform_1d(W_E[:p], dim=0))


def _logits_2d(logits: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise InputError(f"logits must be a torch.Tensor, got {type(logits).__name__}.")
    if logits.ndim == 3:
        p = logits.shape[-1]
        if logits.shape != (p, p, p):
            raise InputError(f"logits must be [p, p, p] or [p*p, p], got {list(logits.shape)}.")
        return check.finite("logits", logits).reshape(p * p, p)
    if logits.ndim == 2 and logits.shape[0] == logits.shape[1] ** 2:
        return check.finite("logits", logits)
    raise InputError(f"logits must be [p, p, p] or [p*p, p] (every pair, a-major), got {list(logits.shape)}.")


def sum_directions(p: int, freqs: list[int]) -> torch.Tensor:
    """Unit vectors ``cos(w_k (a+b))``, ``sin(w_k (a+b))`` over all pairs: ``[2 * len(freqs), p*p]``."""
    _check_freqs(freqs, n_frequencies(p))
    x = torch.arange(p, dtype=torch.float64)
    s = (x[:, None] + x[None, :]).reshape(-1)
    rows = []
    for k in freqs:
        for f in (torch.cos, torch.sin):
            v = f(2 * math.pi * k * s / p)
            rows.append(v / v.norm())
    return torch.stack(rows)


def key_components(logits: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """The part of the logits along ``cos/sin(w_k (a+b))`` for ``k`` in ``freqs``: ``[p*p, p]``.

    Projects each output's logit column (a function of the pair) onto the key directions of
    :func:`sum_directions` (which are orthonormal, with mean zero over pairs).
    """
    L = _logits_2d(logits).double()
    p = L.shape[1]
    D = sum_directions(p, list(freqs))  # [2K, p*p]
    return (D.T @ (D @ L)).float()


def restricted_logits(logits: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """Key-frequency components plus each output's mean over pairs: ``[p*p, p]``."""
    L = _logits_2d(logits)
    return key_components(L, freqs) + L.mean(0, keepdim=True)


def excluded_logits(logits: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """Logits with the key-frequency components removed: ``[p*p, p]``."""
    L = _logits_2d(logits)
    return L - key_components(L, freqs)


def _labels(p: int) -> torch.Tensor:
    t = all_pairs(p)
    return (t[:, 0] + t[:, 1]) % p


def loss_on(logits: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean cross-entropy (float64) of ``[p*p, p]`` / ``[p,p,p]`` logits on the pairs in ``mask`` (all if None)."""
    L = _logits_2d(logits)
    p = L.shape[1]
    y = _labels(p)
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.shape != (p * p,) or mask.dtype != torch.bool:
            raise InputError(f"mask must be a bool tensor [{p * p}] (e.g. data.is_train).")
        L, y = L[mask], y[mask]
    return float(torch.nn.functional.cross_entropy(L.double(), y))


def accuracy_on(logits: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Accuracy of the logits on the pairs in ``mask`` (all if None)."""
    L = _logits_2d(logits)
    y = _labels(L.shape[1])
    if mask is not None:
        L, y = L[mask], y[mask]
    return float((L.argmax(-1) == y).float().mean())


def restricted_loss(logits: torch.Tensor, freqs: list[int], mask: torch.Tensor | None = None) -> float:
    """Loss of :func:`restricted_logits` (on all pairs unless ``mask``)."""
    return loss_on(restricted_logits(logits, freqs), mask)


def excluded_loss(logits: torch.Tensor, freqs: list[int], train_mask: torch.Tensor) -> float:
    """Loss of :func:`excluded_logits` on the training pairs (``train_mask`` ``[p*p]`` bool)."""
    return loss_on(excluded_logits(logits, freqs), train_mask)


def sum_squared_weights(model) -> float:
    """Sum of the squares of every parameter (the quantity weight decay pushes down)."""
    return float(sum(v.double().pow(2).sum() for v in model_state(model).values()))


def key_frequencies(model, min_fraction: float = 0.5, min_neurons: int = 10) -> dict[int, int]:
    """``{k: n_neurons}``: frequencies that at least ``min_neurons`` MLP neurons are tuned to."""
    return key_frequencies_from_neurons(neuron_activations(model), min_fraction, min_neurons)


def neuron_fractions_explained(model) -> torch.Tensor:
    """Per neuron, the largest share of its variance explained by one frequency: ``[d_mlp]``."""
    return neuron_frequency_fractions(neuron_activations(model)).max(dim=1).values


@torch.no_grad()
def progress_measures(checkpoints, freqs: list[int], train_mask: torch.Tensor, progress: bool = True) -> dict:
    """The paper's progress measures at every saved epoch of a :class:`Checkpoints` run.

    Returns a dict of lists (one entry per checkpoint): ``epoch``, ``train_loss``,
    ``test_loss``, ``test_acc``, ``restricted_loss`` (all pairs), ``excluded_loss`` (train),
    ``sum_sq_weights``, ``embed_key_fraction`` (share of W_E's non-constant norm in ``freqs``).
    """
    from tqdm.auto import tqdm

    out = {k: [] for k in ("epoch", "train_loss", "test_loss", "test_acc", "restricted_loss",
                           "excluded_loss", "sum_sq_weights", "embed_key_fraction")}
    for epoch in tqdm(checkpoints.epochs, desc="progress measures", disable=not progress, leave=False):
        module = checkpoints.module(epoch)
        logits = all_logits(module)
        norms = embedding_frequency_norms(module)
        out["epoch"].append(epoch)
        out["train_loss"].append(loss_on(logits, train_mask))
        out["test_loss"].append(loss_on(logits, ~train_mask))
        out["test_acc"].append(accuracy_on(logits, ~train_mask))
        out["restricted_loss"].append(restricted_loss(logits, freqs))
        out["excluded_loss"].append(excluded_loss(logits, freqs, train_mask))
        out["sum_sq_weights"].append(sum_squared_weights(module))
        out["embed_key_fraction"].append(float(norms[list(freqs)].sum() / norms[1:].sum()))
    return out


def neuron_logit_map(model) -> torch.Tensor:
    """``W_out @ W_U``: ``[d_mlp, p]``, what each neuron adds to each output's logit per unit of activation."""
    state = model_state(model)
    W_out = state["blocks.0.mlp.out.weight"].float().T   # nn.Linear stores [out, in]
    W_U = state["unembed.weight"].float().T
    return W_out @ W_U


def replace_neurons(logits: torch.Tensor, acts: torch.Tensor, new_acts: torch.Tensor, W_L: torch.Tensor) -> torch.Tensor:
    """Logits ``[p*p, p]`` with the neurons' activations ``acts`` ``[p, p, n]`` replaced by ``new_acts``
    (the MLP is the last layer and there is no final LayerNorm, so the change is linear: ``W_L`` ``[n, p]``)."""
    L = _logits_2d(logits)
    p = L.shape[1]
    if acts.shape != new_acts.shape or acts.shape[:2] != (p, p) or W_L.shape != (acts.shape[2], p):
        raise InputError(f"acts and new_acts must be [p, p, n] and W_L [n, p] with p = {p}; got "
                         f"{list(acts.shape)}, {list(new_acts.shape)}, {list(W_L.shape)}")
    return L + (new_acts - acts).reshape(p * p, -1).to(L.dtype) @ W_L.to(L.dtype)


def frequency_ablation_losses(acts: torch.Tensor, W_L: torch.Tensor, logits: torch.Tensor, freqs: list[int]) -> torch.Tensor:
    """``[1 + len(freqs)]`` losses (mean cross-entropy over every pair) of the model with its neurons
    replaced by their key-frequency approximation (:func:`fourier.approximate_in_frequencies`): entry 0
    with every frequency in ``freqs``, entry i with ``freqs[i-1]`` left out."""
    from mi_course.methods.fourier import fourier_basis, fourier_transform_2d, frequency_mask_2d

    if not freqs:
        raise InputError("freqs must name at least one frequency")
    L = _logits_2d(logits)
    p = L.shape[1]
    if acts.ndim != 3 or acts.shape[:2] != (p, p) or W_L.shape != (acts.shape[2], p):
        raise InputError(f"acts must be [p, p, n] and W_L [n, p] with p = {p}; got {list(acts.shape)}, {list(W_L.shape)}")
    # linear all the way: drop the unkept Fourier terms of every neuron, map them to the logits
    # first (n -> p channels), and only then transform back over (a, b)
    coeffs = fourier_transform_2d(acts).double() @ W_L.double()          # [p, p, p_out]
    basis = fourier_basis(p)[0].double()
    out = []
    for drop in [None, *freqs]:
        keep = [k for k in freqs if k != drop]
        removed = coeffs * (~frequency_mask_2d(p, keep)).double()[..., None] if keep else coeffs.clone()
        if not keep:
            removed[0, 0] = 0  # keep the mean of every neuron
        delta = torch.einsum("ia,ijc->ajc", basis, removed)          # back over a, then over b
        delta = torch.einsum("jb,ajc->abc", basis, delta).reshape(p * p, p)
        out.append(loss_on(L.double() - delta))
    return torch.tensor(out, dtype=torch.float64)
