"""Write trusted grades into nbgrader's gradebook (one writer: the grader's main thread)."""

from __future__ import annotations

import warnings

from nbgrader.api import Gradebook, MissingEntry

from mi_course.grading.course import Course, TrustedWeek


class Writer:
    """Opens the course gradebook once; :meth:`write` stores one student's results.

    Every autograded test cell of every notebook gets a score on each run (0 when it did
    not pass or did not run), so a re-grade never leaves a stale grade behind.
    """

    def __init__(self, course: Course, week: str, trusted: TrustedWeek):
        self.week, self.trusted = week, trusted
        self.gb = Gradebook(course.db_url)
        self.gb.update_or_create_assignment(week)

    def write(self, result) -> None:
        with warnings.catch_warnings():  # nbgrader's SQLAlchemy models warn on every new submission
            warnings.simplefilter("ignore")
            self._write(result)

    def _write(self, result) -> None:
        gb = self.gb
        gb.update_or_create_student(result.student)
        kwargs = {"timestamp": result.timestamp} if result.timestamp else {}
        try:
            gb.update_or_create_submission(self.week, result.student, **kwargs)
        except Exception:  # noqa: BLE001  (an unparsable timestamp.txt)
            gb.update_or_create_submission(self.week, result.student)
        points = {(t.notebook, t.test): t.points for t in result.tests}
        for name in self.trusted.notebooks:
            try:
                nb = gb.find_submission_notebook(name, self.week, result.student)
            except MissingEntry:
                continue
            for grade in nb.grades:
                cell = grade.cell
                if cell is None or getattr(cell, "cell_type", "code") != "code" or grade.cell_id is None:
                    continue
                key = (name, cell.name)
                if key not in points and _is_manual(cell):
                    continue
                grade.auto_score = float(points.get(key, 0.0))
                grade.needs_manual_grade = False
            nb.flagged = result.status != "ok"
        gb.db.commit()

    def close(self) -> None:
        self.gb.close()


def _is_manual(cell) -> bool:
    """Grade cells that are also solution cells are graded by hand in the formgrader."""
    try:
        return bool(cell.notebook and any(s.name == cell.name for s in cell.notebook.solution_cells))
    except Exception:  # noqa: BLE001
        return False
