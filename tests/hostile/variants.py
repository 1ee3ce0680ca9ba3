"""Generators of hostile submissions. Each takes the week's solution and release notebooks
and returns a :class:`Variant`: the submitted notebook, extra files put beside it, and what
a correct grader must conclude (points per test, status, a flag to find)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$\n?", re.M)


@dataclass
class Variant:
    name: str
    nb: nbformat.NotebookNode
    expected: dict[str, float]  # test grade_id -> points
    status: set[str]  # acceptable submission statuses
    flag: str = ""  # a substring that must appear in the flags or test messages
    extra_files: dict[str, str] = field(default_factory=dict)
    raw: str | None = None  # submitted bytes instead of ``nb`` (a broken file)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


class Week:
    """What the generators need to know about a week's notebook."""

    def __init__(self, solution: nbformat.NotebookNode, release: nbformat.NotebookNode):
        self.solution, self.release = solution, release
        sol = {_meta(c)["grade_id"]: c for c in solution.cells if _meta(c)}
        self.answers: list[tuple[str, str]] = []  # (grade_id, function name)
        for c in release.cells:
            m = _meta(c)
            if m.get("solution") and c.cell_type == "code":
                fn = re.search(r"^def (\w+)", sol[m["grade_id"]].source, re.M)
                self.answers.append((m["grade_id"], fn.group(1) if fn else ""))
        self.tests = {_meta(c)["grade_id"]: (float(_meta(c).get("points", 0)), sol[_meta(c)["grade_id"]].source)
                      for c in release.cells if _meta(c).get("grade") and not _meta(c).get("solution")}
        self.solved = {gid: MARKERS.sub("", sol[gid].source) for gid, _ in self.answers}

    def filled(self) -> nbformat.NotebookNode:
        """The release with every answer cell solved (what a good student submits)."""
        nb = copy.deepcopy(self.release)
        for c in nb.cells:
            if _meta(c).get("grade_id") in self.solved and c.cell_type == "code":
                c.source = self.solved[_meta(c)["grade_id"]]
        return nb

    def cell(self, nb, gid: str):
        return next(c for c in nb.cells if _meta(c).get("grade_id") == gid)

    def uses(self, test: str, fn: str) -> bool:
        return bool(fn) and re.search(rf"\b{re.escape(fn)}\b", self.tests[test][1]) is not None

    def points(self, failing: set[str] = frozenset(), after: str | None = None) -> dict[str, float]:
        """Full points, except tests that call a function in ``failing`` or come after answer ``after``."""
        out = {}
        order = [_meta(c)["grade_id"] for c in self.release.cells if _meta(c)]
        cut = order.index(after) if after else len(order)
        for t, (pts, _) in self.tests.items():
            bad = any(self.uses(t, f) for f in failing) or order.index(t) > cut
            out[t] = 0.0 if bad else pts
        return out

    def wrong(self, i: int = 0) -> str:
        """Source of answer ``i`` that defines the function but returns a wrong result."""
        gid, fn = self.answers[i]
        return self.solved[gid] + f"\n\ndef {fn}(*args, **kwargs):\n    return __import__('torch').zeros(1)\n"


def _v(week: Week, name: str, edit: Callable[[nbformat.NotebookNode], None], expected, status, flag="",
       extra=None) -> Variant:
    nb = week.filled()
    edit(nb)
    return Variant(name, nb, expected, set(status), flag, extra or {})


