"""A text corpus that exists on every machine: the Python standard library's own source.

Code, comments and docstrings of the ``.py`` files under ``sysconfig.get_paths()["stdlib"]``,
read where they lie (nothing is copied into the repository). The file list is sorted and
filtered by fixed rules (no tests, no third-party ``site-packages``, no generated tables, no
machine-specific files), and each file goes to ``train`` or ``heldout`` by a hash of its
relative path, so the corpus and its split are the same on every machine with the same
Python version. :func:`corpus_info` records the version and a sha256 of the whole corpus.

>>> docs = load_documents("heldout")          # list of (relative path, text)
>>> tokens = tokenize_split(tokenizer, "heldout")   # 1-D LongTensor, documents joined by <|endoftext|>
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from mi_course.errors import InputError

#: Folders (any path component) left out: tests, third-party packages, GUI/demo code,
#: generated tables and data, vendored installers.
EXCLUDED_DIRS = frozenset({
    "test", "tests", "site-packages", "dist-packages", "idlelib", "lib2to3", "pydoc_data",
    "encodings", "turtledemo", "ensurepip", "__pycache__", "lib-dynload", "__phello__",
})
#: Files larger than this are generated tables (unicode data, opcode maps): left out.
MAX_FILE_BYTES = 250_000
#: One file in ``HELDOUT_MODULUS`` (by hash of its relative path) is held out.
HELDOUT_MODULUS = 20
#: The separator (and beginning-of-sequence) token of the text model's tokenizer.
EOT = "<|endoftext|>"


def stdlib_root() -> Path:
    """Where this interpreter's standard library lies."""
    return Path(sysconfig.get_paths()["stdlib"])


def _included(rel: Path, excluded_dirs: frozenset = EXCLUDED_DIRS) -> bool:
    """Whether a ``.py`` file at ``rel`` (relative to its root) belongs to a corpus: no test folders
    or test files, no machine-specific or generated modules, nothing under ``excluded_dirs``."""
    parts = rel.parts
    if any(p in excluded_dirs or p.startswith("config-") for p in parts[:-1]):
        return False
    name = parts[-1]
    return not (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
                or name.startswith("_sysconfigdata") or name == "__hello__.py")


def split_of(rel_path: str) -> str:
    """``"heldout"`` for one file in 20 (fixed by the sha256 of its relative path), else ``"train"``."""
    h = int(hashlib.sha256(rel_path.encode()).hexdigest()[:8], 16)
    return "heldout" if h % HELDOUT_MODULUS == 0 else "train"


@lru_cache(maxsize=2)
def _file_list(root: str) -> tuple[tuple[str, str], ...]:
    """Sorted ``(relative posix path, split)`` of the corpus files under ``root``."""
    base = Path(root)
    out = []
    for f in sorted(base.rglob("*.py")):
        rel = f.relative_to(base)
        if not _included(rel) or not f.is_file() or f.stat().st_size > MAX_FILE_BYTES:
            continue
        out.append((rel.as_posix(), split_of(rel.as_posix())))
    return tuple(out)


def files(split: str = "train", root: Path | None = None) -> list[str]:
    """Relative paths of the corpus files in ``split`` (``"train"``, ``"heldout"`` or ``"all"``)."""
    if split not in ("train", "heldout", "all"):
        raise InputError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    root = Path(root) if root else stdlib_root()
    return [p for p, s in _file_list(str(root)) if split == "all" or s == split]


def decode(raw: bytes) -> str:
    """A source file's text from its bytes (UTF-8; undecodable bytes replaced; ``\\n`` line endings)."""
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n")


def read(rel_path: str, root: Path | None = None) -> str:
    """One file's text (UTF-8; undecodable bytes replaced; line endings normalised to ``\\n``)."""
    root = Path(root) if root else stdlib_root()
    return decode((root / rel_path).read_bytes())


def load_documents(split: str = "train", root: Path | None = None) -> list[tuple[str, str]]:
    """``[(relative path, text), ...]`` of a split, in sorted path order."""
    return [(p, read(p, root)) for p in files(split, root)]


