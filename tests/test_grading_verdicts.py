"""Grading flags carry kinds; one function turns kinds into a submission's status."""

from __future__ import annotations

import copy
import json
import pickle

import nbformat
import pytest

from mi_course.grading import assemble
from mi_course.grading import grader
from mi_course.grading.grader import SubmissionResult, _status
from mi_course.grading.verdicts import Flag, FlagKind, kinds, submission_status, test_status


def test_every_kind_has_a_known_status():
    for kind in FlagKind:
        assert kind.status in (None, "invalid", "tampered", "kernel-died", "memory-limit", "timeout")


@pytest.mark.parametrize("kind, status", [
    (FlagKind.EDITED, "tampered"), (FlagKind.DELETED, "tampered"), (FlagKind.POINTS_CHANGED, "tampered"),
    (FlagKind.METADATA_STRIPPED, "tampered"), (FlagKind.DUPLICATED, "tampered"),
    (FlagKind.TIME_LIMIT, "timeout"), (FlagKind.MEMORY_LIMIT, "memory-limit"), (FlagKind.KERNEL_DIED, "kernel-died"),
    (FlagKind.UNREADABLE, "invalid"), (FlagKind.MISSING_NOTEBOOK, "invalid"), (FlagKind.OUTPUT_TRUNCATED, "ok"),
])
def test_status_follows_the_kind(kind, status):
    assert submission_status({kind}, ["passed"]) == status


def test_rewording_a_message_does_not_change_the_status():
    """The wording used to decide: 'edited', 'time limit', ... anywhere in a flag's text."""
    calm = SubmissionResult("s", "w", tests=[grader.TestResult("nb", "t", 1, 1, "passed")],
                            flags=[Flag(FlagKind.OUTPUT_TRUNCATED, "nb: a cell was edited, deleted and changed "
                                                                   "past the time limit; the kernel died")])
    assert _status(calm) == "ok"
    quiet = SubmissionResult("s", "w", tests=[grader.TestResult("nb", "t", 1, 1, "passed")],
                             flags=[Flag(FlagKind.EDITED, "nb: something happened to 'test-1'")])
    assert _status(quiet) == "tampered"


def test_the_most_serious_status_wins():
    assert submission_status({FlagKind.EDITED, FlagKind.TIME_LIMIT}, []) == "timeout"
    assert submission_status({FlagKind.EDITED}, ["memory-limit"]) == "memory-limit"
    assert submission_status({FlagKind.MISSING_NOTEBOOK, FlagKind.KERNEL_DIED}, []) == "invalid"
    assert submission_status(set(), ["passed", "failed", "not-run", "untrusted"]) == "ok"


@pytest.mark.parametrize("record, run, oom, status", [
    ("passed", "ok", False, "passed"), ("failed", "ok", False, "failed"),
    ("missing", "error", False, "failed"), ("missing", "error", True, "memory-limit"),
    ("missing", "timeout", False, "timeout"), ("missing", "dead", False, "kernel-died"),
    ("missing", "not_run", False, "not-run"), ("missing", "ok", False, "tampered"),
    ("invalid", "ok", False, "tampered"), ("memory", "ok", False, "memory-limit"),
])
def test_test_status(record, run, oom, status):
    assert test_status(record, run, oom) == status


def test_flags_stay_strings_with_their_kind():
    f = Flag(FlagKind.DELETED, "test cell 'x' was deleted")
    assert f == "test cell 'x' was deleted" and json.dumps([f]) == '["test cell \'x\' was deleted"]'
    g = f.about("02_induction_heads")
    assert g.kind is FlagKind.DELETED and g.startswith("02_induction_heads: ")
    assert pickle.loads(pickle.dumps(g)).kind is FlagKind.DELETED and copy.deepcopy(g).kind is FlagKind.DELETED
    assert kinds([f, "plain text"]) == {FlagKind.DELETED}


def test_the_planner_gives_kinds():
    def cell(src, gid, **meta):
        c = nbformat.v4.new_code_cell(src)
        c.metadata["nbgrader"] = {"grade_id": gid, **meta}
        return c

    source = nbformat.v4.new_notebook(cells=[cell("def f(): return 1", "a", solution=True, grade=False),
                                             cell("assert f() == 1", "t", grade=True, solution=False, points=2)])
    student = copy.deepcopy(source)
    student.cells[1].source = "pass"
    student.cells[1].metadata["nbgrader"]["points"] = 9
    p = assemble.plan(student, source, source)
    assert kinds(p.flags) == {FlagKind.EDITED, FlagKind.POINTS_CHANGED}
    del student.cells[1]
    assert kinds(assemble.plan(student, source, source).flags) == {FlagKind.DELETED}