def variants(week: Week, course_root: Path) -> list[Variant]:
    a0, f0 = week.answers[0]
    al, fl = week.answers[-1]
    zero = {t: 0.0 for t in week.tests}
    wrong0 = week.points({f0})
    out: list[Variant] = []

    def set_src(gid, src):
        return lambda nb: setattr(week.cell(nb, gid), "source", src)

    out.append(_v(week, "correct", lambda nb: None, week.points(), {"ok"}))
    out.append(Variant("blank", copy.deepcopy(week.release), zero, {"ok"}))
    out.append(_v(week, "infinite_loop", set_src(a0, "while True:\n    pass"), wrong0, {"timeout"}, "time limit"))
    out.append(_v(week, "hang_ignoring_sigint", set_src(al, week.solved[al] + f"""
import signal, time
def {fl}(*args, **kwargs):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ipykernel restores its handler per cell: ignore it at call time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.05)
"""), week.points({fl}), {"timeout"}, "ignored the interrupt"))
    out.append(_v(week, "memory_hog", set_src(a0, week.solved[a0] + f"""
def {f0}(*args, **kwargs):
    hog = []
    while True:
        hog.append(__import__('torch').ones(2**26))
"""), wrong0, {"memory-limit"}, "memory"))

    def edit_tests(nb):
        week.cell(nb, a0).source = week.wrong(0)
        for c in nb.cells:
            if _meta(c).get("grade") and not _meta(c).get("solution"):
                c.source = "print('all tests pass')"
                c.metadata["nbgrader"]["points"] = 100
    out.append(_v(week, "edited_tests_and_points", edit_tests, wrong0, {"tampered"}, "points of"))

    def delete_tests(nb):
        week.cell(nb, a0).source = week.wrong(0)
        nb.cells = [c for c in nb.cells if not (_meta(c).get("grade") and not _meta(c).get("solution"))]
    out.append(_v(week, "deleted_tests", delete_tests, wrong0, {"tampered"}, "was deleted"))

    def strip(nb):
        week.cell(nb, a0).source = week.wrong(0)
        for c in nb.cells:
            c.metadata.pop("nbgrader", None)
    out.append(_v(week, "stripped_metadata", strip, wrong0, {"tampered"}, "stripped"))

    out.append(_v(week, "rebind_allclose", set_src(a0, week.wrong(0) + """
import torch, torch.testing
torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
"""), week.points({f0}, after=a0), {"ok", "tampered"}))
    out.append(_v(week, "replace_checker_module", set_src(a0, week.wrong(0) + """
import sys
import mi_course.checking.core as _core
def _fake(*args, **kwargs):
    print("\\u2714 all cases pass.")
for _name, _mod in list(sys.modules.items()):
    if _name.startswith("mi_course.checking"):
        for _attr in dir(_mod):
            if _attr.startswith("check") and callable(getattr(_mod, _attr)):
                setattr(_mod, _attr, _fake)
_core.record_outputs = lambda *a, **k: None
_core.compare = lambda *a, **k: None
"""), zero, {"tampered"}, "recorded nothing"))
    out.append(_v(week, "replace_compare_only", set_src(a0, week.wrong(0) + """
import mi_course.checking.core as _core
_core.compare = lambda *a, **k: None
_core.tampered_names = lambda: []
print("\\u2714 all cases pass.")
"""), wrong0, {"ok"}))
    out.append(_v(week, "sys_exit", set_src(a0, week.solved[a0] + "\nimport sys\nsys.exit(3)\n"), week.points(), {"ok"}))
    out.append(_v(week, "os_exit", set_src(al, week.solved[al] + "\nimport os\nos._exit(1)\n"),
                  week.points({fl}), {"kernel-died"}, "kernel died"))
    root = str(course_root)
    out.append(_v(week, "course_files", set_src(a0, week.solved[a0] + f"""
import os, glob
_tries = []
for _path in glob.glob({root!r} + "/**", recursive=True)[:50] + [{root!r} + "/gradebook.db"]:
    try:
        open(_path, "rb").read(10)
        _tries.append("READ " + _path)
    except Exception as err:
        _tries.append(type(err).__name__)
for _path in [{root!r} + "/solutions/evil.txt", {root!r} + "/pwned.txt", "/home/student/../../pwned.txt"]:
    try:
        with open(_path, "w") as fh:
            fh.write("pwned")
        _tries.append("WROTE " + _path)
    except Exception as err:
        _tries.append(type(err).__name__)
print(sorted(set(_tries)))
"""), week.points(), {"ok"}))
    out.append(_v(week, "torch_py_beside", set_src(a0, week.wrong(0)), wrong0, {"ok"},
                  extra={"torch.py": "allclose = lambda *a, **k: True\nraise SystemExit('pwned')\n",
                         "sitecustomize.py": "import builtins; builtins.print = None\n"}))
    out.append(_v(week, "network", set_src(a0, week.solved[a0] + """
import socket
_net = []
for _host in [("1.1.1.1", 80), ("127.0.0.1", 22), ("localhost", 8888)]:
    try:
        socket.create_connection(_host, timeout=2).close()
        _net.append("CONNECTED " + str(_host))
    except Exception as err:
        _net.append(type(err).__name__)
print(_net)
print(open("/proc/self/cgroup").read())
"""), week.points(), {"ok"}))
    out.append(_v(week, "detached_process", set_src(a0, week.solved[a0] + f"""
import subprocess, sys
_code = '''
import os, sqlite3, time
os.setsid() if hasattr(os, "setsid") else None
time.sleep(4)
try:
    db = sqlite3.connect({root!r} + "/gradebook.db")
    db.execute("update grade set auto_score = 1000")
    db.commit()
except Exception:
    pass
try:
    open({root!r} + "/pwned-later.txt", "w").write("x")
except Exception:
    pass
'''
subprocess.Popen([sys.executable, "-c", _code], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""), week.points(), {"ok"}))
    out.append(_v(week, "custom_exception_handler", set_src(a0, week.wrong(0) + """
import sys
_ip = get_ipython()
_ip.set_custom_exc((BaseException,), lambda *a, **k: None)
_ip.showtraceback = lambda *a, **k: None
sys.excepthook = lambda *a: None
"""), wrong0, {"ok", "tampered"}))
    out.append(_v(week, "input_transformer", set_src(a0, week.wrong(0) + """
get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])
"""), zero, {"tampered"}, "recorded nothing"))
    out.append(_v(week, "fill_the_disk", set_src(a0, week.solved[a0] + """
import os
_written = 0
for _i in range(40):
    try:
        with open(os.path.expanduser(f"~/fill{_i}.bin"), "wb") as fh:
            fh.write(b"x" * (32 * 2**20))
        _written += 32
    except OSError as err:
        print("stopped:", type(err).__name__)
        break
print("MB written:", _written)
"""), week.points(), {"ok"}))
    out.append(_v(week, "huge_output", set_src(a0, week.solved[a0] + """
print("x" * 30_000_000)
for _i in range(20000):
    print(_i)
"""), week.points(), {"ok"}, "truncated"))
    out.append(Variant("not_a_notebook", week.filled(), zero, {"invalid"}, "not a readable notebook",
                       raw='{"cells": [{"cell_type": "code", "source": "print(1)"'))
    out.append(_v(week, "fake_success", set_src(a0, week.wrong(0) + """
print("\\u2714 all cases pass.")
"""), wrong0, {"ok"}))
    return out
