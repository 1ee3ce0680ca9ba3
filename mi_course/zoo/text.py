"""The text a zoo language model was trained on: its tokenizer, its corpus as tokens, windows of it.

``text-lm`` (v1) was trained on the standard library (:mod:`mi_course.data.stdlib_corpus`);
``text-lm-v2`` on the standard library plus the installed packages' Python sources
(:mod:`mi_course.data.python_corpus`). Code that needs "text like the model's training text" (SAE and
transcoder recipes, benchmarks) asks here instead of hard-coding one corpus::

    from mi_course.zoo import text
    held = text.windows("text-lm-v2", "heldout", 64)        # [64, n_ctx], fixed
    train = text.windows("text-lm-v2", "train", 512, seed=0)  # [512, n_ctx], random

The python corpus is large (~49M tokens); its tokens are cached on disk after the first call
(``$MI_COURSE_CACHE`` or ``~/.cache/mi-course``, ~100 MB, keyed by the corpus's and the
tokenizer's sha256). It is built from the packages installed here, so on another machine with other
package versions it is a slightly different corpus: its sha256 in the card tells.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import torch

from mi_course.cache import cache_dir
from mi_course.errors import InputError


def corpus_of(name: str) -> str:
    """``"python"`` (stdlib + packages) or ``"stdlib"``: the corpus zoo model ``name`` was trained on."""
    from mi_course import zoo

    extra = zoo.card(name).extra or {}
    if "tokenizer" not in extra:
        raise InputError(f"zoo model '{name}' is not a text model (its card names no tokenizer)")
    return "python" if isinstance(extra.get("corpus"), dict) and "packages" in extra["corpus"] else "stdlib"


def raw_tokenizer(name: str):
    """The model's ``tokenizers.Tokenizer`` (sha256-checked)."""
    from tokenizers import Tokenizer

    from mi_course import zoo
    from mi_course.zoo.cards import verify_file

    card = zoo.card(name)
    extra = card.extra or {}
    if "tokenizer" not in extra:
        raise InputError(f"zoo model '{name}' is not a text model (its card names no tokenizer)")
    path = Path(card.folder) / extra["tokenizer"]
    verify_file(path, extra.get("tokenizer_sha256"), f"tokenizer of '{name}'",
                card.training.get("command", f"mi-course train {name}"))
    return Tokenizer.from_file(str(path))


def _cache_dir() -> Path:
    return cache_dir("tokens")


@lru_cache(maxsize=4)
def tokens(name: str, split: str = "train") -> torch.Tensor:
    """The model's corpus split (``"train"`` or ``"heldout"``) as one 1-D ``LongTensor`` of token ids."""
    if split not in ("train", "heldout"):
        raise InputError(f"split must be 'train' or 'heldout', got {split!r}")
    tok = raw_tokenizer(name)
    if corpus_of(name) == "stdlib":
        from mi_course.data import stdlib_corpus as sc

        return sc.tokenize_split(tok, split)
    from mi_course.data import python_corpus as pc

    key = hashlib.sha256((pc.corpus_info()["sha256"] + tok.to_str()).encode()).hexdigest()[:16]
    path = _cache_dir() / f"python-{key}-{split}.pt"
    if path.exists():
        return torch.load(path, weights_only=True).long()
    ids = pc.tokenize_split(tok, split, progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # processes tokenizing at once each write their own
    torch.save(ids.to(torch.int16), tmp)
    os.replace(tmp, path)
    return ids


def heldout_sample(name: str) -> torch.Tensor | None:
    """The fixed held-out windows shipped beside the checkpoint ``[n, n_ctx]`` (sha256-checked), or ``None``."""
    from safetensors.torch import load_file

    from mi_course import zoo
    from mi_course.zoo.cards import verify_file

    card = zoo.card(name)
    extra = card.extra or {}
    if not extra.get("heldout_sample"):
        return None
    path = Path(card.folder) / extra["heldout_sample"]
    verify_file(path, extra.get("heldout_sample_sha256"), f"held-out windows of '{name}'",
                card.training.get("command", f"mi-course train {name}"))
    return load_file(str(path))["windows"].long()


def windows(name: str, split: str, n: int, seed: int = 0, length: int | None = None) -> torch.Tensor:
    """``[n, length]`` windows (``<|endoftext|>`` first) of the model's corpus: random for ``"train"``
    (seeded), evenly spaced and fixed for ``"heldout"``. ``length`` defaults to the model's context.

    Held-out windows come from the sample shipped beside the checkpoint when it has enough (``n`` of
    them, evenly spaced over it), so they are the same on every machine; otherwise from the corpus.
    """
    from mi_course import zoo
    from mi_course.data import stdlib_corpus as sc

    n = int(n)
    if n < 1:
        raise InputError(f"n must be at least 1 window, got {n}")
    length = length or zoo.card(name).config["n_ctx"]
    if split == "heldout":
        sample = heldout_sample(name)
        if sample is not None and n <= sample.shape[0] and length == sample.shape[1]:
            return sample[torch.linspace(0, sample.shape[0] - 1, n).round().long()]
    ids = tokens(name, split)
    if split == "heldout":
        return sc.heldout_windows(ids, n, length)
    return sc.random_windows(ids, n, length, torch.Generator().manual_seed(seed))
