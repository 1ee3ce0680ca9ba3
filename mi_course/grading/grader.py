"""``mi-course grade``: run every submission of a week in its own sandboxed kernel, decide
the points in this (trusted) process, and write them to nbgrader's gradebook.

Workers are threads of this process, each driving one sandboxed kernel at a time (the CPU
work happens in the kernels); only the main thread touches the gradebook.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.grading import assemble, records, sandbox
from mi_course.grading.course import Course, TrustedWeek
from mi_course.grading.kernel import CellRun, KernelDied, SandboxedKernel
from mi_course.grading.verdicts import STATUS_ORDER, Flag, FlagKind, kinds, submission_status, test_status  # noqa: F401

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
RESULT_FILE = "mi_grading.json"


@dataclass
class Options:
    workers: int = os.cpu_count() or 1
    cell_timeout: float = 60.0
    notebook_timeout: float = 900.0
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    uid_base: int = 1_900_000_000  # sandbox uids: uid_base + worker slot (no passwd entry needed)
    threads: int = 1  # torch/OpenMP threads per kernel
    grace: float = 3.0  # seconds a cell gets to stop after an interrupt before its kernel is killed
    zygote: bool = True  # fork kernels from a warm process (torch imported once) when the sandbox is complete


@dataclass
class TestResult:
    notebook: str
    test: str
    points: float
    max_points: float
    status: str  # passed | failed | timeout | kernel-died | memory-limit | tampered | not-run | untrusted
    message: str = ""  # for instructors (may quote the student's kernel)
    feedback: str = ""  # for the student: written by the grader only, never by the student's kernel


@dataclass
class SubmissionResult:
    student: str
    week: str
    tests: list[TestResult] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)  # str with a .kind (verdicts.FlagKind)
    status: str = "ok"
    seconds: float = 0.0
    timestamp: str | None = None

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_points for t in self.tests)



# -- finding submissions ---------------------------------------------------------------------
def find_submissions(course: Course, week: str, trusted: TrustedWeek,
                     where: str | Path | None = None) -> dict[str, dict[str, Path | None]]:
    """student -> {notebook name -> submitted file (None when missing)}.

    ``where`` is nbgrader's ``submitted/`` layout (``<student>/<week>/<nb>.ipynb``, the
    default) or a plain folder of ``<student>.ipynb`` files (weeks with one notebook).
    """
    base = Path(where) if where else course.root / course.submitted
    if not base.is_dir():
        raise InputError(f"no submissions folder {base}")
    names = sorted(trusted.notebooks)
    out: dict[str, dict[str, Path | None]] = {}
    nested = [p for p in sorted(base.iterdir()) if p.is_dir() and (p / week).is_dir()]
    if nested:
        for sdir in nested:
            out[sdir.name] = {n: (sdir / week / f"{n}.ipynb") if (sdir / week / f"{n}.ipynb").is_file() else None
                              for n in names}
    else:
        flat = sorted(p for p in base.glob("*.ipynb") if p.is_file())
        if not flat:
            raise InputError(f"{base} holds neither <student>/{week}/ folders nor <student>.ipynb files")
        if len(names) != 1:
            raise InputError(f"week {week} has {len(names)} notebooks: use the <student>/{week}/ layout")
        out = {p.stem: {names[0]: p} for p in flat}
    bad = [s for s in out if not STUDENT_ID.match(s)]
    if bad:
        raise InputError(f"student ids must be letters, digits and ._@+-: {', '.join(bad[:5])}")
    return out


# -- running a notebook ----------------------------------------------------------------------
def run_cells(cells: list[str], opts: Options, caps: sandbox.Capabilities, slot: int, scratch: Path,
              on_cell=None, zygote=None) -> tuple[list[CellRun], Path, str, bool]:
    """Run ``cells`` in a fresh sandboxed kernel; returns the runs, records folder and nonce.

    ``on_cell(i, run, records, nonce)`` is called after each cell (the kernel still lives).
    The kernel and all its processes are dead when this returns; the last value says whether
    the sandbox's memory cgroup killed a process.
    """
    nonce = secrets.token_hex(12)
    work, recs, root = scratch / "work", scratch / "records", scratch / "root"
    for d in (work, recs, root):
        d.mkdir(parents=True)
    if caps.namespaces:  # size-limited: a kernel must not fill the grader's disk
        sandbox.mount_tmpfs(work, opts.limits.home_mb)
        sandbox.mount_tmpfs(recs, opts.limits.records_mb)
    work.chmod(0o700)
    recs.chmod(0o700)
    runs: list[CellRun] = []
    uid = opts.uid_base + slot
    with SandboxedKernel(work, recs, root, uid, nonce, opts.limits, caps, opts.threads, zygote) as k:
        try:
            k.start()
        except KernelDied as err:
            k.close()
            return [CellRun("dead", evalue=str(err)[:500]) for _ in cells], recs, nonce, k.oom_killed
        deadline = time.monotonic() + opts.notebook_timeout
        for i, code in enumerate(cells):
            left = deadline - time.monotonic()
            if not k.alive() or left <= 0:
                runs.append(CellRun("not_run" if k.alive() or left <= 0 else "dead"))
                continue
            run = k.run(code, timeout=min(opts.cell_timeout, left), grace=opts.grace)
            if run.status == "timeout" and left < opts.cell_timeout:
                run.ename = run.ename or "notebook time limit"
            runs.append(run)
            if on_cell:
                on_cell(i, run, recs, nonce)
    return runs, recs, nonce, k.oom_killed


def _to_run(p: assemble.Plan) -> int:
    """How many code cells to run: up to the last test cell (later cells cannot change a grade)."""
    last = max((i for i, c in enumerate(p.code) if c.role == "test"), default=len(p.code) - 1)
    return last + 1


def _skipped(n: int) -> list[CellRun]:
    return [CellRun("skipped") for _ in range(n)]


def calibrate(trusted: TrustedWeek, opts: Options, caps: sandbox.Capabilities,
              scratch: Path, zygote=None) -> dict[str, dict[str, list[tuple[str, int]]]]:
    """Run each solution notebook once: which records must each test cell produce?

    Also proves that the solution passes its own tests, judged the trusted way.
    """
    expected: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for name, (source, release) in trusted.notebooks.items():
        p = assemble.plan(source, source, release)
        seen: set[tuple[str, int]] = set()
        per_cell: dict[str, list[tuple[str, int]]] = {}

        def after(i, run, recs, nonce, p=p, seen=seen, per_cell=per_cell):
            now = records.list_records(recs, nonce)
            if p.code[i].role == "test":
                per_cell[p.code[i].grade_id] = sorted(now - seen)
            seen |= now

        n = _to_run(p)
        runs, recs, nonce, _ = run_cells([c.source for c in p.code[:n]], opts, caps, 0, scratch / f"calibrate-{name}",
                                      after, zygote)
        runs += _skipped(len(p.code) - n)
        problems = []
        for cell, run in zip(p.code, runs):
            if run.status not in ("ok", "skipped"):
                problems.append(f"cell '{cell.grade_id or cell.source[:40]}' {run.status}: {run.ename} {run.evalue[:200]}")
            for ex, seed in per_cell.get(cell.grade_id, []) if cell.role == "test" else []:
                v = records.judge(recs, nonce, ex, seed)
                if not v.passed:
                    problems.append(f"test '{cell.grade_id}': the reference solution fails {ex} (seed {seed}): {v.message}")
        if problems:
            raise InputError(f"the solution notebook {name} does not pass its own tests when graded:\n  "
                             + "\n  ".join(problems[:10]))
        expected[name] = per_cell
    return expected


def _memory(run: CellRun) -> bool:
    text = f"{run.ename} {run.evalue}"
    return "MemoryError" in text or "can't allocate memory" in text or "not enough memory" in text


def grade_notebook(student_nb, name: str, trusted: TrustedWeek, expected: dict, opts: Options,
                   caps: sandbox.Capabilities, slot: int, scratch: Path, zygote=None):
    """Grade one submitted notebook; returns (tests, flags, graded notebook)."""
    source, release = trusted.notebooks[name]
    p = assemble.plan(student_nb, source, release)
    n = _to_run(p)
    runs, recs, nonce, oom = run_cells([c.source for c in p.code[:n]], opts, caps, slot, scratch, zygote=zygote)
    runs += _skipped(len(p.code) - n)
    flags = [f.about(name) for f in p.flags]
    tests = []
    for cell, run in zip(p.code, runs):
        if cell.role != "test":
            continue
        exp = expected[name].get(cell.grade_id, [])
        if not exp:  # a test that records nothing can only be judged in the student's kernel
            ok = run.status == "ok"
            tests.append(TestResult(name, cell.grade_id, cell.points if ok else 0.0, cell.points, "untrusted",
                                    "judged inside the student's kernel (this test calls no recording checker)",
                                    "passed" if ok else "failed"))
            continue
        verdicts = [records.judge(recs, nonce, ex, seed) for ex, seed in exp]
        bad = next((v for v in verdicts if not v.passed), None)
        if bad is None:
            tests.append(TestResult(name, cell.grade_id, cell.points, cell.points, "passed", verdicts[0].message,
                                    f"passed: {verdicts[0].safe}"))
            continue
        status, msg, safe = test_status(bad.status, run.status, _memory(run)), bad.message, bad.safe
        if bad.status == "missing" and run.status == "error":
            msg = f"the test raised {run.ename}: {run.evalue.splitlines()[0][:200] if run.evalue else ''}"
            ename = re.match(r"[A-Za-z_][A-Za-z0-9_]{0,60}", run.ename)
            safe = (f"the test stopped with {ename[0] if ename else 'an error'} before checking your answer "
                    "(the visible check in the notebook shows why)")
        elif bad.status == "missing":
            msg = {"timeout": f"the test ran past the {opts.cell_timeout:g} s limit",
                   "kernel-died": "the kernel died before this test finished",
                   "not-run": "not run: the kernel had died or the notebook ran out of time",
                   "tampered": "the test ran but its checker recorded nothing (checker replaced or cell blanked?)"}[status]
            if status == "timeout" and run.ename == "killed":
                msg += "; the kernel ignored the interrupt and was killed"
            safe = msg
        tests.append(TestResult(name, cell.grade_id, 0.0, cell.points, status, msg, f"{status}: {safe}"))
    if any(r.status == "dead" for r in runs):
        flags.append(Flag(FlagKind.KERNEL_DIED, f"{name}: the kernel died"))
    if any(_memory(r) for r in runs):
        flags.append(Flag(FlagKind.MEMORY_LIMIT, f"{name}: a cell hit the memory limit ({opts.limits.memory_mb} MB)"))
    if oom:
        flags.append(Flag(FlagKind.MEMORY_LIMIT, f"{name}: a process was killed at the memory limit "
                                                 f"({opts.limits.memory_mb} MB for the whole sandbox)"))
    for cell, run in zip(p.code, runs):
        if run.status == "timeout":
            flags.append(Flag(FlagKind.TIME_LIMIT, f"{name}: a {cell.role} cell ran past the time limit"
                              + (" and ignored the interrupt (kernel killed)" if run.ename == "killed" else "")))
        if run.truncated:
            flags.append(Flag(FlagKind.OUTPUT_TRUNCATED,
                              f"{name}: output of a {cell.role} cell was truncated or dropped (too large)"))
    return tests, flags, assemble.graded_notebook(student_nb, p, runs, source)


def _unusable(student: str, trusted: TrustedWeek, reason: str) -> SubmissionResult:
    sub = SubmissionResult(student, trusted.name, flags=[Flag(FlagKind.UNREADABLE, f"not a readable notebook: {reason}")],
                           status="invalid")
    for name, (source, _) in sorted(trusted.notebooks.items()):
        for m in (assemble.nbg(c) for c in source.cells):
            if m and m.get("grade") and not m.get("solution"):
                sub.tests.append(TestResult(name, m["grade_id"], 0.0, float(m.get("points") or 0), "not-run",
                                            reason, "not graded: the submission could not be used"))
    return sub


class _Unusable(ValueError):
    def __init__(self, kind: FlagKind, text: str):
        super().__init__(text)
        self.kind = kind


def _status(sub: SubmissionResult) -> str:
    """The submission's status, from its flags' kinds and its tests' statuses (never from their wording)."""
    return submission_status(kinds(sub.flags), [t.status for t in sub.tests])


