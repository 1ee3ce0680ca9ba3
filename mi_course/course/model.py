"""One model of the course folder, used by every ``mi-course`` command.

A course folder is an nbgrader course: ``nbgrader_config.py`` at its root names the source
directory (instructor notebooks, ``solutions/`` here) and the release directory (student
notebooks, ``notebooks/``); decks live in ``slides/``. :func:`find_course` finds the folder,
:class:`Course` reads its configuration once and answers every "where is ...?" question:

>>> course = find_course()            # --course, $MI_COURSE_ROOT, or walk up to nbgrader_config.py
>>> course.week("2")                  # '02_induction_heads'
>>> course.generate("02_induction_heads", scratch)   # a fresh nbgrader release, repo untouched

Nothing here hard-codes ``solutions``/``notebooks``: they come from the config.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from mi_course.errors import InputError

CONFIG_FILE = "nbgrader_config.py"
ROOT_ENV = "MI_COURSE_ROOT"
# Per-cell timeout of `mi-course validate` (seconds), unless --timeout or c.MiCourse.validate_timeout says
# otherwise. Generous: validation runs on loaded laptops and CI machines, and a timeout is not a wrong answer.
VALIDATE_TIMEOUT_S = 600.0


def tools_on_path() -> None:
    """Put this interpreter's scripts folder first on ``PATH`` (for this process and its children).

    nbgrader runs ``alembic`` by name, and notebooks call ``mi-course``: both must be found when
    the venv was not activated (a kernel started by JupyterLab, ``.venv/bin/mi-course`` run by path).
    """
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _walk_up(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def _package_checkout() -> Path | None:
    """The repository this package was imported from, when it is a checkout (editable install)."""
    repo = Path(__file__).resolve().parents[2]
    return repo if (repo / CONFIG_FILE).is_file() else None


def locate_root(root: str | Path | None = None) -> Path:
    """The course folder: ``root`` (``--course``), else ``$MI_COURSE_ROOT``, else the nearest folder
    at or above the current one holding ``nbgrader_config.py``, else the checkout this package runs from."""
    if root is None:
        root = os.environ.get(ROOT_ENV) or None
    if root is not None:
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise InputError(f"course folder {path} does not exist (from --course or ${ROOT_ENV}).")
        return path
    found = _walk_up(Path.cwd().resolve()) or _package_checkout()
    if found is None:
        raise InputError(f"no course folder here: neither {Path.cwd()} nor a folder above it has {CONFIG_FILE}. "
                         f"Run this inside the course folder, pass --course PATH or set {ROOT_ENV}.")
    return found


@dataclass
class Course:
    """A course folder and the directory names its nbgrader config gives."""

    root: Path
    source: str = "solutions"
    release: str = "notebooks"
    submitted: str = "submitted"
    autograded: str = "autograded"
    feedback: str = "feedback"
    slides: str = "slides"

    # -- configuration ---------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def db_path(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def config(self, root: Path | None = None, db_url: str | None = None):
        """The course's nbgrader config (traitlets ``Config``), rooted at ``root`` (default: the course)."""
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        tools_on_path()
        cfg = Config()
        if self.config_file.exists():
            cfg.merge(PyFileConfigLoader(CONFIG_FILE, path=str(self.root)).load_config())
        target = Path(root) if root is not None else self.root
        cfg.CourseDirectory.root = str(target)
        cfg.CourseDirectory.db_url = db_url or f"sqlite:///{target / 'gradebook.db'}"
        return cfg

    def setting(self, section: str, key: str, default=None):
        """One value of the config (``setting("Execute", "timeout")``), or ``default``."""
        value = self.config().get(section, {}).get(key, default)
        return default if value is None else value

    @property
    def validate_timeout(self) -> float:
        """Per-cell timeout of ``mi-course validate``: ``c.MiCourse.validate_timeout``, else 600 s."""
        return float(self.setting("MiCourse", "validate_timeout", VALIDATE_TIMEOUT_S))

    # -- folders and weeks -----------------------------------------------------------------------
    def folder(self, kind: str) -> Path:
        """``kind`` is ``source``, ``release``, ``slides``, ``submitted``, ``autograded`` or ``feedback``."""
        return self.root / getattr(self, kind)

    def source_dir(self, week: str) -> Path:
        return self.root / self.source / week

    def release_dir(self, week: str) -> Path:
        return self.root / self.release / week

    def slides_dir(self, week: str) -> Path:
        return self.root / self.slides / week

    def weeks(self, week: str | None = None, kind: str = "source") -> list[str]:
        """Week folders (``02_induction_heads``) in the ``kind`` folder: all, or the one matching ``week``
        (``2``, ``02`` or the full name)."""
        base = self.folder(kind)
        if not base.is_dir():
            raise InputError(f"{self.root} has no {base.name}/ folder (the course's {kind} folder): "
                             "run this in the course folder or pass --course PATH.")
        found = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name[:2].isdigit())
        if week is None:
            return found
        return [self._match(week, found, base)]

    def week(self, week: str, kind: str = "source") -> str:
        """The one week folder matching ``week`` (``2``, ``02`` or ``02_induction_heads``)."""
        return self.weeks(str(week), kind)[0]

    @staticmethod
    def _match(week, found: list[str], base: Path) -> str:
        key = str(week).strip()
        match = [w for w in found if w == key]
        if not match and key.isdigit():
            match = [w for w in found if w.split("_")[0] == key.zfill(2)]
        if len(match) != 1:
            listed = ", ".join(found) or "(none)"
            raise InputError(f"no week '{week}' in {base.name}/ ({base}): weeks are {listed}")
        return match[0]

    # -- nbgrader ------------------------------------------------------------------------------
    def nbgrader_api(self, root: Path | None = None, db_url: str | None = None):
        """An ``NbGraderAPI`` with the course's configuration, for course folder ``root`` (default: this one)."""
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        cfg = self.config(root, db_url)
        return NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)

    def generate(self, week: str, scratch: Path, db_url: str | None = None) -> Path:
        """Generate ``week``'s student release inside the scratch folder ``scratch`` (the course is
        untouched) and return the released week folder. ``db_url`` picks the gradebook that records the
        assignment (default: one in ``scratch``)."""
        scratch = Path(scratch)
        src = self.source_dir(week)
        if not src.is_dir():
            raise InputError(f"no week folder {src}")
        shutil.copytree(src, scratch / self.source / week, dirs_exist_ok=True)
        result = self.nbgrader_api(scratch, db_url).generate_assignment(week, force=True)
        if not result["success"]:
            raise InputError(f"nbgrader could not generate {week}:\n{result['log'][-3000:]}\n{result.get('error', '')}")
        return scratch / self.release / week


