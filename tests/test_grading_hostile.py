"""The hostile-submission battery: every submission is graded by what its answers really do,
flagged where it should be, and cannot touch the course, the gradebook or other students."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hostile.course import WEEK, make_course  # noqa: E402
from hostile.variants import Week, variants  # noqa: E402
from mi_course.grading import grader, sandbox  # noqa: E402
from mi_course.grading.course import find_course, trusted_week  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.alone,
              pytest.mark.skipif(not sandbox.probe().full,
                                 reason="grading sandbox needs root with namespaces: " + "; ".join(sandbox.probe().problems))]

OPTS = dict(cell_timeout=20.0, notebook_timeout=120.0, grace=2.0, workers=2)


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return " ".join(str(o.get("text", "")) + str(o.get("evalue", "")) for c in nb.cells if c.cell_type == "code"
                    for o in c.outputs)


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel.split("/")[0] in ("solutions", "submitted", "nbgrader_config.py"):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


REPO = Path(__file__).resolve().parents[1]
REAL_WEEK = "02_induction_heads"


def _real_course(root: Path) -> Path:
    """A scratch copy of the real course's week 02 (source notebook and nbgrader config)."""
    (root / "solutions").mkdir(parents=True)
    shutil.copytree(REPO / "solutions" / REAL_WEEK, root / "solutions" / REAL_WEEK)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


WEEK = REAL_WEEK if (REPO / "solutions" / REAL_WEEK).is_dir() else WEEK


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    base = tmp_path_factory.mktemp("course")
    root = _real_course(base) if WEEK == REAL_WEEK else make_course(base)
    course = find_course(root)
    tw = trusted_week(course, WEEK)
    source, release = tw.notebooks[WEEK]
    week = Week(source, release)
    vs = {v.name: v for v in variants(week, root)}
    for v in vs.values():
        folder = root / "submitted" / v.name / WEEK
        folder.mkdir(parents=True)
        if v.raw is not None:
            (folder / f"{WEEK}.ipynb").write_text(v.raw)
        else:
            nbformat.write(v.nb, folder / f"{WEEK}.ipynb")
        for name, text in v.extra_files.items():
            (folder / name).write_text(text)
        (folder / "timestamp.txt").write_text("2026-11-20 12:00:00.000000 UTC")
        (folder / "submission_secret.txt").write_text(f"secret-{v.name}")
    before = _snapshot(root)
    t0 = time.monotonic()
    results = grader.grade_week(course, WEEK, opts=grader.Options(**OPTS), progress=False)
    seconds = time.monotonic() - t0
    return {"root": root, "course": course, "week": week, "variants": vs, "before": before,
            "results": {r.student: r for r in results}, "seconds": seconds, "tw": tw}


NAMES = ["correct", "blank", "infinite_loop", "hang_ignoring_sigint", "memory_hog", "edited_tests_and_points",
         "deleted_tests", "stripped_metadata", "rebind_allclose", "replace_checker_module", "replace_compare_only",
         "sys_exit", "os_exit", "course_files", "torch_py_beside", "network", "detached_process",
         "custom_exception_handler", "input_transformer", "fill_the_disk", "huge_output", "fake_success", "not_a_notebook"]


@pytest.mark.parametrize("name", NAMES)
def test_graded_correctly_and_flagged(battery, name):
    v = battery["variants"][name]
    r = battery["results"][name]
    got = {t.test: t.points for t in r.tests}
    detail = "\n".join(f"  {t.test}: {t.points} {t.status} {t.message}" for t in r.tests) + f"\n  flags: {r.flags}"
    assert got == v.expected, f"{name}: points {got}, expected {v.expected}\n{detail}"
    assert r.status in v.status, f"{name}: status {r.status}, expected one of {v.status}\n{detail}"
    if v.flag:
        text = " ".join(r.flags + [t.message for t in r.tests])
        assert v.flag in text, f"{name}: no '{v.flag}' in the report\n{detail}"
    if r.status == "ok" and name != "huge_output":
        assert not r.flags, f"{name}: unexpected flags {r.flags}"


def test_battery_is_fast_enough(battery):
    n = len(battery["results"])
    print(f"\n{n} hostile submissions graded in {battery['seconds']:.1f} s with {OPTS['workers']} workers")
    assert battery["seconds"] < 240


