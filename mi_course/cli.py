"""The ``mi-course`` command line: models, train, release, validate, slides, pilot, grade, feedback.

Each subcommand lives in a small function ``cmd_<name>(args) -> int``; ``COMMANDS`` maps
names to (function, help, argument adder).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mi_course.errors import InputError, MiCourseError


def cmd_models(args) -> int:
    from mi_course import zoo
    from mi_course.zoo.hub import HUB_ALIASES

    for c in zoo.cards():
        print(c.render())
        print()
    print("Hub models (need internet; offline stand-in in brackets):")
    for alias, (hub_id, stand_in) in HUB_ALIASES.items():
        print(f"  {alias:<18} -> {hub_id}  [{stand_in}]")
    return 0


def cmd_train(args) -> int:
    from mi_course.training import RECIPES, recipe

    if args.name not in RECIPES:
        print(f"No training recipe for '{args.name}'. Recipes: {', '.join(sorted(RECIPES))}", file=sys.stderr)
        return 2
    mod, kwargs = recipe(args.name)
    kwargs.update({"seed": args.seed, "folder": Path(args.out) if args.out else None})
    if args.steps:
        kwargs["steps"] = args.steps
    card = mod.train_and_save(**kwargs)
    print(card.render())
    return 0


def _add_train(p):
    p.add_argument("name", help="zoo model name, e.g. attn-only-2l")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's number of steps/epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for checkpoint and card (default: the zoo's own)")


def _course(args):
    from mi_course.course.model import find_course

    return find_course(getattr(args, "course", None))


def cmd_release(args) -> int:
    from mi_course.course import nbgrader_tools

    course = _course(args)
    for week in course.weeks(args.week):
        nbgrader_tools.release(week, course)
        print(f"released {week} -> {course.release}/{week}/")
    return 0


def cmd_validate(args) -> int:
    from mi_course.course import nbgrader_tools

    course = _course(args)
    problems = nbgrader_tools.validate(args.week, run=not args.no_run, timeout=args.timeout, course=course)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    if not problems:
        print(f"OK: {course.release}/ matches {course.source}/, sources are clean"
              + ("" if args.no_run else " and pass their tests"))
    return 1 if problems else 0


def _add_week(p):
    from mi_course.course.model import add_course_arg

    p.add_argument("week", nargs="?", default=None, help="week folder or number, e.g. 02 (default: all)")
    add_course_arg(p)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _add_validate(p):
    _add_week(p)
    p.add_argument("--no-run", action="store_true", help="skip executing the solution notebooks")
    p.add_argument("--timeout", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="seconds each cell may run (default: c.MiCourse.validate_timeout in nbgrader_config.py, "
                        "else 600)")


def cmd_slides(args) -> int:
    from mi_course.course import slides

    course = _course(args)
    for week in course.weeks(args.week, "slides"):
        out = slides.build(week, course=course)
        print(f"built {out}")
    return 0


def cmd_pilot(args) -> int:
    from mi_course.checking import pilot, pilot_report

    if args.action != "report" and args.all:
        raise InputError("--all goes with `mi-course pilot report`")
    if args.action in ("on", "off", "status") and args.files:
        raise InputError(f"`mi-course pilot {args.action}` takes no files (did you mean `report`?)")
    if args.action in ("on", "off"):
        pilot.switch(args.action == "on")
    if args.action in ("on", "off", "status"):
        on = pilot.enabled()
        print(f"pilot timing is {'ON' if on else 'off'}" + (
            f": each exercise check is timed into {pilot.log_path()} (when a kernel starts, when a cell ran, each "
            "check's exercise and pass/fail; never code or answers). `mi-course pilot off` stops it."
            if on else "."))
        if os.environ.get(pilot.ENV) is not None:
            print(f"(${pilot.ENV}={os.environ[pilot.ENV]} is set here and decides over `mi-course pilot on/off`; "
                  "a notebook kernel started with another environment may differ)")
        return 0
    if args.action == "export":
        if len(args.files) > 1:
            raise InputError("`mi-course pilot export [OUT]` writes one file")
        out = pilot_report.export(pilot.log_path(), args.files[0] if args.files else "pilot-times.json")
        print(f"wrote {out}: seconds per exercise, what you tried and passed, no clock times. Send this file.")
        return 0
    files = [Path(p) for p in args.files] or [pilot.log_path()]
    people = []
    for f in files:
        person, skipped = pilot_report.load(f)
        people.append(person)
        if skipped:
            print(f"warning: {f}: {skipped} unreadable line(s) skipped", file=sys.stderr)
    stated, source = {}, None
    try:
        course = _course(args)
        for kind in ("source", "release"):
            if course.folder(kind).is_dir():
                stated, source = pilot_report.stated_times(course.folder(kind)), course.folder(kind)
                break
    except MiCourseError:
        pass
    print(pilot_report.render(pilot_report.report(people, stated), only_tried=not args.all))
    print(f"{len(files)} file(s). A time runs from the previous first pass to this exercise's first pass; "
          f"pauses over {pilot_report.IDLE_GAP // 60} minutes count {pilot_report.IDLE_GAP // 60}, "
          "a new kernel after one starts afresh (docs/instructors.md).")
    if source is None:
        print("(no course folder found: stated times are '?'; run this in the course folder or pass --course)")
    return 0


def _add_pilot(p):
    from mi_course.course.model import add_course_arg

    p.add_argument("action", choices=("on", "off", "status", "export", "report"),
                   help="on/off/status: time your own exercise checks; export [OUT]: your times, to send; "
                        "report [FILES]: median times beside the notebooks' estimates")
    p.add_argument("files", nargs="*", help="export: the file to write (default pilot-times.json); "
                                            "report: pilot students' exports or logs (default: your own log)")
    p.add_argument("--all", action="store_true", help="report: list exercises nobody tried too")
    add_course_arg(p)


def _grading():
    from mi_course.grading import commands

    return commands


COMMANDS = {
    "models": (cmd_models, "list the zoo's models with their cards", lambda p: None),
    "train": (cmd_train, "train a zoo model from its recipe", _add_train),
    "release": (cmd_release, "regenerate notebooks/ from solutions/ (nbgrader)", _add_week),
    "validate": (cmd_validate, "check notebooks/ against solutions/ and run the solutions", _add_validate),
    "slides": (cmd_slides, "build a week's slide deck into a self-contained HTML file", _add_week),
    "pilot": (cmd_pilot, "time exercises on pilot students, to measure the notebooks' time estimates", _add_pilot),
    "grade": (lambda a: _grading().cmd_grade(a), "grade a week's submissions in sandboxed kernels",
              lambda p: _grading().add_grade_args(p)),
    "feedback": (lambda a: _grading().cmd_feedback(a), "write students' feedback pages (no hidden tests)",
                 lambda p: _grading().add_feedback_args(p)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mi-course", description="mechanistic interpretability course toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_, add) in COMMANDS.items():
        add(sub.add_parser(name, help=help_))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][0](args) or 0
    except MiCourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
