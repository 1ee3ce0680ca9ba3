"""One source of truth: notebooks/ is generated from solutions/, and both grade as they should.

For every week: the source is stripped; notebooks/ equals a fresh nbgrader generation;
autograding the solution gives full marks; autograding the untouched release gives zero on
every test and does not crash.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from mi_course.course import nbgrader_tools

pytestmark = pytest.mark.alone  # run times are judged: bootstrap.py test runs this file first, alone

WEEKS = nbgrader_tools.weeks()
RUNTIME_BUDGET_S = 60  # per solution notebook, offline on CPU, on a quiet 2-core machine
BUSY_RUNTIME_BUDGET_S = 90  # the same beside one other busy process
AUTOGRADE_OVERHEAD_S = 10  # nbgrader's own work around the notebook (database, kernel start, copies)


def runtime_budget(load: float, cpus: int | None = None) -> float | None:
    """The solution's time budget under this load average: 60 s quiet, 90 s with about one busy
    process beside it, ``None`` (cannot judge) on a machine busier than that.

    ``benchmarks/notebook_runtime.py`` measures every week quiet and busy."""
    cpus = cpus or os.cpu_count() or 1
    if load < cpus - 0.5:  # a core to spare: quiet
        return RUNTIME_BUDGET_S
    if load < cpus + 1.5:  # about one busy process beside the notebook
        return BUSY_RUNTIME_BUDGET_S
    return None


def test_runtime_budget_rule():
    assert runtime_budget(0.2, cpus=2) == 60
    assert runtime_budget(1.9, cpus=2) == 90
    assert runtime_budget(6.0, cpus=2) is None


def test_there_are_weeks():
    assert "02_induction_heads" in WEEKS


@pytest.mark.parametrize("week", WEEKS)
def test_solution_is_stripped(week, repo):
    for nb in (repo / "solutions" / week).glob("*.ipynb"):
        assert nbgrader_tools.strip_problems(nb) == []


@pytest.mark.parametrize("week", WEEKS)
def test_release_matches_fresh_generation(week):
    assert nbgrader_tools.drift(week) == []


@pytest.mark.parametrize("week", WEEKS)
def test_exercises_have_goal_difficulty_time_and_checks(week, repo):
    for path in (repo / "solutions" / week).glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert solutions and len(tests) >= len(solutions)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        n_ex = text.count("### Exercise")
        assert n_ex == len(solutions), f"{n_ex} exercise headers for {len(solutions)} solution cells"
        for word in ("**Goal:**", "**Difficulty:**", "**Time:**", "Hint"):
            assert text.count(word) >= n_ex, f"{path.name}: every exercise needs {word}"
        for cell in tests:
            assert "### BEGIN HIDDEN TESTS" in cell.source and "checks." in cell.source
            assert cell.metadata["nbgrader"]["points"] > 0


def _course(tmp_path: Path, repo: Path, week: str) -> Path:
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    shutil.copytree(repo / "solutions" / week, root / "solutions" / week)
    shutil.copy(repo / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


def _autograde(root: Path, week: str, submissions: dict[str, Path],
               seconds: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Autograde each submission; scores per test, and (into ``seconds``) each autograde's time."""
    from nbgrader.api import Gradebook

    api = nbgrader_tools.nbgrader_api(root)
    db_url = api.coursedir.db_url
    assert api.generate_assignment(week, force=True)["success"]
    for student, nb in submissions.items():
        dest = root / "submitted" / student / week
        dest.mkdir(parents=True)
        shutil.copy(nb, dest / nb.name)
        # an extra file beside the notebook must never be imported during grading
        (dest / "torch.py").write_text("raise SystemExit('a submitted torch.py was imported')\n")
        t = time.time()
        result = api.autograde(week, student, force=True)
        if seconds is not None:
            seconds[student] = time.time() - t
        print(f"autograde {student}: {time.time() - t:.0f} s")
        assert result["success"], result["log"][-3000:]
    scores: dict[str, dict[str, float]] = {}
    with Gradebook(db_url, "mi-course") as gb:
        for student in submissions:
            sub = gb.find_submission(week, student)
            scores[student] = {g.name: (g.score, g.max_score) for nbk in sub.notebooks for g in nbk.grades if g.max_score}
    return scores


def _autograde_in_subprocess(root: Path, week: str, student: str, notebook: Path, out: Path):
    """Start autograding one submission in a course of its own, in another process; returns the process.

    The scores land in ``out`` as JSON. Used to grade the untouched release beside the solution, so
    each week's two autogrades take the time of one (the solution then runs beside one busy process:
    the course's second budget, 90 s)."""
    import subprocess
    import sys

    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import test_notebooks as t; from pathlib import Path; "
        "root, week, student, nb, out = Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]), Path(sys.argv[6]); "
        "scores = t._autograde(root, week, {student: nb}); "
        "out.write_text(json.dumps({k: {g: list(v) for g, v in d.items()} for k, d in scores.items()}))"
    )
    log = open(out.with_suffix(".log"), "w")
    return subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent), str(root), week, student,
                             str(notebook), str(out)], stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.parametrize("week", WEEKS)
def test_autograde_solution_full_marks_and_release_zero(week, repo, tmp_path):
    import json

    root = _course(tmp_path / "solution", repo, week)
    solution = next((repo / "solutions" / week).glob("*.ipynb"))
    release = repo / "notebooks" / week / solution.name
    t = time.time()
    # The untouched release grades in a course of its own, in parallel with the solution.
    blank_out = tmp_path / "blank.json"
    blank_proc = _autograde_in_subprocess(_course(tmp_path / "blank", repo, week), week, "blank", release, blank_out)
    try:
        seconds: dict[str, float] = {}
        scores = _autograde(root, week, {"solution": solution}, seconds)
    finally:
        blank_rc = blank_proc.wait(timeout=600)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"{week}: two autogrades (in parallel) took {time.time() - t:.0f} s")
    assert blank_rc == 0, f"autograding the release failed:\n{blank_out.with_suffix('.log').read_text()[-3000:]}"
    full = scores["solution"]
    assert full and all(score == max_score for score, max_score in full.values()), full
    blank = {g: tuple(v) for g, v in json.loads(blank_out.read_text())["blank"].items()}
    assert set(blank) == set(full)
    assert all(score == 0 for score, _ in blank.values()), blank
    # The runtime budget: the solution's autograde runs every cell of the notebook once, beside one
    # busy process (the release's autograde), so the busy budget applies; the quiet one is
    # benchmarks/notebook_runtime.py's. A machine busier than that cannot judge.
    if runtime_budget(load) is None:
        pytest.skip(f"{week}: graded correctly; the runtime budget was not judged: load average {load:.1f} on "
                    f"{os.cpu_count()} CPUs is more than one busy process (solution took {seconds['solution']:.0f} s "
                    "with nbgrader; run benchmarks/notebook_runtime.py on a quiet machine)")
    budget = BUSY_RUNTIME_BUDGET_S
    assert seconds["solution"] <= budget + AUTOGRADE_OVERHEAD_S, (
        f"{week}: the solution notebook took {seconds['solution']:.0f} s to autograde beside the release's "
        f"autograde (load {load:.1f}); the budget is {budget} s + {AUTOGRADE_OVERHEAD_S} s for nbgrader. Move slow "
        "work into a recipe whose result the zoo ships (see CONTRIBUTING), or measure with benchmarks/notebook_runtime.py")
