"""The grading report: ``grades.csv`` (one row per student), ``tests.csv`` (one row per
student and test) and ``summary.md`` (readable; every problem listed, nothing silent)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

STATUS_HELP = {
    "ok": "graded normally",
    "tampered": "test cells or points edited/deleted, metadata stripped, or a checker that recorded nothing",
    "timeout": "a cell ran past its time limit (interrupted, or killed when it ignored the interrupt)",
    "memory-limit": "a cell hit the kernel's memory limit",
    "kernel-died": "the kernel died (os._exit, a crash, or a signal); later tests did not run",
    "invalid": "the notebook is missing or unreadable",
}


def write(results, folder: Path, notes: list[str] | None = None) -> dict[str, Path]:
    """Write the three report files into ``folder``; returns their paths. ``notes`` (how the
    grading ran: sandbox, limits) go at the top of the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    tests = list(dict.fromkeys((t.notebook, t.test) for r in results for t in r.tests))  # notebook order
    paths = {"grades": folder / "grades.csv", "tests": folder / "tests.csv", "summary": folder / "summary.md"}
    with open(paths["grades"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "score", "max_score", "status", "flags", *[f"{nb}:{t}" for nb, t in tests]])
        for r in results:
            pts = {(t.notebook, t.test): t.points for t in r.tests}
            w.writerow([r.student, _n(r.score), _n(r.max_score), r.status, " | ".join(r.flags),
                        *[_n(pts[k]) if k in pts else "" for k in tests]])
    with open(paths["tests"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "notebook", "test", "points", "max_points", "status", "message"])
        for r in results:
            for t in r.tests:
                w.writerow([r.student, t.notebook, t.test, _n(t.points), _n(t.max_points), t.status, t.message])
    paths["summary"].write_text(summary(results, notes))
    return paths


def _n(x: float) -> str:
    return f"{x:g}"


def summary(results, notes: list[str] | None = None) -> str:
    """A readable summary: totals, statuses, and every flagged submission with its reasons."""
    if not results:
        return "# Grading summary\n\nNo submissions.\n"
    week = results[0].week
    counts = Counter(r.status for r in results)
    lines = [f"# Grading summary: {week}", "", *[f"- {n}" for n in notes or []], "",
             f"{len(results)} submissions; mean score {sum(r.score for r in results) / len(results):.2f} "
             f"of {results[0].max_score:g}; {sum(r.seconds for r in results):.0f} s of kernel time.", "",
             "| status | submissions | meaning |", "| --- | --- | --- |"]
    for status, n in counts.most_common():
        lines.append(f"| {status} | {n} | {STATUS_HELP.get(status, '')} |")
    tests = list(dict.fromkeys((t.notebook, t.test) for r in results for t in r.tests))  # notebook order
    lines += ["", "| test | passed | failed | other |", "| --- | --- | --- | --- |"]
    for nb, tid in tests:
        st = Counter(t.status for r in results for t in r.tests if (t.notebook, t.test) == (nb, tid))
        other = ", ".join(f"{k} {v}" for k, v in st.items() if k not in ("passed", "failed"))
        lines.append(f"| {tid} | {st.get('passed', 0)} | {st.get('failed', 0)} | {other} |")
    flagged = [r for r in results if r.status != "ok" or r.flags or any(t.status not in ("passed", "failed") for t in r.tests)]
    lines += ["", f"## Needs a look ({len(flagged)})", ""]
    if not flagged:
        lines.append("Nothing: every submission ran normally.")
    for r in flagged:
        lines.append(f"- **{r.student}** ({r.status}, {r.score:g}/{r.max_score:g})")
        lines += [f"  - {f}" for f in r.flags]
        lines += [f"  - {t.test}: {t.status}: {t.message}" for t in r.tests if t.status not in ("passed", "failed")]
    return "\n".join(lines) + "\n"
