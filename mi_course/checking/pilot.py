"""Pilot timings: how long each exercise takes the people who do it.

The exercise standard asks for time estimates measured on someone doing the exercise, not guessed.
This is the instrument. It is off unless switched on, and it records on the student's own machine only:

- A pilot student runs ``mi-course pilot on`` (or sets ``MI_COURSE_PILOT=1``). From then on every visible
  check appends one line to ``~/.cache/mi-course/pilot/checks.jsonl``: the time, the exercise's id and
  title, and the outcome (``todo``: still the stub, ``fail``, ``pass``). Nothing else: no code, no answers.
- ``mi-course pilot report`` shows the student's own times; they send the file to the instructor.
  (The report is :mod:`mi_course.checking.pilot_report`; this module only records, for ``core.check``.)
- The instructor runs ``mi-course pilot report FILE ...``: per exercise, the median time over the files
  beside the time the notebook states, and how many people passed it.

How a time is measured (:func:`~mi_course.checking.pilot_report.exercise_times`): an exercise starts at the latest first pass of another
exercise before the student's first real attempt at it (a check that is no longer the stub), or at the first
check of that day's work if there is none (Run All at the start checks every stub); it ends at its first
pass. A pause with no check for longer than :data:`IDLE_GAP` seconds is taken out. The medians over a
few pilot students then replace the guessed ``**Time:**`` lines.

Grading never records (the trusted grader sets ``MI_COURSE_RECORD_DIR``), and recording never fails a
check: a file that cannot be written is skipped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mi_course.cache import cache_dir

ENV = "MI_COURSE_PILOT"
IDLE_GAP = 30 * 60  # seconds without a check that count as a pause, not work


def folder() -> Path:
    return cache_dir("pilot")


def log_path() -> Path:
    """The student's own log: one JSON line per visible check while pilot timing is on."""
    return folder() / "checks.jsonl"


def _flag() -> Path:
    return folder() / "ON"


def enabled() -> bool:
    """On when ``$MI_COURSE_PILOT`` is 1 (0 switches it off whatever the flag) or ``mi-course pilot on`` ran."""
    env = os.environ.get(ENV)
    if env is not None:
        return env.strip() not in ("", "0", "false", "no", "off")
    return _flag().exists()


def switch(on: bool) -> Path:
    """Switch pilot timing on or off for this user (the flag file); returns the log's path."""
    if on:
        folder().mkdir(parents=True, exist_ok=True)
        _flag().write_text("pilot timing is on: `mi-course pilot off` stops it\n")
    else:
        _flag().unlink(missing_ok=True)
    return log_path()


def record(exercise_id: str, title: str, outcome: str, now: float | None = None) -> None:
    """Append one visible check to the log, if pilot timing is on. Never raises. (``core.check`` does not
    call it under the trusted grader.)"""
    if not enabled():
        return
    line = json.dumps({"t": round(time.time() if now is None else now, 1), "id": exercise_id, "title": title,
                       "outcome": outcome})
    try:
        log_path().parent.mkdir(parents=True, exist_ok=True)
        with open(log_path(), "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        pass  # a read-only home must not break a check
