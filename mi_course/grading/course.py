"""The trusted copies of a week's notebooks (the solution source with hidden tests, and a fresh
release) for the grader. Where the course's files are comes from :mod:`mi_course.course.model`
(re-exported here: ``Course``, ``find_course``, ``tools_on_path``)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mi_course.course.model import Course, find_course, tools_on_path
from mi_course.errors import InputError

__all__ = ["Course", "TrustedWeek", "find_course", "tools_on_path", "trusted_week"]


@dataclass
class TrustedWeek:
    """The trusted notebooks of one week: name -> (source with hidden tests, release)."""

    name: str
    notebooks: dict[str, tuple[nbformat.NotebookNode, nbformat.NotebookNode]]


def trusted_week(course: Course, week: str) -> TrustedWeek:
    """Generate a fresh release of ``week`` from its source (outside the course folder) and
    register the assignment and its grade cells in the course gradebook."""
    src_dir = course.source_dir(week)
    names = sorted(p.stem for p in src_dir.glob("*.ipynb"))
    if not names:
        raise InputError(f"{src_dir} has no notebooks")
    with tempfile.TemporaryDirectory(prefix="mi-release-") as tmp:
        released = course.generate(week, Path(tmp), db_url=course.db_url)
        books = {}
        for name in names:
            source = nbformat.read(src_dir / f"{name}.ipynb", as_version=4)
            release = nbformat.read(released / f"{name}.ipynb", as_version=4)
            books[name] = (source, release)
    return TrustedWeek(week, books)
