"""The pilot timings' report: per exercise, the median time over pilot students' logs beside the time the
notebook states. Recording, and how a pilot is run: :mod:`mi_course.checking.pilot`."""

from __future__ import annotations

import ast
import inspect
import json
import re
import statistics
import textwrap
from dataclasses import dataclass
from pathlib import Path

from mi_course.checking.core import Exercise
from mi_course.checking.pilot import IDLE_GAP, log_path
from mi_course.errors import InputError


def read_log(path: str | Path) -> list[dict]:
    """The events of one log file, in time order. A line that is not an event is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        if path == log_path():
            raise InputError(f"no pilot log yet at {path}: `mi-course pilot on`, then check exercises as usual")
        raise InputError(f"no pilot log at {path} (a pilot student's own is ~/.cache/mi-course/pilot/checks.jsonl)")
    events = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            events.append({"t": float(e["t"]), "id": str(e["id"]), "title": str(e.get("title", e["id"])),
                           "outcome": str(e["outcome"])})
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}, line {i}: not a pilot event ({err}): {line[:80]!r}") from None
    return sorted(events, key=lambda e: e["t"])


def _worked(times: list[float], start: float, end: float) -> float:
    """Seconds from ``start`` to ``end`` without the pauses: gaps between checks longer than IDLE_GAP."""
    inside = [start] + [t for t in times if start < t < end] + [end]
    return sum(b - a for a, b in zip(inside, inside[1:]) if b - a <= IDLE_GAP)


def exercise_times(events: list[dict]) -> dict[str, float]:
    """Seconds each exercise took one person (only exercises they passed). See the module's docstring."""
    times = [e["t"] for e in events]
    first_pass: dict[str, float] = {}
    for e in events:
        if e["outcome"] == "pass":
            first_pass.setdefault(e["id"], e["t"])
    out = {}
    for ex, end in first_pass.items():
        attempts = [e["t"] for e in events if e["id"] == ex and e["outcome"] != "todo" and e["t"] <= end]
        began = attempts[0]
        # first passes only: Run All re-checks finished exercises while this one is under way
        earlier = [t for other, t in first_pass.items() if other != ex and t < began]
        if earlier:
            start = max(earlier)
        else:  # the first exercise of a sitting: from that sitting's first check (a pause ends a sitting)
            start = began
            for t in reversed([t for t in times if t < began]):
                if start - t > IDLE_GAP:
                    break
                start = t
        out[ex] = _worked(times, start, end)
    return out


@dataclass
class Stated:
    """An exercise as the notebook states it: week, number, title and the minutes it says it takes."""

    week: str
    number: int
    title: str
    minutes: int | None


def _exercise_of(check_fn) -> str | None:
    """The id of the Exercise a ``check_<name>`` function checks (the upper-case name it passes on)."""
    found = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(check_fn)))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name):
            ex = check_fn.__globals__.get(node.args[0].id)
            if isinstance(ex, Exercise):
                found.add(ex.id)
    return found.pop() if len(found) == 1 else None


def stated_times(solutions: str | Path) -> dict[str, Stated]:
    """Exercise id -> what the solution notebooks under ``solutions`` state (``**Time:** about N minutes``).

    An exercise's header (``### Exercise N: ...``) is followed by its solution cell and then its test cell,
    whose ``checks.check_<name>(...)`` names the checker, and through it the exercise's id.
    """
    import importlib

    out: dict[str, Stated] = {}
    for path in sorted(Path(solutions).glob("*/*.ipynb")):
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
                h = re.search(r"### Exercise (\d+)[:.]?\s*([^\n]*)", src)
                if h:
                    t = re.search(r"\*\*Time:\*\*[^\d\n]*(\d+)\s*min", src)
                    header = (int(h.group(1)), h.group(2).strip(), int(t.group(1)) if t else None)
            elif header and c.get("metadata", {}).get("nbgrader", {}).get("grade"):
                call = re.search(r"\bchecks\.(check_\w+)\(", src)
                fn = getattr(module, call.group(1), None) if call else None
                ex_id = _exercise_of(fn) if fn else None
                if ex_id:
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
    passed: int  # people who passed it
    people: int  # logs read


def report(logs: list[str | Path], solutions: str | Path) -> list[Row]:
    """Per exercise (in course order): the stated minutes beside the median measured over ``logs``."""
    per_person = [exercise_times(read_log(p)) for p in logs]
    titles = {e["id"]: e["title"] for p in logs for e in read_log(p)}
    stated = stated_times(solutions)
    rows = []
    for ex_id in list(stated) + sorted(set(titles) - set(stated)):
        s = stated.get(ex_id)
        got = [t[ex_id] / 60 for t in per_person if ex_id in t]
        if s is None and not got:
            continue
        rows.append(Row(s.week if s else "?", s.number if s else None, s.title if s else titles[ex_id],
                        s.minutes if s else None, round(statistics.median(got), 1) if got else None,
                        len(got), len(per_person)))
    return rows


def render(rows: list[Row], only_measured: bool = True) -> str:
    """A plain-text table; ``only_measured`` leaves out exercises nobody passed."""
    lines = [f"{'week':<32} {'exercise':<44} {'stated':>7} {'median':>7} {'passed':>7}"]
    for r in rows:
        if only_measured and r.median_minutes is None:
            continue
        name = f"{r.number}: {r.title}" if r.number is not None else r.title
        stated = f"{r.stated_minutes} min" if r.stated_minutes is not None else "-"
        median = f"{r.median_minutes:g} min" if r.median_minutes is not None else "-"
        lines.append(f"{r.week[:32]:<32} {name[:44]:<44} {stated:>7} {median:>7} {r.passed:>3}/{r.people:<3}")
    if len(lines) == 1:
        lines.append("(no exercise passed in these logs yet)")
    return "\n".join(lines)
