"""A larger text corpus that exists on every course machine: the Python sources of the course's own stack.

The standard library (exactly as :mod:`mi_course.data.stdlib_corpus` selects it) plus the ``.py``
files of the course's installed dependencies (torch, transformers, numpy, sympy, networkx,
matplotlib, jupyter and friends: the transitive closure of ``mi-course``'s requirements), read
where they lie (nothing is copied into the repository). Rules, all fixed:

- a distribution's files are the ``.py`` entries of its ``RECORD``, under its own install root;
- test folders and files (``test/``, ``tests/``, ``test_*.py``, ``*_test.py``, ``conftest.py``) and
  files over :data:`~mi_course.data.stdlib_corpus.MAX_FILE_BYTES` (generated tables) are left out;
- exact duplicates (same text) are kept once: the first in corpus order (stdlib first, then the
  distributions by normalised name, each file list sorted);
- each file goes to ``train`` or ``heldout`` by a hash of its key (``stdlib/<path>`` files keep the
  stdlib corpus's own split), so the held-out split is by file.

Given the same interpreter and the same package versions the corpus is the same, byte for byte;
:func:`corpus_info` returns the manifest for a model card (packages with versions, file counts,
bytes, and a sha256 of the whole corpus).

>>> info = corpus_info()                         # the manifest
>>> docs = load_documents("heldout")            # [(key, text), ...]
>>> ids = tokenize_split(raw_tokenizer, "heldout")  # 1-D LongTensor, documents joined by <|endoftext|>
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from mi_course.data import stdlib_corpus as sc
from mi_course.errors import InputError

#: The distribution whose requirements (transitively) make up the corpus by default.
ROOT_DISTRIBUTION = "mi-course"
#: Folders left out inside a distribution (any path component).
EXCLUDED_DIRS = frozenset({"test", "tests", "__pycache__"})
#: Distributions never included (the course itself, its build tools).
EXCLUDED_DISTRIBUTIONS = frozenset({"mi-course", "pip", "setuptools", "wheel"})

EOT = sc.EOT


def _norm(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _root_requirements() -> list[str]:
    """``mi-course``'s own (non-extra) requirements: from its installed metadata, else its pyproject."""
    try:
        reqs = md.distribution(ROOT_DISTRIBUTION).requires or []
    except md.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        reqs = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return list(reqs)


def _distributions(site_paths: tuple[str, ...] | None) -> dict[str, md.Distribution]:
    dists = md.distributions(path=list(site_paths)) if site_paths is not None else md.distributions()
    out: dict[str, md.Distribution] = {}
    for d in dists:
        name = d.metadata["Name"]
        if name and _norm(name) not in out:  # first on the path wins, as for imports
            out[_norm(name)] = d
    return out


def dependency_closure(requirements: list[str], site_paths: tuple[str, ...] | None = None) -> list[str]:
    """Normalised names of the installed distributions that ``requirements`` need, transitively.

    Environment markers are evaluated for this interpreter with no extras; requirements that are
    not installed are skipped. Sorted.
    """
    from packaging.requirements import Requirement

    dists = _distributions(site_paths)
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _norm(req.name)
        if name in seen or name not in dists:
            continue
        seen.add(name)
        todo.extend(dists[name].requires or [])
    return sorted(seen - EXCLUDED_DISTRIBUTIONS)


@dataclass(frozen=True)
class SourceFile:
    """One corpus file: where it comes from (``"stdlib"`` or a distribution), its path there, its split."""

    source: str
    rel: str
    path: str
    split: str

    @property
    def key(self) -> str:
        return f"{self.source}/{self.rel}"


@dataclass
class Corpus:
    files: tuple[SourceFile, ...]
    packages: dict[str, str]  # normalised name -> version
    python_version: str
    stdlib_root: str
    duplicates_removed: int
    bytes_by_source: dict[str, int] = field(default_factory=dict)
    files_by_source: dict[str, int] = field(default_factory=dict)
    bytes_by_split: dict[str, int] = field(default_factory=dict)
    sha256: str = ""


def _package_files(dist: md.Distribution) -> list[tuple[str, Path]]:
    """``(relative posix path, absolute path)`` of a distribution's corpus files, sorted."""
    base = Path(dist.locate_file("")).resolve()
    out = []
    for f in dist.files or []:
        rel = Path(str(f))
        if rel.suffix != ".py" or ".." in rel.parts or not sc._included(rel, EXCLUDED_DIRS):
            continue
        p = base / rel
        if p.is_file() and p.stat().st_size <= sc.MAX_FILE_BYTES:
            out.append((rel.as_posix(), p))
    return sorted(set(out))


