"""The pilot timings' report: per exercise, the median time over pilot students beside the time the notebook
states. Recording, and how a pilot is run: :mod:`mi_course.checking.pilot`.

How a time is measured (:func:`exercise_times`). Each moment of work counts towards one exercise: the next
one the student passes. So an exercise's time runs from the previous first pass of any exercise (or from the
first line of the log) to its own first pass. Reading the prose before it counts, as it should; time on an
exercise tried and left unsolved counts towards the next one passed, which the median over several
students smooths. Pauses: a stretch of more than :data:`IDLE_GAP` seconds with no line at all (no check and
no cell run) counts as :data:`IDLE_GAP`, and one that ends when a kernel starts counts nothing (a new sitting).
An exercise passed within :data:`MIN_SECONDS` of the previous pass was solved before (Run All over finished
work), and is left unmeasured rather than counted as zero.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import re
import statistics
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from mi_course.checking.core import Exercise
from mi_course.checking.pilot import log_path
from mi_course.errors import InputError

IDLE_GAP = 30 * 60  # seconds
MIN_SECONDS = 10
EXPORT_FORMAT = "mi-course pilot times"
CHECK_OUTCOMES = ("todo", "fail", "pass")


def read_log(path: str | Path) -> tuple[list[dict], int]:
    """``(events in time order, lines skipped)`` of one raw log. A torn or foreign line is skipped and counted,
    not fatal (a kernel killed mid-write); a file with no event at all is an error."""
    path = Path(path)
    if not path.is_file():
        if path == log_path():
            raise InputError(f"no pilot log yet at {path}: `mi-course pilot on`, then check exercises as usual")
        raise InputError(f"no pilot log at {path}")
    events, skipped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            event = {"t": float(e["t"]), "id": str(e["id"]), "title": str(e.get("title") or e["id"]),
                     "outcome": str(e["outcome"])}
            if not math.isfinite(event["t"]):
                raise ValueError("time is not finite")
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped += 1
            continue
        events.append(event)
    if not events:
        raise InputError(f"{path} holds no pilot event ({skipped} unreadable lines): is it a pilot log?")
    events.sort(key=lambda e: e["t"])  # stable: lines written in the same tenth of a second keep their order
    return events, skipped


def _worked(events: list[dict], start: float, end: float) -> float:
    """Seconds of work from ``start`` to ``end``: pauses longer than IDLE_GAP count IDLE_GAP, or nothing when a
    kernel start ends them."""
    inside = [e for e in events if start < e["t"] < end]
    points = [(start, "")] + [(e["t"], e["outcome"]) for e in inside] + [(end, "")]
    total = 0.0
    for (a, _), (b, outcome) in zip(points, points[1:]):
        gap = b - a
        total += gap if gap <= IDLE_GAP else (0.0 if outcome == "start" else IDLE_GAP)
    return total


@dataclass
class PersonTimes:
    """One pilot student's result: seconds per exercise passed (measured ones only), and what they tried."""

    seconds: dict[str, float] = field(default_factory=dict)
    tried: set[str] = field(default_factory=set)  # a check that was not the stub, or a pass
    passed: set[str] = field(default_factory=set)
    titles: dict[str, str] = field(default_factory=dict)


def exercise_times(events: list[dict]) -> PersonTimes:
    """One person's times from their log's events (time order). See the module's docstring for the rule."""
    out = PersonTimes()
    first_pass: list[tuple[float, str]] = []
    for e in events:
        if e["outcome"] not in CHECK_OUTCOMES:
            continue
        out.titles.setdefault(e["id"], e["title"])
        if e["outcome"] != "todo":
            out.tried.add(e["id"])
        if e["outcome"] == "pass" and e["id"] not in out.passed:
            out.passed.add(e["id"])
            first_pass.append((e["t"], e["id"]))
    previous = events[0]["t"] if events else 0.0
    for end, ex in first_pass:  # in time order: each interval ends where the next begins
        seconds = _worked(events, previous, end)
        if seconds >= MIN_SECONDS:
            out.seconds[ex] = round(seconds, 1)
        previous = end
    return out


def export(log: str | Path, out: str | Path) -> Path:
    """Write one student's times (seconds per exercise, what they tried and passed), without any clock time:
    the file a pilot student sends."""
    events, _ = read_log(log)
    p = exercise_times(events)
    data = {"format": EXPORT_FORMAT, "version": 1,
            "exercises": {ex: {"title": p.titles.get(ex, ex), "seconds": p.seconds.get(ex), "tried": ex in p.tried,
                               "passed": ex in p.passed} for ex in sorted(p.titles)}}
    out = Path(out)
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return out