@dataclass
class CorpusInfo:
    python_version: str
    root: str
    n_files_train: int
    n_files_heldout: int
    bytes_train: int
    bytes_heldout: int
    sha256: str  # over every (path, text) of both splits, in order

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@lru_cache(maxsize=2)
def _corpus_info(root: str) -> CorpusInfo:
    h = hashlib.sha256()
    n = {"train": 0, "heldout": 0}
    size = {"train": 0, "heldout": 0}
    for rel, split in _file_list(root):
        text = read(rel, Path(root))
        data = text.encode("utf-8")
        h.update(rel.encode() + b"\0" + data + b"\0")
        n[split] += 1
        size[split] += len(data)
    return CorpusInfo(
        python_version=".".join(map(str, sys.version_info[:3])),
        root=root,
        n_files_train=n["train"], n_files_heldout=n["heldout"],
        bytes_train=size["train"], bytes_heldout=size["heldout"],
        sha256=h.hexdigest(),
    )


def corpus_info(root: Path | None = None) -> CorpusInfo:
    """Python version, file counts, sizes and sha256 of the corpus (to record on a model card)."""
    return _corpus_info(str(Path(root) if root else stdlib_root()))


def iter_texts(split: str = "train", root: Path | None = None):
    """The texts of a split, one file at a time (for tokenizer training)."""
    for p in files(split, root):
        yield read(p, root)


def tokenize_split(tokenizer, split: str = "train", root: Path | None = None, max_files: int | None = None) -> torch.Tensor:
    """All documents of ``split`` as one 1-D ``LongTensor``, each preceded by ``<|endoftext|>``.

    ``tokenizer`` is a ``tokenizers.Tokenizer`` (raw, not the transformers wrapper).
    """
    paths = files(split, root)[:max_files]
    return tokenize_texts(tokenizer, [read(p, root) for p in paths])


def tokenize_texts(tokenizer, texts) -> torch.Tensor:
    """Documents joined into one 1-D ``LongTensor``, each preceded by ``<|endoftext|>``."""
    eot = tokenizer.token_to_id(EOT)
    if eot is None:
        raise InputError(f"the tokenizer has no {EOT!r} token; build it with mi_course.data.stdlib_corpus.train_tokenizer")
    encs = tokenizer.encode_batch(list(texts))
    ids: list[int] = []
    for e in encs:
        ids.append(eot)
        ids.extend(e.ids)
    return torch.tensor(ids, dtype=torch.long)


def train_tokenizer(vocab_size: int = 4096, root: Path | None = None):
    """A byte-level BPE tokenizer trained on the ``train`` split; id 0 is ``<|endoftext|>``.

    Deterministic given the same corpus (files are fed in sorted order).
    """
    return train_tokenizer_on(iter_texts("train", root), vocab_size)


def train_tokenizer_on(texts, vocab_size: int = 4096):
    """A byte-level BPE tokenizer (id 0 ``<|endoftext|>``) trained on an iterable of texts, in order."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def random_windows(tokens: torch.Tensor, n: int, length: int, generator: torch.Generator, bos: int = 0) -> torch.Tensor:
    """``[n, length]`` windows: ``bos`` followed by ``length-1`` consecutive tokens from a random offset."""
    if tokens.ndim != 1 or tokens.numel() < length:
        raise InputError(f"tokens must be a 1-D tensor with at least {length} entries, got shape {list(tokens.shape)}")
    starts = torch.randint(0, tokens.numel() - length + 1, (n,), generator=generator)
    idx = starts[:, None] + torch.arange(length - 1)[None, :]
    out = torch.empty(n, length, dtype=torch.long)
    out[:, 0] = bos
    out[:, 1:] = tokens[idx]
    return out


def heldout_windows(tokens: torch.Tensor, n: int, length: int, bos: int = 0) -> torch.Tensor:
    """``[n, length]`` evenly spaced, non-overlapping windows of held-out tokens (fixed, no randomness)."""
    step = max((tokens.numel() - length) // max(n, 1), length - 1)
    starts = [i * step for i in range(n) if i * step + length - 1 <= tokens.numel()]
    if not starts:
        raise InputError(f"only {tokens.numel()} tokens: too few for windows of {length}")
    out = torch.full((len(starts), length), bos, dtype=torch.long)
    for r, s in enumerate(starts):
        out[r, 1:] = tokens[s : s + length - 1]
    return out
