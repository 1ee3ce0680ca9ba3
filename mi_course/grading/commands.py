"""The ``grade`` and ``feedback`` subcommands of ``mi-course`` (kept light to import)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def add_grade_args(p) -> None:
    from mi_course.course.model import add_course_arg

    p.add_argument("week", help="week folder or number, e.g. 02")
    p.add_argument("submissions", nargs="?", default=None,
                   help="submissions folder: nbgrader's <student>/<week>/ layout or <student>.ipynb files "
                        "(default: the course's submitted/)")
    add_course_arg(p)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="kernels at a time (default: cores)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per cell (default: the course's c.Execute.timeout, else 60)")
    p.add_argument("--notebook-timeout", type=float, default=900.0, help="seconds per notebook in all")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per kernel")
    p.add_argument("--report", default=None, help="report folder (default: <course>/reports/<week>)")
    p.add_argument("--no-gradebook", action="store_true", help="do not write gradebook.db")


def cmd_grade(args) -> int:
    from mi_course.grading import grader, report, sandbox
    from mi_course.grading.course import find_course

    course = find_course(args.course)
    timeout = args.timeout
    if timeout is None:
        timeout = float(course.setting("Execute", "timeout", 60) or 60)
    opts = grader.Options(workers=max(1, args.workers), cell_timeout=timeout,
                          notebook_timeout=args.notebook_timeout,
                          limits=sandbox.Limits(memory_mb=args.memory_mb))
    results = grader.grade_week(course, args.week, args.submissions, opts, write_gradebook=not args.no_gradebook)
    week = course.week(args.week)
    folder = Path(args.report) if args.report else course.root / "reports" / week
    caps = sandbox.probe()
    sandbox_note = ("sandbox: complete (namespaces, private root, unprivileged uid, rlimits"
                    + (", memory cgroup)" if caps.memory_cgroup else ")")
                    if caps.full else "sandbox: INCOMPLETE")
    notes = [sandbox_note, *[f"sandbox problem: {p}" for p in caps.problems],
             f"limits: {opts.cell_timeout:g} s per cell, {opts.notebook_timeout:g} s per notebook, "
             f"{opts.limits.memory_mb} MB memory; {opts.workers} workers"]
    paths = report.write(results, folder, notes)
    warning = sandbox.warn_if_weak(caps)
    print(report.summary(results, notes))
    if warning:
        print(warning, file=sys.stderr)
    print(f"report: {paths['grades']}, {paths['tests']}, {paths['summary']}")
    if not args.no_gradebook:
        print(f"gradebook: {course.db_path} (nbgrader export and the formgrader show these grades)")
    return 0


def add_feedback_args(p) -> None:
    from mi_course.course.model import add_course_arg

    p.add_argument("week", help="week folder or number, e.g. 02")
    add_course_arg(p)
    p.add_argument("--student", action="append", default=None, help="only this student (repeatable)")


def cmd_feedback(args) -> int:
    from mi_course.grading.course import find_course
    from mi_course.grading.feedback import write_feedback

    course = find_course(args.course)
    paths = write_feedback(course, args.week, args.student)
    print(f"wrote {len(paths)} feedback pages under {course.root / course.feedback}")
    return 0
