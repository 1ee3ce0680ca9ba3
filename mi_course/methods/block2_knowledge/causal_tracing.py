"""Causal tracing (Meng et al. 2022, *Locating and Editing Factual Associations in GPT*, ROME).

Three runs of the same factual prompt ("Ada Lovelace was born in" -> "London"):

* **clean**: the model as it is; ``P(object)`` is high;
* **corrupted**: Gaussian noise (3x the embeddings' standard deviation) is added to the token
  embeddings (``hook_embed``) of the subject's tokens; ``P(object)`` drops;
* **corrupted-with-restoration**: the corrupted run, but one hidden state at one position is
  copied back from the clean run. If ``P(object)`` comes back, that state carries the fact.

Which state is restored (``kind``), as hook names:

==========  =================================  =============================================
kind        hook                               restored at layer ``L`` (window ``w``)
==========  =================================  =============================================
``hidden``  ``blocks.L.hook_resid_post``       the residual stream after block ``L``
``mlp``     ``blocks.l.hook_mlp_out``          MLP outputs of layers ``l`` in the window
``attn``    ``blocks.l.hook_attn_out``         attention outputs of layers ``l`` in the window
==========  =================================  =============================================

The window follows the ROME code: layers ``max(0, L - w // 2)`` to ``min(n_layers, L - (-w // 2))``
(exclusive), so ``window=1`` restores layer ``L`` alone. The paper used ``window=10`` for MLP and
attention on GPT-2 XL's 48 layers; a 4-layer model needs 1 or 2.

The *indirect effect* of a state is ``P(restored) - P(corrupted)``; averaged over facts it is the
paper's **average indirect effect (AIE)**. Prompts differ in length, so facts are averaged over
**named positions** (:data:`POSITION_NAMES`): first / middle / last subject token, the first
token after the subject, further tokens, and the last token.

The **severed** variant (paper Fig. 3) restores the hidden state while the MLP (or attention)
outputs at the same position in every layer are frozen at their corrupted values: the part of
the restored effect that still needs those MLPs is what is lost.

>>> res = trace(model, "Ada Lovelace was born in", "Ada Lovelace", "London", kind="mlp")
>>> res.scores.shape          # [layer, pos]: P(London) with that state restored
>>> res.low, res.high         # corrupted and clean P(London)

Noise samples are batched: one forward pass per (layer, kind) handles every position and sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.zoo import hooks as hk

KINDS = ("hidden", "mlp", "attn")
HOOKS = {"hidden": hk.resid_post, "mlp": hk.mlp_out, "attn": hk.attn_out}  # kind -> hook name at a layer
#: Named positions, in the paper's order (Fig. 2's rows).
POSITION_NAMES = ("first subject token", "middle subject tokens", "last subject token",
                  "first subsequent token", "further tokens", "last token")
NOISE_FACTOR = 3.0


# -- tokens, subjects and targets -------------------------------------------------------------
def _tokens(model, text: str, prepend_bos: bool = True) -> torch.Tensor:
    if getattr(model, "tokenizer", None) is None:
        raise InputError("this model has no tokenizer, so it cannot read text prompts; load a zoo model with "
                         "a tokenizer (e.g. zoo.load('kb-lm')) or a hub model.")
    return model.to_tokens(text, prepend_bos=prepend_bos)[0]


def target_token(model, target: str | dict | int) -> int:
    """The single token id of ``target`` (a string, ROME's ``{"str": ...}`` or an id).

    Like the ROME code, a string is read with a leading space when that gives a single token
    (BPE vocabularies such as GPT-2's); otherwise as it is (word-level vocabularies).
    Raises :class:`InputError` for a target of several tokens.
    """
    if isinstance(target, dict):
        if "str" not in target:
            raise InputError(f"a target given as a dict needs a 'str' key (ROME's format), got keys {list(target)}")
        target = target["str"]
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < model.cfg.d_vocab:
            raise InputError(f"target token id {target} is outside the vocabulary (0..{model.cfg.d_vocab - 1})")
        return int(target)
    if not isinstance(target, str) or not target.strip():
        raise InputError(f"target must be a non-empty string (or a token id), got {target!r}")
    tries = [target] if target.startswith(" ") else [" " + target, target]
    for t in tries:
        ids = _tokens(model, t, prepend_bos=False)
        if len(ids) == 1:
            return int(ids[0])
    pieces = model.to_str_tokens(_tokens(model, tries[-1], prepend_bos=False))
    raise InputError(f"target {target!r} is {len(pieces)} tokens ({pieces}); causal tracing and ROME here "
                     "measure one next token, so choose a single-token target.")


def subject_range(model, prompt: str, subject: str) -> tuple[int, int]:
    """Token positions ``[start, end)`` of ``subject`` in ``prompt`` (BOS counted, as ``to_tokens`` does).

    Raises :class:`InputError` when the subject does not occur in the prompt.
    """
    if not isinstance(subject, str) or not subject.strip():
        raise InputError(f"subject must be a non-empty string, got {subject!r}")
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be a string, got {type(prompt).__name__}")
    at = prompt.rfind(subject)  # ROME uses the last occurrence
    if at < 0:
        raise InputError(f"subject {subject!r} does not occur in the prompt {prompt!r}; fill the template first "
                         "(prompt.format(subject)) or check the spelling.")
    full = _tokens(model, prompt)
    before = _tokens(model, prompt[:at].rstrip()) if prompt[:at].strip() else full[:1]
    upto = _tokens(model, prompt[: at + len(subject)])
    start, end = len(before), len(upto)
    if not (torch.equal(full[:start], before) and torch.equal(full[:end], upto)) or end <= start:
        raise InputError(f"could not align the subject {subject!r} with the tokens of {prompt!r} "
                         f"({model.to_str_tokens(full)}): the tokenizer merges it with its neighbours.")
    return start, end


def named_positions(start: int, end: int, n_tokens: int) -> dict[str, list[int]]:
    """Positions of each of :data:`POSITION_NAMES` for a subject at ``[start, end)`` in ``n_tokens`` tokens.

    The last token is only ``last token`` (never also ``last subject token`` or a further token).
    """
    last = n_tokens - 1
    groups = {
        "first subject token": [start],
        "middle subject tokens": list(range(start + 1, end - 1)),
        "last subject token": [end - 1] if end - 1 > start else [],
        "first subsequent token": [end] if end < last else [],
        "further tokens": list(range(end + 1, last)),
        "last token": [last],
    }
    if end - 1 == start:  # one-token subject: it is first and last subject token
        groups["last subject token"] = [start]
    return {k: [p for p in v if p != last or k == "last token"] for k, v in groups.items()}


# -- noise ------------------------------------------------------------------------------------
def embedding_std(model, subjects: Sequence[str] | None = None) -> float:
    """Standard deviation of the token embeddings: of the subjects' tokens (the paper) or of all of ``W_E``."""
    W_E = model.W_E.detach()
    if not subjects:
        return float(W_E.std())
    ids = torch.cat([_tokens(model, s, prepend_bos=False) for s in subjects])
    return float(W_E[ids].std())


def make_noise(n_samples: int, n_subject_tokens: int, d_model: int, scale: float, seed: int = 0) -> torch.Tensor:
    """Gaussian noise ``[n_samples, n_subject_tokens, d_model]`` with std ``scale``, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_samples, n_subject_tokens, d_model, generator=g) * scale


# -- the traces -------------------------------------------------------------------------------
@dataclass
class TraceResult:
    """One fact's trace.

    scores: ``[layer, pos]`` P(target) of the corrupted run with that state restored.
    low / high: P(target) of the corrupted / clean run. ``subject``: ``(start, end)`` token range.
    """

    scores: torch.Tensor
    low: float
    high: float
    kind: str
    window: int
    tokens: list[str]
    subject: tuple[int, int]
    target: int
    sever: str | None = None
    positions: dict[str, list[int]] = field(default_factory=dict)

    @property
    def indirect_effect(self) -> torch.Tensor:
        """``[layer, pos]``: P(restored) - P(corrupted)."""
        return self.scores - self.low

    def by_name(self) -> torch.Tensor:
        """``[layer, 6]``: the indirect effect averaged over each named position (NaN where none)."""
        ie = self.indirect_effect
        cols = []
        for name in POSITION_NAMES:
            ps = self.positions[name]
            cols.append(ie[:, ps].mean(1) if ps else torch.full((ie.shape[0],), float("nan")))
        return torch.stack(cols, 1)


def check_model(model) -> None:
    """Raise :class:`InputError` for a model causal tracing and ROME cannot use (no MLPs)."""
    cfg = model.cfg
    if getattr(cfg, "attn_only", False) or not getattr(cfg, "d_mlp", None):
        raise InputError("this model is attention-only and has no MLPs; causal tracing of MLPs and ROME need "
                         "a model with MLP layers (e.g. zoo.load('kb-lm')).")


def check_layer(model, layer: int, what: str = "layer") -> int:
    n = model.cfg.n_layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n:
        raise InputError(f"{what} {layer!r} is out of range: the model has {n} layers (0..{n - 1}).")
    return layer


def window_layers(layer: int, window: int, n_layers: int) -> list[int]:
    """Layers restored for ``layer`` with ``window`` (the ROME code's centred window)."""
    return list(range(max(0, layer - window // 2), min(n_layers, layer - (-window // 2))))


def _prob(logits: torch.Tensor, target: int) -> torch.Tensor:
    return logits[:, -1].float().softmax(-1)[:, target]


@torch.no_grad()
def trace(model, prompt: str, subject: str, target: str | dict | int, kind: str = "hidden", window: int = 1,
          n_samples: int = 10, noise: float | None = None, seed: int = 0, sever: str | None = None,
          layers: Sequence[int] | None = None) -> TraceResult:
    """Causal trace of one fact: P(target) with each (layer, position) state restored.

    model: a TransformerBridge with MLPs and a tokenizer. prompt: the filled prompt (contains ``subject``).
    target: single-token object. kind: ``hidden`` / ``mlp`` / ``attn``. window: layers restored together
    (MLP/attention only; hidden states always one). n_samples: noise samples, batched. noise: its std
    (default 3x the std of all of ``W_E``; pass ``3 * embedding_std(model, subjects)`` for the paper's
    choice, the std over the subjects' token embeddings). sever: ``None``, ``"mlp"`` or ``"attn"``: with ``kind="hidden"``, freeze those outputs at the
    restored position to their corrupted values in every layer (paper Fig. 3).
    Returns a :class:`TraceResult` whose ``scores`` are ``[layer, pos]``.
    """
    check_model(model)
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    if sever not in (None, "mlp", "attn"):
        raise InputError(f"sever must be None, 'mlp' or 'attn', got {sever!r}")
    if sever is not None and kind != "hidden":
        raise InputError("severing applies to hidden-state restoration (kind='hidden'), as in the paper's Fig. 3")
    if not isinstance(window, int) or window < 1:
        raise InputError(f"window must be a positive int, got {window!r}")
    if not isinstance(n_samples, int) or n_samples < 1:
        raise InputError(f"n_samples must be a positive int, got {n_samples!r}")
    n_layers = model.cfg.n_layers
    layers = list(range(n_layers)) if layers is None else [check_layer(model, int(x)) for x in layers]
    start, end = subject_range(model, prompt, subject)
    tgt = target_token(model, target)
    tokens = _tokens(model, prompt)
    P = len(tokens)
    scale = NOISE_FACTOR * embedding_std(model) if noise is None else float(noise)
    eps = make_noise(n_samples, end - start, model.cfg.d_model, scale, seed).to(model.W_E.device)

    def corrupt(batch: int):
        reps = batch // n_samples

        def hook(act, hook):
            act = act.clone()
            act[:, start:end] = act[:, start:end] + eps.repeat(reps, 1, 1).to(act.dtype)
            return act
        return ("hook_embed", hook)

    names = {HOOKS[k](L) for k in KINDS for L in range(n_layers)}
    clean_logits, cache = model.run_with_cache(tokens[None], names_filter=lambda n: n in names)
    high = float(_prob(clean_logits, tgt)[0])
    batch1 = tokens[None].expand(n_samples, P)
    low_logits = model.run_with_hooks(batch1, fwd_hooks=[corrupt(n_samples)])
    low = float(_prob(low_logits, tgt).mean())
    sev_cache: dict[str, torch.Tensor] = {}
    if sever is not None:  # the corrupted run's outputs, to freeze them in the restored runs
        def keep(act, hook, name):
            sev_cache[name] = act.detach().clone()
        sev_names = [HOOKS[sever](L) for L in range(n_layers)]
        model.run_with_hooks(batch1, fwd_hooks=[corrupt(n_samples)] + [
            (n, lambda a, hook, n=n: keep(a, hook, n)) for n in sev_names])

    # One forward per layer: P groups of n_samples rows, group p restores position p.
    big = tokens[None].expand(P * n_samples, P)
    pos_of_row = torch.arange(P).repeat_interleave(n_samples)
    rows = torch.arange(P * n_samples)
    scores = torch.full((n_layers, P), float("nan"))
    for L in layers:
        restore = [L] if kind == "hidden" else window_layers(L, window, n_layers)
        hooks = [corrupt(P * n_samples)]
        for layer in restore:
            name = HOOKS[kind](layer)
            clean = cache[name][0]  # [pos, d_model]

            def put(act, hook, clean=clean):
                act = act.clone()
                act[rows, pos_of_row] = clean[pos_of_row].to(act.dtype)
                return act
            hooks.append((name, put))
        if sever is not None:
            for layer in range(n_layers):
                name = HOOKS[sever](layer)
                frozen = sev_cache[name].repeat(P, 1, 1)  # [P*n, pos, d]

                def freeze(act, hook, frozen=frozen):
                    act = act.clone()
                    act[rows, pos_of_row] = frozen[rows, pos_of_row].to(act.dtype)
                    return act
                hooks.append((name, freeze))
        probs = _prob(model.run_with_hooks(big, fwd_hooks=hooks), tgt)
        scores[L] = probs.view(P, n_samples).mean(1)
    return TraceResult(scores=scores, low=low, high=high, kind=kind, window=window if kind != "hidden" else 1,
                       tokens=list(model.to_str_tokens(tokens)), subject=(start, end), target=tgt, sever=sever,
                       positions=named_positions(start, end, P))


def trace_facts(model, facts: Sequence[dict], kind: str = "hidden", window: int = 1, n_samples: int = 10,
                noise: float | None = None, seed: int = 0, sever: str | None = None,
                progress: bool = True) -> tuple[torch.Tensor, list[TraceResult]]:
    """Average indirect effect over facts, by named position.

    facts: dicts with ``prompt`` (a template with ``{}`` or the filled prompt), ``subject`` and
    ``target`` (or ``target_true``). Returns ``aie [layer, 6]`` (columns :data:`POSITION_NAMES`; NaN where
    no fact has that position) and the per-fact :class:`TraceResult` list.
    """
    if not facts:
        raise InputError("facts is empty: pass at least one {'prompt', 'subject', 'target'} dict")
    results = []
    for f in tqdm(facts, desc=f"tracing ({kind})", disable=not progress):
        prompt = f["prompt"].format(f["subject"]) if "{}" in f["prompt"] else f["prompt"]
        target = f.get("target", f.get("target_true"))
        results.append(trace(model, prompt, f["subject"], target, kind=kind, window=window, n_samples=n_samples,
                             noise=noise, seed=seed, sever=sever))
    return average_by_name(results), results


def average_by_name(results: Sequence[TraceResult]) -> torch.Tensor:
    """``[layer, 6]``: mean over results of :meth:`TraceResult.by_name`, ignoring missing positions."""
    stacked = torch.stack([r.by_name() for r in results])
    return stacked.nanmean(0)


def peak(aie: torch.Tensor) -> tuple[int, str, float]:
    """``(layer, position name, effect)`` of the largest entry of an ``[layer, 6]`` AIE table."""
    a = torch.nan_to_num(aie, nan=float("-inf"))
    i = int(a.argmax())
    L, p = divmod(i, a.shape[1])
    return L, POSITION_NAMES[p], float(aie[L, p])
