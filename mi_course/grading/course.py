"""Where a course's files are, read from its ``nbgrader_config.py``, and the trusted copies
of a week's notebooks (the solution source with hidden tests, and a fresh release)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mi_course.errors import InputError


@dataclass
class Course:
    root: Path
    source: str = "solutions"
    release: str = "notebooks"
    submitted: str = "submitted"
    autograded: str = "autograded"
    feedback: str = "feedback"

    @property
    def db_path(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def config(self):
        """The course's nbgrader config (traitlets ``Config``), rooted at ``root``."""
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        cfg = Config()
        if (self.root / "nbgrader_config.py").exists():
            cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config())
        cfg.CourseDirectory.root = str(self.root)
        cfg.CourseDirectory.db_url = self.db_url
        return cfg

    def week(self, week: str) -> str:
        """The week folder matching ``week`` (``2``, ``02`` or ``02_induction_heads``)."""
        base = self.root / self.source
        found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        key = str(week)
        match = [w for w in found if w == key or w.split("_")[0] == key.zfill(2)]
        if len(match) != 1:
            raise InputError(f"no week '{week}' in {base}: weeks are {', '.join(found) or '(none)'}")
        return match[0]


def tools_on_path() -> None:
    """nbgrader's Gradebook runs ``alembic`` from PATH: make this Python's scripts findable."""
    import sys

    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def find_course(root: str | Path | None = None) -> Course:
    """The course at ``root``, ``$MI_COURSE_ROOT``, the current folder if it has ``solutions/``,
    else the repository this package lives in."""
    if root is None and not os.environ.get("MI_COURSE_ROOT") and not (Path.cwd() / "solutions").is_dir():
        repo = Path(__file__).resolve().parents[2]
        root = repo if (repo / "solutions").is_dir() else None
    path = Path(root or os.environ.get("MI_COURSE_ROOT") or os.getcwd()).resolve()
    course = Course(path)
    cfg = course.config()
    cd = cfg.get("CourseDirectory", {})
    for key, attr in [("source_directory", "source"), ("release_directory", "release"),
                      ("submitted_directory", "submitted"), ("autograded_directory", "autograded"),
                      ("feedback_directory", "feedback")]:
        if key in cd:
            setattr(course, attr, str(cd[key]))
    if not (path / course.source).is_dir():
        raise InputError(f"{path} has no {course.source}/ folder: run in the course folder or pass --course.")
    return course


@dataclass
class TrustedWeek:
    """The trusted notebooks of one week: name -> (source with hidden tests, release)."""

    name: str
    notebooks: dict[str, tuple[nbformat.NotebookNode, nbformat.NotebookNode]]


def trusted_week(course: Course, week: str) -> TrustedWeek:
    """Generate a fresh release of ``week`` from its source (outside the course folder) and
    register the assignment and its grade cells in the course gradebook."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    tools_on_path()
    src_dir = course.root / course.source / week
    names = sorted(p.stem for p in src_dir.glob("*.ipynb"))
    if not names:
        raise InputError(f"{src_dir} has no notebooks")
    with tempfile.TemporaryDirectory(prefix="mi-release-") as tmp:
        scratch = Path(tmp)
        shutil.copytree(src_dir, scratch / course.source / week)
        cfg = course.config()
        cfg.CourseDirectory.root = str(scratch)
        cfg.CourseDirectory.db_url = course.db_url
        api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
        result = api.generate_assignment(week, force=True)
        if not result["success"]:
            raise InputError(f"nbgrader could not generate {week}:\n{result['log'][-3000:]}\n{result.get('error', '')}")
        books = {}
        for name in names:
            source = nbformat.read(src_dir / f"{name}.ipynb", as_version=4)
            release = nbformat.read(scratch / course.release / week / f"{name}.ipynb", as_version=4)
            books[name] = (source, release)
    return TrustedWeek(week, books)
