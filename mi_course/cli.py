"""The ``mi-course`` command line: models, train, release, validate, slides, pilot, grade, feedback.

Each subcommand lives in a small function ``cmd_<name>(args) -> int``; ``COMMANDS`` maps
names to (function, help, argument adder).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mi_course.errors import MiCourseError


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

    if args.action in ("on", "off"):
        log = pilot.switch(args.action == "on")
        if args.action == "on":
            print(f"pilot timing is on: each exercise check you run is timed into {log} (on this machine only: "
                  "time, exercise and pass/fail, never your code). `mi-course pilot off` stops it.")
        else:
            print(f"pilot timing is off (the log stays in {log})")
        if os.environ.get(pilot.ENV) is not None:
            print(f"note: ${pilot.ENV} is set, and it decides over this switch")
        return 0
    if args.action == "status":
        print(f"pilot timing is {'on' if pilot.enabled() else 'off'}; log: {pilot.log_path()}"
              + ("" if pilot.log_path().exists() else " (none yet)"))
        return 0
    logs = [Path(p) for p in args.logs] or [pilot.log_path()]
    course = _course(args)
    notebooks = course.folder("source")
    if not notebooks.is_dir():
        notebooks = course.folder("release")
    print(pilot_report.render(pilot_report.report(logs, notebooks), only_measured=not args.all))
    print(f"{len(logs)} log(s); a time runs from the previous exercise's first pass (or the sitting's first check) "
          f"to this one's first pass, without pauses over {pilot.IDLE_GAP // 60} minutes")
    return 0


def _add_pilot(p):
    from mi_course.course.model import add_course_arg

    p.add_argument("action", choices=("on", "off", "status", "report"),
                   help="on/off: time your own exercise checks; report: median times beside the notebooks' estimates")
    p.add_argument("logs", nargs="*", help="report: pilot students' checks.jsonl files (default: your own)")
    p.add_argument("--all", action="store_true", help="report: list exercises nobody has passed yet too")
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