def load(path: str | Path) -> tuple[PersonTimes, int]:
    """A student's times from an export (``.json``) or from a raw log; ``(times, unreadable lines)``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            assert data.get("format") == EXPORT_FORMAT
            out = PersonTimes()
            for ex, d in data["exercises"].items():
                out.titles[ex] = str(d.get("title", ex))
                if d.get("tried") or d.get("passed"):
                    out.tried.add(ex)
                if d.get("passed"):
                    out.passed.add(ex)
                if d.get("seconds") is not None and math.isfinite(float(d["seconds"])):
                    out.seconds[ex] = float(d["seconds"])
            return out, 0
        except (ValueError, KeyError, TypeError, AttributeError, AssertionError):
            raise InputError(f"{path} is not an export of `mi-course pilot export`") from None
    events, skipped = read_log(path)
    return exercise_times(events), skipped


@dataclass
class Stated:
    """An exercise as the notebook states it: week, number, title and the minutes it says it takes."""

    week: str
    number: int
    title: str
    minutes: int | None


def _exercise_of(check_fn) -> str | None:
    """The id of the Exercise a ``check_<name>`` function checks (the Exercise it passes on)."""
    found = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(check_fn)))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name):
            ex = check_fn.__globals__.get(node.args[0].id)
            if isinstance(ex, Exercise):
                found.add(ex.id)
    return found.pop() if len(found) == 1 else None


def stated_times(notebooks: str | Path) -> dict[str, Stated]:
    """Exercise id -> what the week notebooks under ``notebooks`` (``solutions/`` or a release) state.

    An exercise's header (a line ``### Exercise N: title`` with ``**Time:** about N minutes``) is followed by
    its solution cell and then its test cell, whose ``checks.check_<name>(...)`` names the checker, and
    through it the exercise's id.
    """
    import importlib

    out: dict[str, Stated] = {}
    for path in sorted(Path(notebooks).glob("*/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        m = re.search(r"from mi_course\.checking import (\w+) as checks", code)
        if not m:
            continue
        module = importlib.import_module(f"mi_course.checking.{m.group(1)}")
        header = None
        for c in cells:
            src = "".join(c["source"])
            if c["cell_type"] == "markdown":
                h = re.search(r"^### Exercise (\d+)[:.]?[ \t]*([^\n]*)", src, re.M)
                if h:
                    t = re.search(r"\*\*Time:\*\*[^\d\n]*(\d+)\s*min", src)
                    header = (int(h.group(1)), h.group(2).strip(), int(t.group(1)) if t else None)
            elif header and c.get("metadata", {}).get("nbgrader", {}).get("grade"):
                call = re.search(r"\bchecks\.(check_\w+)\(", src)
                fn = getattr(module, call.group(1), None) if call else None
                ex_id = _exercise_of(fn) if fn else None
                if ex_id and ex_id not in out:
                    out[ex_id] = Stated(path.parent.name, header[0], header[1], header[2])
                    header = None
    return out


@dataclass
class Row:
    week: str
    number: int | None
    title: str
    stated_minutes: int | None
    median_minutes: float | None
    measured: int  # people whose time for it was measured
    passed: int
    tried: int


def report(people: list[PersonTimes], stated: dict[str, Stated]) -> list[Row]:
    """Per exercise (in course order, then any the notebooks do not state): stated minutes beside the median."""
    titles = {ex: t for p in people for ex, t in p.titles.items()}
    rows = []
    for ex in list(stated) + sorted(set(titles) - set(stated)):
        s = stated.get(ex)
        got = [p.seconds[ex] / 60 for p in people if ex in p.seconds]
        tried = sum(ex in p.tried or ex in p.passed for p in people)
        if s is None and not tried:
            continue
        rows.append(Row(s.week if s else "?", s.number if s else None, s.title if s else titles[ex],
                        s.minutes if s else None, round(statistics.median(got), 1) if got else None,
                        len(got), sum(ex in p.passed for p in people), tried))
    return rows


def render(rows: list[Row], only_tried: bool = True) -> str:
    """A plain-text table; ``only_tried`` leaves out exercises nobody tried."""
    lines = [f"{'week':<30} {'exercise':<40} {'stated':>7} {'median':>7} {'passed/tried':>13}"]
    for r in rows:
        if only_tried and not r.tried:
            continue
        name = f"{r.number}: {r.title}" if r.number is not None else r.title
        stated = f"{r.stated_minutes} min" if r.stated_minutes is not None else "?"
        median = f"{r.median_minutes:g} min" if r.median_minutes is not None else "-"
        lines.append(f"{r.week[:30]:<30} {name[:40]:<40} {stated:>7} {median:>7} {f'{r.passed}/{r.tried}':>13}")
    if len(lines) == 1:
        lines.append("(nobody has tried an exercise in these files yet)")
    return "\n".join(lines)