def test_sandbox_saw_nothing_and_left_nothing(battery):
    root = battery["root"]
    auto = root / "autograded"
    text = _outputs(auto / "course_files" / WEEK / f"{WEEK}.ipynb")
    assert "READ " not in text and "WROTE " not in text, "a kernel read or wrote the course folder"
    assert "FileNotFoundError" in text
    disk = _outputs(auto / "fill_the_disk" / WEEK / f"{WEEK}.ipynb")
    assert "stopped: OSError" in disk and int(disk.split("MB written:")[1].split()[0]) <= 128
    net = _outputs(auto / "network" / WEEK / f"{WEEK}.ipynb")
    assert "CONNECTED" not in net and "OSError" in net
    if sandbox.probe().memory_cgroup:
        assert "mi-grade-" in net, "the kernel is not in its memory cgroup"
    time.sleep(6)  # the detached process would act 4 s after it started
    assert _snapshot(root) == battery["before"], "the course folder changed"
    assert not list(root.rglob("pwned*")), "a kernel wrote outside its sandbox"
    db = sqlite3.connect(root / "gradebook.db")
    most = max(points for points, _ in battery["week"].tests.values())  # the largest test cell's points
    assert db.execute("select max(auto_score) from grade").fetchone()[0] <= most
    uid0 = grader.Options().uid_base
    left = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.stat(p).st_uid >= uid0:
                    left.append(p.name)
            except OSError:
                pass
    assert not left, f"student processes outlived grading: {left}"


def test_gradebook_and_export_agree_with_report(battery):
    from nbgrader.api import Gradebook

    course = battery["course"]
    with Gradebook(course.db_url) as gb:
        for name, r in battery["results"].items():
            sub = gb.find_submission(WEEK, name)
            assert sub.score == pytest.approx(r.score), name
            assert sub.max_score == pytest.approx(r.max_score), name
    import csv
    import subprocess

    from mi_course.grading.course import tools_on_path

    tools_on_path()
    out = course.root / "export.csv"
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(out)], cwd=course.root,
                   check=True, capture_output=True)
    exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(open(out))
                if row["assignment"] == WEEK}
    assert exported == {name: pytest.approx(r.score) for name, r in battery["results"].items()}


def test_feedback_hides_hidden_tests(battery):
    from mi_course.grading.feedback import write_feedback

    course = battery["course"]
    paths = write_feedback(course, WEEK)
    assert len(paths) == len(battery["results"])
    hidden = []
    for _, src in battery["week"].tests.values():
        inside = src.split("### BEGIN HIDDEN TESTS")[1:]
        hidden += [line.strip() for part in inside for line in part.split("### END HIDDEN TESTS")[0].splitlines()
                   if line.strip()]
    assert hidden
    for p in paths:
        html = p.read_text()
        for line in hidden:
            assert line not in html, f"{p} shows hidden test source: {line}"
        assert "Traceback" not in html
    fb = course.root / "feedback" / "correct" / WEEK
    assert (fb / "submission_secret.txt").read_text() == "secret-correct"  # for nbgrader release_feedback
    assert (fb / "timestamp.txt").exists()
    correct = (fb / f"{WEEK}.html").read_text()
    r = battery["results"]["correct"]
    assert f"Score: <b>{r.score:g} / {r.max_score:g}</b>" in correct and r.score == r.max_score


def test_cli_serial_plain_folder_and_regrade_agree(battery, tmp_path, capsys):
    """`mi-course grade` again, serially, from a plain folder of <student>.ipynb: the same grades
    as the parallel run; a changed submission gets its new grade (nothing stale)."""
    import csv

    from mi_course import cli

    root, course = battery["root"], battery["course"]
    flat = tmp_path / "flat"
    flat.mkdir()
    names = ["correct", "fake_success", "os_exit"]
    for n in names:
        shutil.copy(root / "submitted" / n / WEEK / f"{WEEK}.ipynb", flat / f"{n}.ipynb")
    nbformat.write(battery["variants"]["blank"].nb, flat / "huge_output.ipynb")  # resubmitted blank
    rc = cli.main(["grade", WEEK, str(flat), "--course", str(root), "--workers", "1", "--timeout", "20",
                   "--report", str(tmp_path / "report")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Grading summary" in out and "kernel-died" in out and "sandbox: complete" in out
    assert "sandbox: complete" in (tmp_path / "report" / "summary.md").read_text()
    rows = list(csv.DictReader(open(tmp_path / "report" / "tests.csv")))
    serial = {(r["student_id"], r["test"]): (float(r["points"]), r["status"]) for r in rows}
    for n in names:
        for t in battery["results"][n].tests:
            assert serial[(n, t.test)] == (t.points, t.status), (n, t.test)
    grades = {r["student_id"]: r for r in csv.DictReader(open(tmp_path / "report" / "grades.csv"))}
    assert grades["os_exit"]["status"] == "kernel-died" and grades["correct"]["status"] == "ok"
    assert float(grades["huge_output"]["score"]) == 0
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        assert gb.find_submission(WEEK, "huge_output").score == 0
        assert gb.find_submission(WEEK, "correct").score == battery["results"]["correct"].score
