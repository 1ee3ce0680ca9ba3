#!/usr/bin/env python3
"""Set up the course in ./.venv and open it, or run the tests.

    python3 bootstrap.py course   # set up, then open JupyterLab on notebooks/
    python3 bootstrap.py test     # set up, then run the test suite

Works with any Python >= 3.10. Set MI_COURSE_TORCH to choose the torch requirement
(default: torch==2.13.0; where a local CPU wheel of it is configured, pip takes that one).
`test` also installs Debian's chromium for the real-browser test, but only when run as root
on a system with apt-get (CI); elsewhere that test skips and says why.
"""

from __future__ import annotations

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


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else "course"
    extra = sys.argv[2:]
    if what not in ("course", "test"):
        print(__doc__)
        return 2
    setup()
    env = dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1")
    if what == "test":
        ensure_chromium()
        env.setdefault("HF_HUB_OFFLINE", "1")
        return subprocess.run([str(PY), "-m", "pytest", *extra], cwd=ROOT, env=env).returncode
    return subprocess.run([str(PY), "-m", "jupyter", "lab", "notebooks/", *extra], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