def grade_submission(student: str, files: dict[str, Path | None], trusted: TrustedWeek, expected: dict,
                     opts: Options, caps: sandbox.Capabilities, slot: int, scratch: Path,
                     out_dir: Path | None, zygote=None) -> SubmissionResult:
    t0 = time.monotonic()
    sub = SubmissionResult(student, trusted.name)
    for name in sorted(trusted.notebooks):
        path = files.get(name)
        source = trusted.notebooks[name][0]
        blank = [assemble.PlannedCell("", "test", m["grade_id"], float(m.get("points") or 0))
                 for m in (assemble.nbg(c) for c in source.cells) if m and m.get("grade") and not m.get("solution")]
        try:
            if path is None:
                raise _Unusable(FlagKind.MISSING_NOTEBOOK, "missing notebook")
            if path.is_symlink():
                raise _Unusable(FlagKind.UNREADABLE, "not a readable notebook: a symbolic link")
            if path.stat().st_size > 64 * 2**20:
                raise _Unusable(FlagKind.UNREADABLE, "not a readable notebook: larger than 64 MB")
            nb = assemble.read_submission(path)
        except (ValueError, OSError) as err:
            kind = err.kind if isinstance(err, _Unusable) else FlagKind.UNREADABLE
            sub.flags.append(Flag(kind, f"{name}: {err}"))
            sub.tests += [TestResult(name, c.grade_id, 0.0, c.points, "not-run", str(err), "not graded: " + str(err))
                          for c in blank]
            continue
        try:
            tests, flags, graded = grade_notebook(nb, name, trusted, expected, opts, caps, slot, scratch / name, zygote)
        except Exception as err:  # noqa: BLE001  (a malformed notebook must not stop the others' grading)
            sub.flags.append(Flag(FlagKind.UNREADABLE, f"{name}: not a readable notebook: the grader could not use it "
                                                       f"({type(err).__name__}: {str(err)[:200]})"))
            sub.tests += [TestResult(name, c.grade_id, 0.0, c.points, "not-run", "could not be graded",
                                     "not graded: the notebook is malformed") for c in blank]
            continue
        sub.tests += tests
        sub.flags += flags
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            nbformat.write(graded, out_dir / f"{name}.ipynb")
    sub.status = _status(sub)
    sub.seconds = time.monotonic() - t0
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / RESULT_FILE).write_text(json.dumps(asdict(sub), indent=1))
    return sub


