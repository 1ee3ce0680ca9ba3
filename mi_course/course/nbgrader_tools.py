"""Release and validate the course notebooks with nbgrader.

Where things are comes from :mod:`mi_course.course.model` (the course's ``nbgrader_config.py``:
``solutions/`` and ``notebooks/`` below stand for its source and release directories).
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

import nbformat

from mi_course.course.model import Course, find_course, tools_on_path
from mi_course.errors import InputError


def course_root(course: Course | None = None) -> Path:
    """The course folder (see :func:`mi_course.course.model.find_course`)."""
    return (course or find_course()).root


def weeks(week: str | None = None, folder: str = "source", course: Course | None = None) -> list[str]:
    """Week folders (``02_induction_heads``) of the course's ``folder`` (``source``, ``release`` or
    ``slides``), all or the one matching ``week`` (``2``, ``02`` or the name)."""
    folder = {"solutions": "source", "notebooks": "release"}.get(folder, folder)
    return (course or find_course()).weeks(week, folder)


ensure_tools_on_path = tools_on_path


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
def course_config(root: Path, course: Course | None = None):
    """The course's nbgrader config, pointed at course folder ``root``."""
    return (course or find_course()).config(root)


def nbgrader_api(root: Path, course: Course | None = None):
    """An ``NbGraderAPI`` for course folder ``root`` with the course's configuration."""
    return (course or find_course()).nbgrader_api(root)


def generate_fresh(week: str, out: Path, course: Course | None = None) -> Path:
    """Generate ``week``'s release into a scratch course folder ``out`` (the course is untouched)."""
    return (course or find_course()).generate(week, out)


def release(week: str, course: Course | None = None) -> Path:
    """Strip the source of ``week`` and regenerate its release folder from it."""
    course = course or find_course()
    for nb in sorted(course.source_dir(week).glob("*.ipynb")):
        strip_notebook(nb)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = course.generate(week, Path(tmp))
        dest = course.release_dir(week)
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


def drift(week: str, course: Course | None = None) -> list[str]:
    """Differences between the released ``week`` and a fresh generation from its source."""
    course = course or find_course()
    released = course.release_dir(week)
    if not released.exists():
        return [f"{course.release}/{week} is missing: run `mi-course release {week[:2]}`"]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = course.generate(week, Path(tmp))
        return [f"{week}: {d} (run `mi-course release {week[:2]}`)" for d in _diff_dirs(fresh, released)]


class NotebookFailed(InputError):
    """A notebook did not run to the end under ``mi-course validate`` (the message says where and why)."""


def _cell_label(nb, index: int | None) -> str:
    if index is None or not 0 <= index < len(nb.cells):
        return "a cell"
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    first = next((line.strip() for line in nb.cells[index].source.splitlines() if line.strip()), "")
    n = code.index(index) + 1 if index in code else index + 1
    return f"code cell {n} of {len(code)} ({first[:70]!r})"


def execute(path: Path, timeout: float | None = None, cwd: Path | None = None) -> float:
    """Run a notebook top to bottom offline on CPU; return seconds.

    ``timeout`` is the limit per cell in seconds (default :data:`~mi_course.course.model.VALIDATE_TIMEOUT_S`).
    Raises :class:`NotebookFailed` on the first failing cell, saying which cell and what happened
    ("timed out after N s in code cell k ..." or "code cell k ... raised NameError: ...").
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from mi_course.course.model import VALIDATE_TIMEOUT_S

    timeout = float(VALIDATE_TIMEOUT_S if timeout is None else timeout)
    if not timeout > 0:
        raise InputError(f"the per-cell timeout must be a positive number of seconds, got {timeout}")
    nb = nbformat.read(path, as_version=4)
    env_backup = dict(os.environ)
    tools_on_path()  # the kernel inherits PATH: `!mi-course ...` in a notebook finds this venv's command
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg", "MI_COURSE_PILOT": "0",
                       "CUDA_VISIBLE_DEVICES": ""})
    current: dict = {"index": None}

    def on_cell_execute(cell, cell_index, **_):
        current["index"] = cell_index

    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", on_cell_execute=on_cell_execute,
                                resources={"metadata": {"path": str(cwd or path.parent)}})
        t = time.time()
        try:
            client.execute()
        except CellTimeoutError as err:
            raise NotebookFailed(
                f"timed out after {timeout:g} s in {_cell_label(nb, current['index'])}: the cell did not finish in "
                f"time (a slow or busy machine?). Raise the limit with `mi-course validate --timeout SECONDS` or "
                f"c.MiCourse.validate_timeout in nbgrader_config.py.") from err
        except DeadKernelError as err:
            raise NotebookFailed(f"the kernel died in {_cell_label(nb, current['index'])} "
                                 f"(out of memory?): {str(err)[:300]}") from err
        except CellExecutionError as err:
            evalue = (err.evalue or "").strip()
            if len(evalue) > 500:
                evalue = evalue[:500] + " ..."
            raise NotebookFailed(f"{_cell_label(nb, current['index'])} raised {err.ename}: {evalue}") from err
        return time.time() - t
    finally:
        os.environ.clear()
        os.environ.update(env_backup)


def validate(week: str | None = None, run: bool = True, timeout: float | None = None,
             course: Course | None = None) -> list[str]:
    """All problems found for ``week`` (or every week); empty when everything is in order.

    ``timeout``: seconds per cell when running the solutions (default: the course's
    ``c.MiCourse.validate_timeout``, else 600).
    """
    course = course or find_course()
    root = course.root
    if timeout is None:
        timeout = course.validate_timeout
    problems: list[str] = []
    for w in course.weeks(week):
        sources = sorted(course.source_dir(w).glob("*.ipynb"))
        if not sources:
            problems.append(f"{w}: no notebook in {course.source}/{w}")
        for nb in sources:
            problems += strip_problems(nb)
        problems += drift(w, course)
        if run:
            for nb in sources:
                try:
                    seconds = execute(nb, timeout=timeout)
                    print(f"{nb.relative_to(root)} ran in {seconds:.0f} s")
                except NotebookFailed as err:  # report, keep validating
                    problems.append(f"{nb.relative_to(root)} does not pass its own tests: {err}")
                except Exception as err:  # noqa: BLE001 (a broken notebook file must not stop the others)
                    problems.append(f"{nb.relative_to(root)} could not be run: {type(err).__name__}: {str(err)[:500]}")
    return problems
