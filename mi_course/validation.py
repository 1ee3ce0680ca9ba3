"""Checks of what public functions are given, with messages that name the problem.

Every public function of the package validates its inputs with these before doing any work, so a
wrong call raises :class:`~mi_course.errors.InputError` ("tokens must be integer token ids, got
torch.float32") instead of a deep torch traceback or, worse, a silently wrong number.

Bottom floor: imports nothing from the package but :mod:`mi_course.errors` (torch lazily).
"""

from __future__ import annotations

import math
import numbers

from mi_course.errors import InputError

__all__ = [
    "integer", "number", "finite", "tokens", "token_ids", "positions", "layer", "head", "vocab_size",
    "model_config", "modadd_p", "ioi_model",
]


def _torch():
    import torch

    return torch


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` (Python, numpy or 0-dim integer tensor; not bool or float) in ``[low, high)``."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.dtype == torch.bool:
            raise InputError(f"{name} must be an integer, got a tensor of shape {list(value.shape)} ({value.dtype})")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if low is not None and value < low or high is not None and value >= high:
        span = f"{low if low is not None else '-inf'}..{high - 1 if high is not None else 'inf'}"
        raise InputError(f"{name} must be in {span}, got {value}")
    return value


def number(name: str, value) -> float:
    """``value`` as a finite ``float`` (Python/numpy number or 1-element tensor); NaN and inf are refused."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise InputError(f"{name} must be one number, got a tensor of shape {list(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name} is {value}: it must be a finite number (a NaN usually means an empty batch "
                         "or a division by zero upstream)")
    return value


def finite(name: str, t, allow_empty: bool = False):
    """A tensor with no NaN or infinite values (and, unless ``allow_empty``, at least one element)."""
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.numel() == 0 and not allow_empty:
        raise InputError(f"{name} is empty (shape {list(t.shape)})")
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            kind = "NaN" if bool(torch.isnan(t).any()) else "infinite"
            raise InputError(f"{name} has {int(bad.sum())} {kind} value(s) of {t.numel()}; expected finite numbers")
    return t


def vocab_size(model) -> int:
    """The number of token ids ``model`` reads (``cfg.d_vocab``)."""
    cfg = model_config(model)
    return int(cfg["d_vocab"])


def model_config(model) -> dict:
    """``model.cfg`` as a dict (a TransformerBridge config, a plain dict, or a plain-torch model's ``cfg``)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise InputError(f"expected a model (a TransformerBridge from mi_course.zoo.load), got "
                         f"{type(model).__name__}")
    if isinstance(cfg, dict):
        return cfg
    keys = ("d_vocab", "d_vocab_out", "n_ctx", "n_layers", "n_heads", "d_model", "d_head", "d_mlp", "attn_only")
    return {k: getattr(cfg, k) for k in keys if hasattr(cfg, k)}


def tokens(name: str, t, model=None, ndim: int = 2):
    """Integer token ids ``[batch, pos]`` (``ndim=2``) with at least one prompt and one position; with
    ``model``, every id below its vocabulary size and no longer than its context."""
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of token ids, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"{name} must be integer token ids (torch.long), got {t.dtype}: pass ids from the "
                         "tokenizer or the dataset, not embeddings or probabilities")
    if t.ndim != ndim:
        want = "[batch, pos]" if ndim == 2 else f"{ndim} dimensions"
        raise InputError(f"{name} has shape {list(t.shape)}, expected {want}")
    if t.numel() == 0:
        raise InputError(f"{name} is empty (shape {list(t.shape)}): give at least one prompt of at least one token")
    if bool((t < 0).any()):
        raise InputError(f"{name} has negative token ids (min {int(t.min())})")
    if model is not None:
        cfg = model_config(model)
        d_vocab = int(cfg.get("d_vocab", 0) or 0)
        if d_vocab and int(t.max()) >= d_vocab:
            raise InputError(f"{name} has token ids up to {int(t.max())}, but the model's vocabulary has {d_vocab} ids "
                             f"(0..{d_vocab - 1}): were these tokens made for another model?")
        n_ctx = int(cfg.get("n_ctx", 0) or 0)
        if n_ctx and t.shape[-1] > n_ctx:
            raise InputError(f"{name} has {t.shape[-1]} positions, more than the model's context of {n_ctx}")
    return t


def token_ids(name: str, t, vocab: int, n: int | None = None):
    """A ``[n]`` integer tensor of ids, each in ``0..vocab-1`` (answer tokens, for instance)."""
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of token ids, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"{name} must be integer token ids, got {t.dtype}")
    if t.ndim != 1 or (n is not None and t.shape[0] != n):
        raise InputError(f"{name} has shape {list(t.shape)}, expected [{n if n is not None else 'batch'}]")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= vocab):
        bad = int(t.max()) if int(t.max()) >= vocab else int(t.min())
        raise InputError(f"{name} has token id {bad}, outside the vocabulary 0..{vocab - 1}")
    return t


def positions(name: str, p, seq_len: int, n: int | None = None):
    """An int or a ``[n]`` integer tensor of positions, each in ``-seq_len..seq_len-1``."""
    torch = _torch()
    if isinstance(p, torch.Tensor):
        if p.is_floating_point() or p.is_complex() or p.dtype == torch.bool:
            raise InputError(f"{name} must be integer positions, got {p.dtype}")
        if p.ndim != 1 or (n is not None and p.shape[0] != n):
            raise InputError(f"{name} has shape {list(p.shape)}, expected [{n if n is not None else 'batch'}] "
                             "(one position per prompt)")
        if p.numel() and (int(p.max()) >= seq_len or int(p.min()) < -seq_len):
            bad = int(p.max()) if int(p.max()) >= seq_len else int(p.min())
            raise InputError(f"{name} has position {bad}, outside the {seq_len} positions of the prompts "
                             f"(valid: {-seq_len}..{seq_len - 1})")
        return p
    return integer(name, p, -seq_len, seq_len)


def layer(model, value, name: str = "layer") -> int:
    """A layer number of ``model``."""
    n = int(model_config(model).get("n_layers", 0))
    return integer(name, value, 0, n)


def head(model, layer_: int, head_: int) -> tuple[int, int]:
    """A ``(layer, head)`` of ``model``."""
    n = int(model_config(model).get("n_heads", 0))
    return layer(model, layer_), integer("head", head_, 0, n)


def modadd_p(model) -> int:
    """The modulus ``p`` of a modular-addition model (``modadd-p113``): ``d_vocab == p + 1`` (the ``=``
    token) and ``d_vocab_out == p``; anything else is another kind of model."""
    cfg = model_config(model)
    p, d_vocab, n_ctx = cfg.get("d_vocab_out"), cfg.get("d_vocab"), cfg.get("n_ctx")
    if p is None or d_vocab is None or int(p) < 0 or int(d_vocab) != int(p) + 1 or (n_ctx is not None and int(n_ctx) < 3):
        card = getattr(getattr(model, "zoo_card", None), "name", None)
        raise InputError(f"expected a modular-addition model such as modadd-p113 (inputs [a, b, =], d_vocab = p + 1, "
                         f"d_vocab_out = p), got {card or type(model).__name__} with d_vocab {d_vocab}, "
                         f"d_vocab_out {p}")
    return int(p)


def ioi_model(model, ds, word_vocab: int) -> None:
    """``model`` reads the vocabulary ``ds`` (an IOI dataset) was encoded with; ``word_vocab`` is the size
    of ioi-lm's word vocabulary (``len(mi_course.data.ioi.vocabulary())``)."""
    if not hasattr(ds, "tokens") or not hasattr(ds, "pos"):
        raise InputError(f"ds must be an IOIDataset (mi_course.data.ioi.make_ioi), got {type(ds).__name__}")
    d_vocab = vocab_size(model)
    encoder = getattr(ds, "encoder", "ioi-lm")
    card = getattr(getattr(model, "zoo_card", None), "name", None) or type(model).__name__
    if encoder == "ioi-lm":
        want = int(word_vocab)
        if d_vocab != want:
            raise InputError(f"these IOI prompts are encoded with ioi-lm's word vocabulary ({want} ids), but the model "
                             f"({card}) has a vocabulary of {d_vocab}: load ioi-lm, or re-encode the prompts for "
                             "this model (ds.to_gpt2(...) / encode_gpt2(ds, model) for a GPT-2 tokenizer)")
    elif encoder == "gpt2" and d_vocab < 50257:
        raise InputError(f"these IOI prompts are encoded with the GPT-2 tokenizer (50257 ids), but the model ({card}) "
                         f"has a vocabulary of {d_vocab}")
    tokens("ds.tokens", ds.tokens, model)
