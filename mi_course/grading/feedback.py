"""``mi-course feedback``: one HTML page per student and notebook, in nbgrader's
``feedback/<student>/<week>/<notebook>.html`` layout (so ``nbgrader release_feedback``
delivers it).

A page holds the student's own code, the released text of every other cell (never the
hidden tests), and for each test the points and the grader's verdict. No output of the
graded run is shown: outputs (and tracebacks) come from the student's kernel, which could
have copied hidden-test source into them.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat

from mi_course.errors import InputError
from mi_course.grading import assemble
from mi_course.grading.course import Course, TrustedWeek
from mi_course.grading.grader import RESULT_FILE


def _markdown(text: str) -> str:
    """Markdown to HTML with raw HTML escaped (a student's markdown cannot inject scripts)."""
    import mistune

    return mistune.create_markdown(escape=True)(text)


def _released(trusted: TrustedWeek, name: str) -> dict[str, str]:
    release = trusted.notebooks[name][1]
    return {assemble.nbg(c)["grade_id"]: assemble._src(c) for c in release.cells if assemble.nbg(c)}


def page(student: str, week: str, name: str, graded: nbformat.NotebookNode, result: dict,
         trusted: TrustedWeek) -> str:
    """The feedback page for one notebook."""
    released = _released(trusted, name)
    tests = {t["test"]: t for t in result.get("tests", []) if t["notebook"] == name}
    score = sum(t["points"] for t in tests.values())
    total = sum(t["max_points"] for t in tests.values())
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(week)} {e(name)}: {e(student)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f6f6f6;"
             "padding:.6em;overflow-x:auto}.ok{color:#176317}.bad{color:#a11}.test{border-left:4px solid #888;"
             "padding-left:.6em}</style></head><body>",
             f"<h1>{e(week)} / {e(name)}</h1><p>Student: <b>{e(student)}</b>. Score: <b>{score:g} / {total:g}</b></p>",
             "<table border=1 cellpadding=4><tr><th>test</th><th>points</th><th>verdict</th></tr>"]
    for t in tests.values():
        cls = "ok" if t["points"] == t["max_points"] else "bad"
        parts.append(f"<tr><td>{e(t['test'])}</td><td class={cls}>{t['points']:g} / {t['max_points']:g}</td>"
                     f"<td>{e(t.get('feedback') or t['status'])}</td></tr>")
    parts.append("</table>")
    if result.get("status") not in (None, "ok"):
        parts.append(f"<p class=bad>Note from the grader: {e(result['status'])}.</p>")
    for cell in graded.cells:
        info = cell.get("metadata", {}).get("mi_course", {})
        gid, role = info.get("grade_id", ""), info.get("role", "markdown")
        if cell.cell_type == "markdown":
            text = released.get(gid, cell.source) if gid else cell.source
            parts.append(f"<div>{_markdown(text)}</div>")
        elif role in ("answer", "student"):
            parts.append(f"<pre>{e(cell.source)}</pre>")
        elif role == "locked":
            parts.append(f"<pre>{e(released.get(gid, ''))}</pre>")
        elif role == "test":
            t = tests.get(gid)
            verdict = e(t.get("feedback") or t["status"]) if t else "not graded"
            pts = f"{t['points']:g} / {t['max_points']:g}" if t else ""
            parts.append(f"<div class=test><pre>{e(released.get(gid, '# (hidden test)'))}</pre>"
                         f"<p><b>{e(gid)}</b>: {pts} {verdict}</p></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _copy_exchange_files(submitted: Path, dest: Path) -> None:
    """``nbgrader release_feedback`` needs the submission's timestamp and secret beside the pages."""
    for name in ("timestamp.txt", "submission_secret.txt"):
        src = submitted / name
        if src.is_file() and not src.is_symlink() and src.stat().st_size < 4096:
            (dest / name).write_bytes(src.read_bytes())


def write_feedback(course: Course, week: str, students: list[str] | None = None) -> list[Path]:
    """Write feedback pages for every graded student of ``week`` (or only ``students``)."""
    from mi_course.grading.course import trusted_week

    week = course.week(week)
    base = course.root / course.autograded
    graded = sorted(p.parent.parent.name for p in base.glob(f"*/{week}/{RESULT_FILE}")) if base.is_dir() else []
    if students:
        graded = [s for s in graded if s in students]
    if not graded:
        raise InputError(f"nothing graded for {week} in {base}: run `mi-course grade {week}` first")
    trusted = trusted_week(course, week)
    out = []
    for student in graded:
        folder = base / student / week
        result = json.loads((folder / RESULT_FILE).read_text())
        dest = course.root / course.feedback / student / week
        dest.mkdir(parents=True, exist_ok=True)
        _copy_exchange_files(course.root / course.submitted / student / week, dest)
        for name in sorted(trusted.notebooks):
            path = folder / f"{name}.ipynb"
            nb = nbformat.read(path, as_version=4) if path.exists() else nbformat.v4.new_notebook()
            (dest / f"{name}.html").write_text(page(student, week, name, nb, result, trusted))
            out.append(dest / f"{name}.html")
    return out
