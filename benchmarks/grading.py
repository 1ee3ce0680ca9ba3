"""Benchmark: seconds per submission, `mi-course grade` (sandboxed, parallel) against plain
serial `nbgrader autograde`, on N copies of a correct submission of a real week.

    python benchmarks/grading.py --week 02 --n 8 [--course .] [--workers 2]

Runs in scratch copies of the course (the real gradebook and folders are not touched).
Not a test: the figures depend on the machine. Needs root for the sandbox.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def scratch_course(course_root: Path, week: str, dest: Path, n: int) -> Path:
    from hostile.variants import Week
    from mi_course.grading.course import find_course, trusted_week

    (dest / "solutions").mkdir(parents=True)
    shutil.copytree(course_root / "solutions" / week, dest / "solutions" / week)
    if (course_root / "nbgrader_config.py").exists():
        shutil.copy(course_root / "nbgrader_config.py", dest / "nbgrader_config.py")
    tw = trusted_week(find_course(dest), week)
    for name, (source, release) in tw.notebooks.items():
        filled = Week(source, release).filled()
        for i in range(n):
            folder = dest / "submitted" / f"student{i:03d}" / week
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(filled, folder / f"{name}.ipynb")
        # nbgrader autograde reads the release from the course's release folder
        rel = dest / "notebooks" / week
        rel.mkdir(parents=True, exist_ok=True)
        nbformat.write(release, rel / f"{name}.ipynb")
    return dest


def _slowest_cells(folder: Path, k: int = 5) -> list[tuple[float, str]]:
    times = []
    for path in folder.glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            info = cell.metadata.get("mi_course", {})
            if "seconds" in info:
                times.append((info["seconds"], cell.source.splitlines()[0][:50] if cell.source else ""))
    return sorted(times, reverse=True)[:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--week", default="02")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--course", default=".")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-nbgrader", action="store_true")
    args = ap.parse_args()

    from mi_course.grading import grader
    from mi_course.grading.course import find_course, tools_on_path

    tools_on_path()
    course = find_course(args.course)
    week = course.week(args.week)
    with tempfile.TemporaryDirectory(prefix="mi-bench-") as tmp:
        ours = scratch_course(course.root, week, Path(tmp) / "ours", args.n)
        t0 = time.monotonic()
        timeout = float(course.config().get("Execute", {}).get("timeout", 120) or 120)
        res = grader.grade_week(find_course(ours), week, opts=grader.Options(workers=args.workers, cell_timeout=timeout))
        t_ours = time.monotonic() - t0
        scores = sorted({r.score for r in res})
        slow = _slowest_cells(ours / "autograded" / res[0].student / week)
        print("slowest cells of one submission (s):", slow)
        per_kernel = sum(r.seconds for r in res) / len(res)
        print(f"mi-course grade: {args.n} submissions in {t_ours:.1f} s with {args.workers} workers "
              f"(scores {scores}); each submission took {per_kernel:.2f} s in its worker (sandboxed kernel "
              f"start + notebook); fixed cost per run (release, zygote, calibration): "
              f"{t_ours - per_kernel * len(res) / args.workers:.1f} s")
        t_nbg = None
        if not args.skip_nbgrader:
            plain = scratch_course(course.root, week, Path(tmp) / "plain", args.n)
            t0 = time.monotonic()
            out = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", week, "--create", "--force"],
                                 cwd=plain, capture_output=True, text=True)
            t_nbg = time.monotonic() - t0
            if out.returncode != 0:
                print(out.stdout[-2000:], out.stderr[-2000:])
            print(f"nbgrader autograde: {args.n} submissions in {t_nbg:.1f} s (serial)")
        print()
        print(f"{'':<28}{'s / submission':>16}")
        print(f"{'mi-course grade (sandbox)':<28}{t_ours / args.n:>16.2f}")
        if t_nbg is not None:
            print(f"{'nbgrader autograde':<28}{t_nbg / args.n:>16.2f}")


if __name__ == "__main__":
    main()