@lru_cache(maxsize=4)
def _build(stdlib_root: str, site_paths: tuple[str, ...] | None, packages: tuple[str, ...] | None) -> Corpus:
    dists = _distributions(site_paths)
    names = list(packages) if packages is not None else dependency_closure(_root_requirements(), site_paths)
    missing = [n for n in names if _norm(n) not in dists]
    if missing:
        raise InputError(f"packages not installed here: {', '.join(missing)}")
    names = sorted({_norm(n) for n in names})
    candidates: list[tuple[str, str, Path, str]] = []
    root = Path(stdlib_root)
    for rel, split in sc._file_list(stdlib_root):
        candidates.append(("stdlib", rel, root / rel, split))
    for name in names:
        for rel, p in _package_files(dists[name]):
            candidates.append((name, rel, p, sc.split_of(f"{name}/{rel}")))
    seen: set[str] = set()
    kept: list[SourceFile] = []
    h = hashlib.sha256()
    nbytes: dict[str, int] = {}
    nfiles: dict[str, int] = {}
    by_split = {"train": 0, "heldout": 0}
    dup = 0
    for source, rel, p, split in candidates:
        data = sc.decode(p.read_bytes()).encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            dup += 1
            continue
        seen.add(digest)
        f = SourceFile(source, rel, str(p), split)
        kept.append(f)
        h.update(f.key.encode() + b"\0" + data + b"\0")
        nbytes[source] = nbytes.get(source, 0) + len(data)
        nfiles[source] = nfiles.get(source, 0) + 1
        by_split[split] += len(data)
    return Corpus(
        files=tuple(kept),
        packages={n: dists[n].version for n in names},
        python_version=".".join(map(str, sys.version_info[:3])),
        stdlib_root=stdlib_root, duplicates_removed=dup,
        bytes_by_source=nbytes, files_by_source=nfiles, bytes_by_split=by_split, sha256=h.hexdigest(),
    )


def build(stdlib_root: Path | None = None, site_paths: list[Path] | None = None,
          packages: list[str] | None = None) -> Corpus:
    """The corpus (file list, packages, sha256), built once per process and cached.

    ``stdlib_root`` defaults to this interpreter's stdlib; ``site_paths`` (folders holding
    ``*.dist-info``) default to ``sys.path``; ``packages`` defaults to the transitive requirements of
    ``mi-course``. Reads every file once (about a minute for ~150 MB on a slow disk).
    """
    sp = tuple(str(Path(p)) for p in site_paths) if site_paths is not None else None
    pk = tuple(packages) if packages is not None else None
    return _build(str(Path(stdlib_root) if stdlib_root else sc.stdlib_root()), sp, pk)


def files(split: str = "train", corpus: Corpus | None = None) -> list[SourceFile]:
    """The corpus files of ``split`` (``"train"``, ``"heldout"`` or ``"all"``), in corpus order."""
    if split not in ("train", "heldout", "all"):
        raise InputError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    corpus = corpus or build()
    return [f for f in corpus.files if split == "all" or f.split == split]


def read(f: SourceFile) -> str:
    """One file's text (as the stdlib corpus reads it)."""
    return sc.decode(Path(f.path).read_bytes())


def iter_texts(split: str = "train", corpus: Corpus | None = None, max_files: int | None = None):
    """The texts of a split, one file at a time, in corpus order."""
    for f in files(split, corpus)[:max_files]:
        yield read(f)


def load_documents(split: str = "train", corpus: Corpus | None = None) -> list[tuple[str, str]]:
    """``[(key, text), ...]`` of a split."""
    return [(f.key, read(f)) for f in files(split, corpus)]


def tokenize_split(tokenizer, split: str = "train", corpus: Corpus | None = None, max_files: int | None = None,
                   progress: bool = False, chunk: int = 256) -> torch.Tensor:
    """All documents of ``split`` as one 1-D ``LongTensor`` ``[n_tokens]``, each preceded by ``<|endoftext|>``.

    ``tokenizer`` is a raw ``tokenizers.Tokenizer``. Streams ``chunk`` files at a time (a progress
    bar with ``progress``), so memory holds the ids, not the texts.
    """
    from tqdm.auto import tqdm

    fs = files(split, corpus)[:max_files]
    parts: list[torch.Tensor] = []
    bar = tqdm(total=len(fs), desc=f"tokenize {split}", unit="file", disable=not progress, leave=False)
    for i in range(0, len(fs), chunk):
        batch = fs[i : i + chunk]
        parts.append(sc.tokenize_texts(tokenizer, [read(f) for f in batch]).to(torch.int32))
        bar.update(len(batch))
    bar.close()
    if not parts:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat(parts).long()


def train_tokenizer(vocab_size: int = 4096, corpus: Corpus | None = None, max_files: int | None = None):
    """A byte-level BPE tokenizer (id 0 ``<|endoftext|>``) trained on the train split, in corpus order."""
    return sc.train_tokenizer_on(iter_texts("train", corpus, max_files), vocab_size)


def corpus_info(corpus: Corpus | None = None) -> dict:
    """The manifest for a model card: Python version, packages with versions, file counts, bytes, sha256."""
    c = corpus or build()
    n = {"train": 0, "heldout": 0}
    for f in c.files:
        n[f.split] += 1
    size = c.bytes_by_split
    return {
        "python_version": c.python_version,
        "stdlib_root": c.stdlib_root,
        "packages": dict(c.packages),
        "n_files_train": n["train"], "n_files_heldout": n["heldout"],
        "bytes_train": size["train"], "bytes_heldout": size["heldout"],
        "files_by_source": dict(c.files_by_source), "bytes_by_source": dict(c.bytes_by_source),
        "exact_duplicates_removed": c.duplicates_removed,
        "sha256": c.sha256,
    }
