#!/usr/bin/env python3
"""Set up the course in ./.venv and open it, or run the tests.

    python3 bootstrap.py course                # set up, then open JupyterLab on notebooks/ (students)
    python3 bootstrap.py course --instructor   # the same with nbgrader's instructor tools
    python3 bootstrap.py test                  # set up, then run the test suite
    python3 bootstrap.py test -k week02        # ... or only what pytest's arguments select

`course` starts JupyterLab with the course's environment first on PATH, so `mi-course` works in
notebooks (`!mi-course ...`) and in JupyterLab's terminals; it prints how to activate the same
environment in your own shell. The student set-up hides nbgrader's instructor tools (Create
Assignment, Formgrader, Course List); `--instructor` shows them. JupyterLab's news pop-up and
update check are off. Both come from a config folder made in .venv/etc/mi-course/ and passed at
launch (JUPYTER_CONFIG_PATH); nothing is written to your home folder. Run as root (containers,
cloud VMs), JupyterLab gets --allow-root.

Works with any Python >= 3.10. Set MI_COURSE_TORCH to choose the torch requirement
(default: torch==2.13.0; where a local CPU wheel of it is configured, pip takes that one).
`test` also installs Debian's chromium for the real-browser test, but only when run as root
on a system with apt-get (CI); elsewhere that test skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
TORCH = os.environ.get("MI_COURSE_TORCH", "torch==2.13.0")


def run(*cmd: str | Path, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def setup() -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"mi-course needs Python >= 3.10, this is {sys.version.split()[0]}")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".mi-course-installed"
    wanted = (ROOT / "pyproject.toml").read_text() + TORCH
    if stamp.exists() and stamp.read_text() == wanted:
        return
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # torch first, pinned: with it installed, the project's torch range is already satisfied.
    run(*pip, TORCH)
    run(*pip, "-e", ".[test]")
    stamp.write_text(wanted)


def ensure_chromium() -> None:
    """Best effort, CI only: root + apt-get + no chromium yet -> apt-get install chromium."""
    if os.path.exists("/usr/bin/chromium") or not shutil.which("apt-get"):
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    cmd = "apt-get update -qq && apt-get install -y -qq chromium"
    print("+", cmd, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, shell=True, env=env).returncode != 0:
        print("warning: could not install chromium; the real-browser test will skip", flush=True)


# nbgrader's instructor tools: hidden in the student set-up, shown with --instructor
INSTRUCTOR_LAB_PLUGINS = ["@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                          "@jupyter/nbgrader:course-list"]
INSTRUCTOR_SERVER_EXTENSIONS = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]
NO_NEWS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def lab_config(instructor: bool) -> dict[str, dict]:
    """The files of the JupyterLab config folder for a set-up: {relative path: JSON content}."""
    hidden = [] if instructor else INSTRUCTOR_LAB_PLUGINS
    return {
        "labconfig/default_setting_overrides.json": NO_NEWS,
        "labconfig/page_config.json": {"disabledExtensions": {p: True for p in hidden}},
        "jupyter_server_config.json": {"ServerApp": {"jpserver_extensions": {
            e: instructor for e in INSTRUCTOR_SERVER_EXTENSIONS}}},
    }


def write_lab_config(folder: Path, instructor: bool) -> Path:
    """Write :func:`lab_config` into ``folder`` (replacing what a previous launch wrote)."""
    for rel, content in lab_config(instructor).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2) + "\n")
    return folder


def lab_command(instructor: bool, extra: list[str], euid: int | None = None,
                environ: dict | None = None) -> tuple[list[str], dict, Path]:
    """What ``course`` runs: (argv, environment, config folder). Pure: writes nothing."""
    environ = dict(os.environ if environ is None else environ)
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else None
    config = VENV / "etc" / "mi-course" / ("instructor" if instructor else "student")
    env = dict(environ, HF_HUB_DISABLE_TELEMETRY="1", VIRTUAL_ENV=str(VENV))
    env["PATH"] = os.pathsep.join([str(BIN)] + [p for p in environ.get("PATH", "").split(os.pathsep)
                                                 if p and p != str(BIN)])
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(config)] + [p for p in environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != str(config)])
    argv = [str(PY), "-m", "jupyter", "lab", "solutions/" if instructor else "notebooks/",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if euid == 0:
        argv.append("--allow-root")  # containers and cloud VMs run as root; JupyterLab refuses that otherwise
    return argv + extra, env, config


def activation_hint() -> str:
    if os.name == "nt":
        return f"  {BIN / 'activate'}"
    return f"  source {os.path.relpath(BIN / 'activate')}" if Path.cwd() == ROOT else f"  source {BIN / 'activate'}"


def test_commands(extra: list[str], cpus: int | None = None) -> list[list[str]]:
    """The pytest runs of ``bootstrap.py test``.

    With arguments: one run with them. Without: the tests marked ``alone`` first (they judge notebook
    run times or drive real servers, so they get a quiet machine), then the rest spread over the CPUs
    by file (pytest-xdist; most tests use one thread, so a second core would otherwise idle).
    """
    pytest = [str(PY), "-m", "pytest"]
    if extra:
        return [pytest + extra]
    cpus = cpus or os.cpu_count() or 1
    rest = pytest + ["-m", "not alone"] + (["-n", str(min(cpus, 4)), "--dist", "loadfile"] if cpus > 1 else [])
    return [pytest + ["-m", "alone"], rest]


def run_tests(extra: list[str], env: dict) -> int:
    """Every run of :func:`test_commands`, even after a failure; non-zero if any failed."""
    codes = [subprocess.run(cmd, cwd=ROOT, env=env).returncode for cmd in test_commands(extra)]
    return next((c for c in codes if c), 0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    what = args[0] if args else "course"
    extra = args[1:]
    if what not in ("course", "test"):
        print(__doc__)
        return 2
    setup()
    env = dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1")
    if what == "test":
        ensure_chromium()
        env.setdefault("HF_HUB_OFFLINE", "1")
        return run_tests(extra, env)
    instructor = "--instructor" in extra
    extra = [a for a in extra if a != "--instructor"]
    cmd, env, config = lab_command(instructor, extra)
    write_lab_config(config, instructor)
    print(f"mi-course is on the PATH of JupyterLab's notebooks and terminals. In your own shell:\n"
          f"{activation_hint()}\n  mi-course --help\n"
          + ("Instructor set-up: nbgrader's Create Assignment and Formgrader are shown."
             if instructor else "Student set-up (instructors: python3 bootstrap.py course --instructor)."),
          flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