def find_course(root: str | Path | None = None) -> Course:
    """The :class:`Course` at ``root`` / ``$MI_COURSE_ROOT`` / the nearest ``nbgrader_config.py`` above
    the current folder / this package's checkout, with directory names read from its config."""
    path = locate_root(root)
    course = Course(path)
    cd = course.config().get("CourseDirectory", {})
    for key, attr in [("source_directory", "source"), ("release_directory", "release"),
                      ("submitted_directory", "submitted"), ("autograded_directory", "autograded"),
                      ("feedback_directory", "feedback")]:
        if key in cd:
            setattr(course, attr, str(cd[key]))
    slides = course.config().get("MiCourse", {}).get("slides_directory")
    if slides:
        course.slides = str(slides)
    if not (path / course.source).is_dir():
        raise InputError(f"{path} has no {course.source}/ folder (the source_directory of its {CONFIG_FILE}): "
                         "run this in the course folder or pass --course PATH.")
    return course


def add_course_arg(parser) -> None:
    """``--course PATH`` for a subcommand (every ``mi-course`` command that reads the course has it)."""
    parser.add_argument("--course", default=None, metavar="PATH",
                        help=f"course folder (default: ${ROOT_ENV}, else the nearest folder at or above the "
                             f"current one with {CONFIG_FILE})")