# -- the whole week ------------------------------------------------------------------------------
def grade_week(course: Course, week: str, where: str | Path | None = None, opts: Options | None = None,
               write_gradebook: bool = True, progress: bool = True) -> list[SubmissionResult]:
    """Grade every submission of ``week``; write autograded/, the gradebook and return results."""
    from mi_course.grading import gradebook
    from mi_course.grading.course import trusted_week

    opts = opts or Options()
    week = course.week(week)
    caps = sandbox.probe()
    sandbox.warn_if_weak(caps)
    trusted = trusted_week(course, week)
    subs = find_submissions(course, week, trusted, where)
    base = Path(tempfile.mkdtemp(prefix="mi-grade-"))
    base.chmod(0o711)
    results: list[SubmissionResult] = []
    zygote = None
    if opts.zygote and caps.full:
        from mi_course.grading.zygote import Zygote

        try:
            zygote = Zygote(_week_models(trusted))
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"no warm kernel start ({err}); starting each kernel from scratch", RuntimeWarning)
    try:
        expected = calibrate(trusted, opts, caps, base, zygote)
        slots = list(range(1, max(1, opts.workers) + 1))
        import queue

        free: queue.Queue[int] = queue.Queue()
        for s in slots:
            free.put(s)

        def work(student: str) -> SubmissionResult:
            slot = free.get()
            try:
                scratch = base / f"{slot}-{student}"
                out = course.root / course.autograded / student / week
                if out.exists():
                    shutil.rmtree(out)
                try:
                    return grade_submission(student, subs[student], trusted, expected, opts, caps, slot, scratch,
                                            out, zygote)
                except Exception as err:  # noqa: BLE001  (one bad submission never stops the others)
                    return _unusable(student, trusted, f"the grader could not use this submission "
                                                       f"({type(err).__name__}: {str(err)[:200]})")
            finally:
                sandbox.unmount_under(base / f"{slot}-{student}")
                shutil.rmtree(base / f"{slot}-{student}", ignore_errors=True)
                free.put(slot)

        book = gradebook.Writer(course, week, trusted) if write_gradebook else None
        try:
            with ThreadPoolExecutor(max_workers=len(slots)) as pool:
                futures = {pool.submit(work, s): s for s in subs}
                for fut in tqdm(as_completed(futures), total=len(futures), desc=f"grading {week}",
                                disable=not progress):
                    res = fut.result()
                    res.timestamp = _timestamp(course, where, res.student, week)
                    results.append(res)
                    if book:
                        book.write(res)
        finally:
            if book:
                book.close()
    finally:
        if zygote is not None:
            zygote.close()
        sandbox.unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)
    return sorted(results, key=lambda r: r.student)


def _week_models(trusted: TrustedWeek) -> list[str]:
    """Zoo models the week's notebooks mention (warmed up once in the zygote)."""
    from mi_course import zoo

    text = " ".join(assemble._src(c) for source, _ in trusted.notebooks.values() for c in source.cells)
    return [name for name in zoo.names() if f'"{name}"' in text or f"'{name}'" in text]


def _timestamp(course: Course, where, student: str, week: str) -> str | None:
    base = Path(where) if where else course.root / course.submitted
    f = base / student / week / "timestamp.txt"
    try:
        return f.read_text().strip()[:64] or None
    except OSError:
        return None
