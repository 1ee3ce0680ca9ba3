"""Fast checks of the grading pieces that need no kernel: records, notebook assembly, sandbox probe."""

from __future__ import annotations

import copy
import os
import pickle
import sys
from pathlib import Path

import nbformat
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from hostile.course import solution_notebook  # noqa: E402
from mi_course.checking import core, week02  # noqa: E402
from mi_course.grading import assemble, records, sandbox  # noqa: E402

NONCE = "ab12"


def _record(tmp_path, fn, seed=5, nonce=NONCE, ex=week02.ATTENTION_PATTERN, monkeypatch=None):
    monkeypatch.setenv(core.RECORD_ENV, str(tmp_path))
    monkeypatch.setenv(core.RECORD_NONCE_ENV, nonce)
    core.record_outputs(ex, fn, seed)


def test_reference_passes_wrong_fails_with_hint(tmp_path, monkeypatch):
    _record(tmp_path, week02.ATTENTION_PATTERN.reference, monkeypatch=monkeypatch)
    assert records.judge(tmp_path, NONCE, "w02_attention_pattern", 5).passed
    wrong = week02.ATTENTION_PATTERN.mistakes[0]
    _record(tmp_path, wrong.fn, monkeypatch=monkeypatch)
    v = records.judge(tmp_path, NONCE, "w02_attention_pattern", 5)
    assert not v.passed and v.status == "failed" and wrong.hint in v.message


def test_records_of_another_run_or_seed_are_ignored(tmp_path, monkeypatch):
    _record(tmp_path, week02.ATTENTION_PATTERN.reference, nonce="0ld", monkeypatch=monkeypatch)
    assert records.judge(tmp_path, NONCE, "w02_attention_pattern", 5).status == "missing"
    assert records.list_records(tmp_path, NONCE) == set()
    _record(tmp_path, week02.ATTENTION_PATTERN.reference, seed=6, monkeypatch=monkeypatch)
    assert records.judge(tmp_path, NONCE, "w02_attention_pattern", 5).status == "missing"


def test_forged_or_malicious_records_are_refused(tmp_path):
    path = tmp_path / f"w02_attention_pattern.5.{NONCE}.pt"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path.write_bytes(pickle.dumps(Evil()))
    assert records.judge(tmp_path, NONCE, "w02_attention_pattern", 5).status == "invalid"
    torch.save({"exercise": "w02_prev_token_scores", "seed": 5, "nonce": NONCE, "results": []}, path)
    assert records.judge(tmp_path, NONCE, "w02_attention_pattern", 5).status == "invalid"
    path.unlink()
    path.symlink_to("/etc/passwd")
    assert records.judge(tmp_path, NONCE, "w02_attention_pattern", 5).status == "invalid"


def test_student_text_never_reaches_feedback(tmp_path, monkeypatch):
    def leaky(q, k):
        raise ValueError("checks.check_attention_pattern(attention_pattern, seed=11)")

    _record(tmp_path, leaky, monkeypatch=monkeypatch)
    v = records.judge(tmp_path, NONCE, "w02_attention_pattern", 5)
    assert "seed=11" in v.message and "seed=11" not in v.safe and "ValueError" in v.safe


def _release(nb):
    rel = copy.deepcopy(nb)
    for c in rel.cells:
        c.source = c.source.split("### BEGIN HIDDEN TESTS")[0].split("### BEGIN SOLUTION")[0]
    return rel


def test_plan_restores_tests_and_flags_tampering():
    src = solution_notebook()
    rel = _release(src)
    student = copy.deepcopy(rel)
    student.cells[3].source = "pass"
    student.cells[3].metadata["nbgrader"]["points"] = 99
    del student.cells[6]
    p = assemble.plan(student, src, rel)
    tests = [c for c in p.code if c.role == "test"]
    assert [c.grade_id for c in tests] == ["test_attention_pattern", "test_prev_token_scores"]
    assert all("HIDDEN" in c.source for c in tests)
    assert tests[0].points == 2
    text = " ".join(p.flags)
    assert "was edited" in text and "changed to 99" in text and "was deleted" in text


def test_plan_keeps_answers_and_extra_cells_in_order():
    src = solution_notebook()
    rel = _release(src)
    student = copy.deepcopy(rel)
    student.cells[2].source = "def attention_pattern(q, k):\n    return 1"
    student.cells.insert(3, nbformat.v4.new_code_cell("helper = 1"))
    p = assemble.plan(student, src, rel)
    roles = [(c.role, c.grade_id) for c in p.code]
    assert roles[:4] == [("locked", "setup"), ("answer", "attention_pattern"), ("student", ""),
                         ("test", "test_attention_pattern")]
    assert p.code[1].source.endswith("return 1") and not p.flags


def test_unreadable_notebook_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable notebook"):
        assemble.read_submission(bad)


def test_weak_sandbox_warns_loudly():
    caps = sandbox.Capabilities(namespaces=False, drop_user=True, limits=True, problems=["no namespaces here"])
    with pytest.warns(RuntimeWarning, match="INCOMPLETE"):
        text = sandbox.warn_if_weak(caps)
    assert "no namespaces here" in text
    assert sandbox.warn_if_weak(sandbox.Capabilities(True, True, True)) is None
    argv = sandbox.kernel_argv(Path("/r"), Path("/w"), Path("/rec"), 1234, "n", sandbox.Limits(), caps)
    assert argv[0] == "prlimit" and "setpriv" in argv and "unshare" not in argv


def test_malformed_cells_do_not_crash_planning():
    src = solution_notebook()
    rel = _release(src)
    student = nbformat.from_dict({"cells": [
        {"cell_type": "code", "source": ["x = ", 1], "metadata": []},
        {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": 5}}, "source": "y = 2"},
        "not a cell",
        {"cell_type": "weird", "source": "z"},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    p = assemble.plan(student, src, rel)
    assert [c.source for c in p.code if c.role == "student"] == ["x = 1", "y = 2"]
    assert any(c.role == "test" for c in p.code)


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
def test_memory_cgroup_limits_all_processes_together():
    """Two processes of 150 MB each do not fit a 200 MB group: one is killed, and it is reported."""
    import subprocess

    from mi_course.grading import cgroups

    cg = cgroups.create(f"mi-grade-test-{os.getpid()}", 200)
    if cg is None:
        pytest.skip("no usable memory cgroup here")
    try:
        hog = "import time; b = b'x' * (150 * 2**20); time.sleep(2)"
        out = subprocess.run(["/bin/sh", "-c", f"echo 0 > {cg.procs}; "
                              f"{sys.executable} -c \"{hog}\" & {sys.executable} -c \"{hog}\" & wait"],
                             capture_output=True, text=True, timeout=120)
        assert "Killed" in out.stderr or cg.oom_killed()
        assert cg.oom_killed()
    finally:
        cg.remove()
    assert not cg.path.exists()


def test_private_tmp_is_mounted_before_binds_so_a_checkout_under_tmp_stays_visible(tmp_path):
    """A CI checkout (venv and package) under /tmp must be bound on top of the sandbox's private /tmp."""
    from mi_course.grading import sandbox

    lines = sandbox.mount_script(tmp_path / "root", tmp_path / "work", tmp_path / "rec", sandbox.Limits())
    tmp_mount = next(i for i, l in enumerate(lines) if l.startswith("mount -t tmpfs") and '"$R/tmp"' in l)
    binds = [i for i, l in enumerate(lines) if l.startswith("mount --bind")]
    assert binds and tmp_mount < min(i for i in binds if "/dev/" not in lines[i])
