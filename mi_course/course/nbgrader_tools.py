"""Release and validate the course notebooks with nbgrader.

``solutions/<week>/<week>.ipynb`` is the only source. ``release`` strips it (outputs,
execution counts, execution metadata, widget state) and generates ``notebooks/<week>/``
with nbgrader; ``validate`` checks that ``notebooks/`` equals a fresh generation, that the
sources are stripped, and (optionally) that each solution notebook passes its own tests.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
import time
from pathlib import Path

import sys

import nbformat

from mi_course.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def course_root() -> Path:
    """The course folder (the repository root, where ``nbgrader_config.py`` lives)."""
    env = os.environ.get("MI_COURSE_ROOT")
    root = Path(env) if env else REPO
    if not (root / "solutions").is_dir():
        raise InputError(f"{root} has no solutions/ folder: run this from the course repository "
                         "or set MI_COURSE_ROOT.")
    return root


def weeks(week: str | None = None, folder: str = "solutions") -> list[str]:
    """Week folders (``02_induction_heads``), all or those matching ``week`` (``2``, ``02`` or the name)."""
    base = course_root() / folder
    found = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name[:2].isdigit())
    if week is None:
        return found
    key = str(week)
    match = [w for w in found if w == key or w.split("_")[0] == key.zfill(2)]
    if not match:
        raise InputError(f"no week '{week}' in {folder}/: weeks are {', '.join(found) or '(none)'}")
    return match


def ensure_tools_on_path() -> None:
    """nbgrader runs helper executables (``alembic``) by name: put this interpreter's bin first on PATH,
    so a venv that was not activated still works."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


# -- stripping -----------------------------------------------------------------------------------
def _strip(nb) -> bool:
    """Remove outputs and run state in place; True if anything changed."""
    changed = False
    for key in ("widgets", "execution"):
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    for cell in nb.cells:
        if cell.cell_type == "code":
            if cell.get("outputs"):
                cell.outputs = []
                changed = True
            if cell.get("execution_count") is not None:
                cell.execution_count = None
                changed = True
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    return changed


def strip_problems(path: Path) -> list[str]:
    """What is left in a source notebook that should not be (outputs, counts, run metadata)."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    _strip(nb)
    return [] if nbformat.writes(nb) == before else [f"{path} has outputs or execution metadata: run `mi-course release`"]


def strip_notebook(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    if _strip(nb):
        nbformat.write(nb, path)
        return True
    return False


# -- generation -----------------------------------------------------------------------------------
def course_config(root: Path):
    """The course's ``nbgrader_config.py`` (from the course root), pointed at course folder ``root``."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    ensure_tools_on_path()
    cfg = Config()
    cfg_file = course_root() / "nbgrader_config.py"
    if cfg_file.exists():
        cfg.merge(PyFileConfigLoader(cfg_file.name, path=str(cfg_file.parent)).load_config())
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.db_url = f"sqlite:///{Path(root) / 'gradebook.db'}"
    return cfg


def nbgrader_api(root: Path):
    """An ``NbGraderAPI`` for course folder ``root`` with the course's configuration."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    cfg = course_config(root)
    return NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)


def _generate(week: str, root: Path) -> Path:
    """Run nbgrader generate_assignment for ``week`` inside course folder ``root``."""
    result = nbgrader_api(root).generate_assignment(week, force=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not generate {week}:\n{result['log']}\n{result.get('error', '')}")
    return root / "notebooks" / week


def generate_fresh(week: str, out: Path) -> Path:
    """Generate ``week``'s release into a scratch course folder ``out`` (the repo is untouched)."""
    root = course_root()
    (out / "solutions").mkdir(parents=True, exist_ok=True)
    shutil.copytree(root / "solutions" / week, out / "solutions" / week, dirs_exist_ok=True)
    return _generate(week, out)


def release(week: str) -> Path:
    """Strip ``solutions/<week>`` and regenerate ``notebooks/<week>`` from it."""
    root = course_root()
    for nb in sorted((root / "solutions" / week).glob("*.ipynb")):
        strip_notebook(nb)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate_fresh(week, Path(tmp))
        dest = root / "notebooks" / week
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(fresh, dest)
    return dest


def _diff_dirs(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__", ".ipynb_checkpoints"])
    out = [f"only in {a.name} (fresh generation): {x}" for x in cmp.left_only]
    out += [f"only in notebooks/: {x}" for x in cmp.right_only]
    for name in cmp.common_files:
        if (a / name).read_bytes() != (b / name).read_bytes():
            out.append(f"{name} differs from a fresh generation")
    for sub in cmp.common_dirs:
        out += _diff_dirs(a / sub, b / sub)
    return out


def drift(week: str) -> list[str]:
    """Differences between ``notebooks/<week>`` and a fresh generation from ``solutions/<week>``."""
    root = course_root()
    released = root / "notebooks" / week
    if not released.exists():
        return [f"notebooks/{week} is missing: run `mi-course release {week[:2]}`"]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate_fresh(week, Path(tmp))
        return [f"{week}: {d} (run `mi-course release {week[:2]}`)" for d in _diff_dirs(fresh, released)]


def execute(path: Path, timeout: int = 120, cwd: Path | None = None) -> float:
    """Run a notebook top to bottom offline on CPU; return seconds. Raises on the first failing cell."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_backup = dict(os.environ)
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg",
                       "CUDA_VISIBLE_DEVICES": ""})
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd or path.parent)}})
        t = time.time()
        client.execute()
        return time.time() - t
    finally:
        os.environ.clear()
        os.environ.update(env_backup)


def validate(week: str | None = None, run: bool = True) -> list[str]:
    """All problems found for ``week`` (or every week); empty when everything is in order."""
    problems: list[str] = []
    root = course_root()
    for w in weeks(week):
        sources = sorted((root / "solutions" / w).glob("*.ipynb"))
        if not sources:
            problems.append(f"{w}: no notebook in solutions/{w}")
        for nb in sources:
            problems += strip_problems(nb)
        problems += drift(w)
        if run:
            for nb in sources:
                try:
                    seconds = execute(nb)
                    print(f"{nb.relative_to(root)} ran in {seconds:.0f} s")
                except Exception as err:  # a failing cell: report, keep validating
                    problems.append(f"{nb.relative_to(root)} does not pass its own tests: {str(err)[-600:]}")
    return problems
