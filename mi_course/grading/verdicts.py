"""What the grader found, as kinds rather than words, and the one function that turns kinds into a status.

A :class:`Flag` is a message for the instructor that carries an explicit :class:`FlagKind`; it is a
``str`` (reports, JSON and the gradebook keep showing the text), but a submission's status is decided
from the kinds alone by :func:`submission_status`, so rewording a message never changes a grade's
status. :func:`test_status` decides one test's status from what the checker recorded and how its cell
ran; the grader uses both for every test and every submission.
"""

from __future__ import annotations

from enum import Enum


class FlagKind(str, Enum):
    """What a flag is about. ``status`` is the submission status it implies (``None``: information only)."""

    UNREADABLE = "unreadable"  # the file is not a notebook the grader can use
    MISSING_NOTEBOOK = "missing-notebook"
    EDITED = "edited"  # a test or locked cell was edited (the original was run)
    POINTS_CHANGED = "points-changed"
    DELETED = "deleted"  # a test or locked cell was deleted (put back and run)
    DUPLICATED = "duplicated"
    METADATA_REMOVED = "metadata-removed"  # one cell's nbgrader metadata
    METADATA_STRIPPED = "metadata-stripped"  # every cell's
    ANSWER_MISSING = "answer-missing"
    KERNEL_DIED = "kernel-died"
    MEMORY_LIMIT = "memory-limit"
    TIME_LIMIT = "time-limit"
    OUTPUT_TRUNCATED = "output-truncated"

    @property
    def status(self) -> str | None:
        return _KIND_STATUS.get(self)


_KIND_STATUS = {
    FlagKind.UNREADABLE: "invalid", FlagKind.MISSING_NOTEBOOK: "invalid",
    FlagKind.EDITED: "tampered", FlagKind.POINTS_CHANGED: "tampered", FlagKind.DELETED: "tampered",
    FlagKind.DUPLICATED: "tampered", FlagKind.METADATA_REMOVED: "tampered",
    FlagKind.METADATA_STRIPPED: "tampered", FlagKind.ANSWER_MISSING: "tampered",
    FlagKind.KERNEL_DIED: "kernel-died", FlagKind.MEMORY_LIMIT: "memory-limit", FlagKind.TIME_LIMIT: "timeout",
    FlagKind.OUTPUT_TRUNCATED: None,
}

# Submission statuses, most serious first.
STATUS_ORDER = ["invalid", "memory-limit", "kernel-died", "timeout", "tampered", "ok"]
# Test statuses that make a submission's status (others: passed, failed, not-run, untrusted).
_TEST_STATUS = {"kernel-died": "kernel-died", "timeout": "timeout", "memory-limit": "memory-limit",
                "tampered": "tampered"}


class Flag(str):
    """A flag's text for the instructor, with its :class:`FlagKind` in ``.kind``."""

    kind: FlagKind

    def __new__(cls, kind: FlagKind, text: str) -> "Flag":
        self = super().__new__(cls, text)
        self.kind = FlagKind(kind)
        return self

    def about(self, notebook: str) -> "Flag":
        """The same flag, prefixed with the notebook's name."""
        return Flag(self.kind, f"{notebook}: {self}")

    def __reduce__(self):  # pickles and copies keep the kind
        return (Flag, (self.kind, str(self)))


def kinds(flags) -> set[FlagKind]:
    """The kinds of ``flags`` (plain strings have none)."""
    return {f.kind for f in flags if isinstance(f, Flag)}


def submission_status(flag_kinds, test_statuses) -> str:
    """A submission's status from its flags' kinds and its tests' statuses: the most serious of
    ``invalid > memory-limit > kernel-died > timeout > tampered``, else ``ok``."""
    found = {FlagKind(k).status for k in flag_kinds} | {_TEST_STATUS.get(s) for s in test_statuses}
    return next((s for s in STATUS_ORDER if s in found), "ok")


def test_status(record_status: str, run_status: str, out_of_memory: bool = False) -> str:
    """One test's status from what its checker recorded (``records.RecordVerdict.status``: passed, failed,
    missing, invalid, error, memory) and how its cell ran (``kernel.CellRun.status``: ok, error, timeout,
    dead, not_run). ``out_of_memory``: the cell's error was a memory error."""
    if record_status == "passed":
        return "passed"
    if record_status == "missing" and run_status == "error":
        return "memory-limit" if out_of_memory else "failed"
    if record_status == "missing":
        return {"timeout": "timeout", "dead": "kernel-died", "not_run": "not-run"}.get(run_status, "tampered")
    if record_status == "memory" or out_of_memory:
        return "memory-limit"
    if record_status == "invalid":
        return "tampered"
    return "failed"


test_status.__test__ = False  # not a pytest test, despite its name
