"""Without namespaces (a container without CAP_SYS_ADMIN, or not root) grading still decides
points outside the kernel, and says loudly that the sandbox is incomplete."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hostile.course import WEEK, make_course  # noqa: E402
from hostile.variants import Week  # noqa: E402
from mi_course.grading import grader, report, sandbox  # noqa: E402
from mi_course.grading.course import find_course, trusted_week  # noqa: E402


@pytest.mark.slow
def test_weak_sandbox_grades_and_warns(tmp_path, monkeypatch):
    weak = sandbox.Capabilities(namespaces=False, drop_user=False, limits=True,
                                problems=["namespaces refused (simulated)"])
    monkeypatch.setattr(sandbox, "probe", lambda: weak)
    course = find_course(make_course(tmp_path))
    source, release = trusted_week(course, WEEK).notebooks[WEEK]
    week = Week(source, release)
    good, bad = week.filled(), week.filled()
    week.cell(bad, week.answers[0][0]).source = week.wrong(0) + "\nimport torch\ntorch.allclose = lambda *a, **k: True\n"
    for name, nb in [("good", good), ("bad", bad)]:
        (tmp_path / "submitted" / name / WEEK).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "submitted" / name / WEEK / f"{WEEK}.ipynb")
    with pytest.warns(RuntimeWarning, match="INCOMPLETE"):
        results = {r.student: r for r in grader.grade_week(course, WEEK, opts=grader.Options(workers=2, cell_timeout=60),
                                                            progress=False)}
    assert results["good"].score == results["good"].max_score == 3
    assert results["bad"].score == 0
    text = report.summary(list(results.values()), ["sandbox: INCOMPLETE"])
    assert "INCOMPLETE" in text
