"""Pilot timings: how long each exercise takes the people who do it.

The exercise standard asks for time estimates measured on someone doing the exercise, not guessed.
This is the instrument. It is off unless a pilot student switches it on, and it writes only to that
student's own cache folder:

- ``mi-course pilot on`` (per user; ``MI_COURSE_PILOT=1`` or ``0`` in one user's environment overrides it).
  From then on the notebook kernel appends lines to ``~/.cache/mi-course/pilot/checks.jsonl``: when a kernel
  loads the checkers (``start``), when a cell ran (``active``, at most once a minute), and every visible
  check (the exercise's id and title, and ``todo``: still the stub, ``fail`` or ``pass``). No code, no
  answers, no cell contents.
- ``mi-course pilot export`` turns the log into seconds per exercise, without any clock time: that file is
  what the student sends. ``mi-course pilot report`` shows their own times.
- The instructor runs ``mi-course pilot report FILE ...`` over the exports: per exercise, the median time
  beside the time the notebook states, and how many of those who tried it passed it.

How a time is measured: :func:`mi_course.checking.pilot_report.exercise_times`. (That module is the report;
this one only records, for ``checking.core``.)

Grading never records (``core`` does not call this under the trusted grader, and the grader's kernels
inherit no environment), ``mi-course validate`` switches it off, and recording never fails or stops a
check: any error while recording is swallowed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mi_course.cache import cache_dir

ENV = "MI_COURSE_PILOT"
ACTIVE_EVERY = 60  # seconds: at most one "a cell ran" line per minute
_last_active = [0.0]


def folder() -> Path:
    return cache_dir("pilot")


def log_path() -> Path:
    """The student's own log: one JSON line per event while pilot timing is on."""
    return folder() / "checks.jsonl"


def _flag() -> Path:
    return folder() / "ON"


def enabled() -> bool:
    """On when ``$MI_COURSE_PILOT`` says so (``1``; ``0`` switches it off whatever the flag), else when
    ``mi-course pilot on`` ran for this user."""
    env = os.environ.get(ENV)
    if env is not None:
        return env.strip().lower() not in ("", "0", "false", "no", "off")
    return _flag().exists()


def switch(on: bool) -> Path:
    """Switch pilot timing on or off for this user (the flag file); returns the log's path."""
    if on:
        folder().mkdir(parents=True, exist_ok=True)
        _flag().write_text("pilot timing is on: `mi-course pilot off` stops it\n")
    else:
        _flag().unlink(missing_ok=True)
    return log_path()


def _append(event: dict) -> None:
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")  # one write per line: kernels appending at once do not interleave


def record(exercise_id: str, title: str, outcome: str, now: float | None = None) -> None:
    """Append one event to the log if pilot timing is on. Never raises (a check must not fail for this)."""
    try:
        if enabled():
            _append({"t": round(time.time() if now is None else now, 1), "id": exercise_id, "title": title,
                     "outcome": outcome})
    except Exception:  # noqa: BLE001 - a missing home, a read-only disk, a full disk: the check goes on
        pass


def _cell_ran(*_args) -> None:
    now = time.time()
    if now - _last_active[0] >= ACTIVE_EVERY:
        _last_active[0] = now
        record("", "", "active", now)


def kernel_started() -> None:
    """Called once per kernel when the checkers load: a ``start`` line, and a hook that notes (at most once a
    minute) that a cell ran, so a pause can be told from work. Nothing when pilot timing is off."""
    try:
        if not enabled():
            return
        record("", "", "start")
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.events.register("post_run_cell", _cell_ran)
    except Exception:  # noqa: BLE001 - no IPython, an old one: the checks still work
        pass
