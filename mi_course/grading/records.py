"""Trusted verdicts: load what a student's kernel recorded and compare it with the reference
here, in the grader's own interpreter, which no student code has touched."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from mi_course.checking import core

MAX_RECORD_BYTES = 32 * 1024 * 1024
NAME = re.compile(r"^(?P<ex>[A-Za-z0-9_]+)\.(?P<seed>-?\d+)\.(?P<nonce>[0-9a-f]+)\.pt$")


@lru_cache(maxsize=1)
def exercises() -> dict[str, core.Exercise]:
    """Every exercise of every ``mi_course.checking.weekNN`` module, by id."""
    import mi_course.checking as pkg

    out: dict[str, core.Exercise] = {}
    for mod in pkgutil.iter_modules(pkg.__path__):
        if re.fullmatch(r"week\d+", mod.name):
            out.update(getattr(importlib.import_module(f"mi_course.checking.{mod.name}"), "EXERCISES", {}))
    return out


def list_records(folder: Path, nonce: str) -> set[tuple[str, int]]:
    """(exercise, seed) of the records in ``folder`` made in this run (other names are ignored)."""
    found = set()
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return found
    for name in names:
        m = NAME.match(name)
        if m and m["nonce"] == nonce:
            found.add((m["ex"], int(m["seed"])))
    return found


@dataclass
class RecordVerdict:
    passed: bool
    status: str  # passed | failed | missing | invalid | error | memory
    message: str  # for instructors
    safe: str = ""  # for students: nothing the student's code could have written into it

    def __post_init__(self) -> None:
        self.safe = self.safe or self.message


def _numeric(v: Any) -> bool:
    """Only tensors and numbers (no text a student's code controls)."""
    if isinstance(v, (list, tuple)):
        return all(_numeric(x) for x in v)
    return isinstance(v, (torch.Tensor, int, float, bool)) or v is None


@lru_cache(maxsize=256)
def _reference(ex_id: str, seed: int) -> tuple[list[core.Case], list[Any]]:
    ex = exercises()[ex_id]
    cases = ex.cases(seed)
    return cases, [core._to_comparable(core._run(ex.reference, c), ex.normalize) for c in cases]


def _load(path: Path) -> Any:
    if path.is_symlink() or not path.is_file():
        raise ValueError("not a regular file")
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise ValueError(f"record larger than {MAX_RECORD_BYTES // 2**20} MB")
    with open(path, "rb") as fh:
        data = fh.read(MAX_RECORD_BYTES + 1)
    import io

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def judge(folder: Path, nonce: str, ex_id: str, seed: int) -> RecordVerdict:
    """Compare the recorded outputs for (exercise, seed) with the reference, computed here."""
    ex = exercises().get(ex_id)
    if ex is None:
        return RecordVerdict(False, "invalid", f"unknown exercise {ex_id!r}")
    path = folder / f"{ex_id}.{seed}.{nonce}.pt"
    if not path.exists():
        return RecordVerdict(False, "missing", "no record: the test's checker call did not run")
    try:
        rec = _load(path)
        if not isinstance(rec, dict) or rec.get("exercise") != ex_id or rec.get("seed") != seed \
                or rec.get("nonce") != nonce or not isinstance(rec.get("results"), list):
            raise ValueError("record does not describe this test")
    except Exception as err:  # noqa: BLE001  (anything wrong with the file is the submission's fault)
        return RecordVerdict(False, "invalid", f"unreadable record ({type(err).__name__}: {str(err)[:120]})")
    cases, expected = _reference(ex_id, seed)
    results = rec["results"]
    if len(results) != len(cases):
        return RecordVerdict(False, "invalid", "record has the wrong number of cases")
    for i, (case, item, exp) in enumerate(zip(cases, results, expected)):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            return RecordVerdict(False, "invalid", "malformed record")
        status, value = item
        if status == "not_implemented":
            return RecordVerdict(False, "failed", "not implemented")
        if status == "error":
            text = str(value)[:300]
            kind = "memory" if ("MemoryError" in text or "can't allocate memory" in text
                                or "not enough memory" in text) else "error"
            name = re.match(r"[A-Za-z_][A-Za-z0-9_.]{0,60}", text)
            return RecordVerdict(False, kind, f"case {i + 1}: your function raised {text}",
                                 f"case {i + 1}: your function raised {name[0] if name else 'an exception'}")
        if status != "ok":
            return RecordVerdict(False, "invalid", "malformed record")
        try:
            msg = core.compare(value, exp, ex.atol, ex.rtol)
        except Exception as err:  # noqa: BLE001
            msg = f"could not compare ({type(err).__name__})"
        if msg is not None:
            hint = _hint(ex, case, value)
            safe = f"case {i + 1}: {msg}{hint}" if _numeric(value) else f"case {i + 1}: wrong type of result.{hint}"
            return RecordVerdict(False, "failed", f"case {i + 1}: {msg}{hint}", safe)
    return RecordVerdict(True, "passed", f"all {len(cases)} cases pass")


def _hint(ex: core.Exercise, case: core.Case, value: Any) -> str:
    for m in ex.mistakes:
        try:
            wrong = core._to_comparable(core._run(m.fn, case), ex.normalize)
        except Exception:  # noqa: BLE001
            continue
        if core._matches(value, wrong, ex):
            return f" Hint: {m.hint}"
    return f" Hint: {ex.hint}" if ex.hint else ""
