"""Build the notebook that is actually run for a submission.

Follows nbgrader's rules, but from trusted copies only: answer cells come from the student;
every other nbgrader cell (locked cells, visible and hidden tests) comes from the solution
source; deleted or stripped test cells are put back. Differences from the released notebook
(edited tests, changed points, deleted cells, stripped metadata) are reported as flags.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nbformat
from mi_course.grading.verdicts import Flag, FlagKind


@dataclass
class PlannedCell:
    """One cell to run, and what it is for grading."""

    source: str
    role: str  # answer | test | locked | student | markdown
    grade_id: str = ""
    points: float = 0.0


@dataclass
class Plan:
    cells: list[PlannedCell]  # markdown cells included (not run)
    flags: list[Flag] = field(default_factory=list)  # str with a .kind

    @property
    def code(self) -> list[PlannedCell]:
        return [c for c in self.cells if c.role != "markdown"]


def nbg(cell) -> dict:
    """The cell's nbgrader metadata (``{}`` when there is none or it is malformed)."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    return meta if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str) else {}


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(str(x) for x in s) if isinstance(s, list) else str(s)


def _same(a: str, b: str) -> bool:
    return a.strip().replace("\r\n", "\n") == b.strip().replace("\r\n", "\n")


def _trusted_role(meta: dict) -> str:
    if meta.get("solution") and not meta.get("grade"):
        return "answer"
    if meta.get("solution") and meta.get("grade"):
        return "answer"  # an autograded answer (rare); graded by its test cells
    if meta.get("grade"):
        return "test"
    return "locked"


def read_submission(path) -> nbformat.NotebookNode:
    """Read a submitted notebook (raises ``ValueError`` with a readable reason when it cannot)."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"not a readable notebook: {type(err).__name__}: {str(err)[:200]}") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook: no list of cells")
    return nb


def plan(student: nbformat.NotebookNode, source: nbformat.NotebookNode,
         release: nbformat.NotebookNode) -> Plan:
    """The cells to run for ``student``'s copy of a notebook, with tampering flags."""
    trusted = [(nbg(c), c) for c in source.cells if nbg(c)]
    by_id = {m["grade_id"]: (m, c) for m, c in trusted}
    released = {nbg(c)["grade_id"]: c for c in release.cells if nbg(c)}
    flags: list[Flag] = []
    out: list[PlannedCell] = []
    placed: dict[str, int] = {}
    student_cells = [c for c in student.cells if isinstance(c, dict)]
    if student_cells and not any(nbg(c) for c in student_cells):
        flags.append(Flag(FlagKind.METADATA_STRIPPED, "nbgrader metadata stripped from every cell"))
    for cell in student_cells:
        meta = nbg(cell)
        gid = meta.get("grade_id")
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        if gid in by_id and gid not in placed:
            tmeta, tcell = by_id[gid]
            role = _trusted_role(tmeta)
            rel_src = _src(released.get(gid, tcell))
            if role == "answer":
                src = _src(cell) if cell.get("cell_type") == "code" else rel_src
            else:
                src = _src(tcell)
                if not _same(_src(cell), rel_src):
                    flags.append(Flag(FlagKind.EDITED, f"{role} cell '{gid}' was edited (the original was run)"))
                if tmeta.get("grade") and meta.get("points") != tmeta.get("points"):
                    flags.append(Flag(FlagKind.POINTS_CHANGED,
                                      f"points of '{gid}' were changed to {meta.get('points')!r} (kept {tmeta.get('points')})"))
            placed[gid] = len(out)
            out.append(PlannedCell(src, role if tcell.get("cell_type") == "code" else "markdown", gid,
                                   float(tmeta.get("points") or 0) if role == "test" else 0.0))
            continue
        if gid in placed:
            flags.append(Flag(FlagKind.DUPLICATED, f"cell '{gid}' appears twice (the second copy was not run)"))
            continue
        if cell.get("cell_type") != "code":
            out.append(PlannedCell(_src(cell), "markdown"))
            continue
        src = _src(cell)
        match = next((g for g, (m, t) in by_id.items() if g not in placed and _trusted_role(m) != "answer"
                      and t.get("cell_type") == "code" and _same(src, _src(released.get(g, t)))), None)
        if match:  # a test or locked cell whose metadata was stripped: run the trusted one in its place
            tmeta, tcell = by_id[match]
            placed[match] = len(out)
            flags.append(Flag(FlagKind.METADATA_REMOVED, f"nbgrader metadata of '{match}' was removed (the original cell was run)"))
            out.append(PlannedCell(_src(tcell), _trusted_role(tmeta), match,
                                   float(tmeta.get("points") or 0) if _trusted_role(tmeta) == "test" else 0.0))
        else:
            out.append(PlannedCell(src, "student"))
    # put back what is missing, after the cell that precedes it in the source
    prev = None
    inserted = 0
    for m, c in trusted:
        gid = m["grade_id"]
        if gid not in placed:
            role = _trusted_role(m)
            if role == "answer":
                flags.append(Flag(FlagKind.ANSWER_MISSING,
                                  f"answer cell '{gid}' is missing or lost its metadata (the code as submitted was run)"))
            elif c.get("cell_type") == "code":
                where = placed[prev] + 1 if prev in placed else len(out)
                out.insert(where, PlannedCell(_src(c), role, gid, float(m.get("points") or 0) if role == "test" else 0.0))
                for k, v in placed.items():
                    if v >= where:
                        placed[k] = v + 1
                placed[gid] = where
                inserted += 1
                flags.append(Flag(FlagKind.DELETED, f"{role} cell '{gid}' was deleted (put back and run)"))
        prev = gid if gid in placed else prev
    return Plan(out, flags)


def graded_notebook(student: nbformat.NotebookNode, p: Plan, runs: list,
                    source: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """The notebook as it was run, with outputs, for instructors (``autograded/``).

    Cells keep the trusted nbgrader metadata, and ``metadata.mi_course`` says each cell's
    role and how it ran."""
    meta = {nbg(c)["grade_id"]: nbg(c) for c in (source.cells if source else []) if nbg(c)}
    nb = nbformat.v4.new_notebook()
    if isinstance(student.get("metadata"), dict) and isinstance(student.metadata.get("kernelspec"), dict):
        nb.metadata["kernelspec"] = copy.deepcopy(student.metadata["kernelspec"])
    it = iter(runs)
    n = 0
    for cell in p.cells:
        if cell.role == "markdown":
            c = nbformat.v4.new_markdown_cell(cell.source)
        else:
            run = next(it)
            n += 1
            c = nbformat.v4.new_code_cell(cell.source)
            c.metadata["mi_course"] = {"role": cell.role, "status": run.status, "seconds": round(run.seconds, 2)}
            c.outputs = [nbformat.from_dict(o) for o in run.outputs]
            c.execution_count = n
        if cell.grade_id:
            c.metadata.setdefault("mi_course", {})["grade_id"] = cell.grade_id
            if cell.grade_id in meta:
                c.metadata["nbgrader"] = copy.deepcopy(meta[cell.grade_id])
        nb.cells.append(c)
    return nb
