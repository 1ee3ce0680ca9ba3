"""One model of the course folder (mi_course.course.model), used by every command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mi_course.cli import main
from mi_course.course import nbgrader_tools
from mi_course.course.model import Course, find_course, locate_root
from mi_course.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def make_tiny_course(root: Path, source: str = "solutions", release: str = "notebooks", extra: str = "") -> Path:
    """A course folder with one tiny week (no zoo model needed), in the repository's layout or another."""
    (root / source / "98_tiny").mkdir(parents=True)
    nbformat.write(_notebook("x = 1", "assert x == 1"), root / source / "98_tiny" / "98_tiny.ipynb")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.source_directory = {source!r}\n"
        f"c.CourseDirectory.release_directory = {release!r}\n" + extra)
    return root


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("MI_COURSE_ROOT", raising=False)


def test_root_is_found_by_walking_up_from_the_current_folder(tmp_path, monkeypatch, no_env):
    root = make_tiny_course(tmp_path / "course")
    (root / "solutions" / "98_tiny" / "deep").mkdir()
    monkeypatch.chdir(root / "solutions" / "98_tiny" / "deep")
    assert find_course().root == root.resolve()


def test_explicit_course_beats_the_environment_and_the_environment_beats_the_cwd(tmp_path, monkeypatch):
    a, b = make_tiny_course(tmp_path / "a"), make_tiny_course(tmp_path / "b")
    monkeypatch.chdir(a)
    monkeypatch.setenv("MI_COURSE_ROOT", str(b))
    assert find_course().root == b.resolve()
    assert find_course(a).root == a.resolve()


def test_directories_come_from_the_nbgrader_config(tmp_path, no_env):
    root = make_tiny_course(tmp_path / "c", source="instructor", release="release",
                            extra="c.MiCourse.validate_timeout = 33\n")
    course = find_course(root)
    assert (course.source, course.release) == ("instructor", "release")
    assert course.weeks() == ["98_tiny"]
    assert course.validate_timeout == 33.0
    assert main(["release", "98", "--course", str(root)]) == 0
    assert (root / "release" / "98_tiny" / "98_tiny.ipynb").exists()
    assert not (root / "notebooks").exists()
    assert main(["validate", "98", "--no-run", "--course", str(root)]) == 0


@pytest.mark.parametrize("key", ["98", "98_tiny", " 98 "])
def test_week_matching(tmp_path, key):
    assert find_course(make_tiny_course(tmp_path / "c")).week(key) == "98_tiny"


@pytest.mark.parametrize("key", ["99", "8", "tiny", ""])
def test_unknown_week_names_the_weeks_there_are(tmp_path, key):
    with pytest.raises(InputError, match=r"no week .* weeks are 98_tiny"):
        find_course(make_tiny_course(tmp_path / "c")).week(key)


def test_a_folder_that_is_not_a_course_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no solutions/ folder"):
        find_course(tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        locate_root(tmp_path / "nowhere")


def test_every_course_command_takes_course(capsys):
    from mi_course.cli import COMMANDS
    import argparse

    for name in ("release", "validate", "slides", "grade", "feedback"):
        parser = argparse.ArgumentParser()
        COMMANDS[name][2](parser)
        assert "--course" in parser.format_help(), name


def test_grading_and_release_share_the_course_model():
    from mi_course.grading import course as grading_course

    assert grading_course.Course is Course and grading_course.find_course is find_course
    assert nbgrader_tools.find_course is find_course


def _installed_copy(tmp_path: Path) -> Path:
    """The package as a plain (non-editable) install puts it: in site-packages, far from any course."""
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "mi_course", site / "mi_course",
                    ignore=shutil.ignore_patterns("__pycache__", "models"))
    return site


@pytest.mark.slow  # runs nbgrader in a subprocess or a kernel
def test_release_works_from_a_plain_install_inside_a_course_folder(tmp_path, no_env):
    """Regression: after `pip install .` (not -e), `mi-course release` in a course folder said
    '... has no solutions/ folder' (it looked beside the installed package), while `grade` worked."""
    site = _installed_copy(tmp_path)
    root = make_tiny_course(tmp_path / "my-course")
    env = {k: v for k, v in os.environ.items() if k != "MI_COURSE_ROOT"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-m", "mi_course.cli", "release", "98"], cwd=root / "solutions",
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (root / "notebooks" / "98_tiny" / "98_tiny.ipynb").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run([sys.executable, "-m", "mi_course.cli", "release", "98"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "no course folder here" in run.stderr and "--course" in run.stderr


# -- validate's timeout and message ------------------------------------------------------------------
@pytest.mark.slow  # runs nbgrader in a subprocess or a kernel
def test_validate_says_a_cell_timed_out_and_how_to_raise_the_limit(tmp_path, capsys, no_env):
    root = make_tiny_course(tmp_path / "c")
    week = root / "solutions" / "97_slow"
    week.mkdir()
    nbformat.write(_notebook("x = 1", "import time\ntime.sleep(30)"), week / "97_slow.ipynb")
    assert main(["release", "97", "--course", str(root)]) == 0
    assert main(["validate", "97", "--course", str(root), "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert "timed out after 2 s in code cell 2 of 2 ('import time')" in err
    assert "--timeout" in err and "validate_timeout" in err


@pytest.mark.slow  # runs nbgrader in a subprocess or a kernel
def test_validate_names_the_failing_cell_and_its_error(tmp_path, capsys, no_env):
    root = make_tiny_course(tmp_path / "c")
    week = root / "solutions" / "96_broken"
    week.mkdir()
    nbformat.write(_notebook("x = 1", "assert x == 2, 'x should be 2'"), week / "96_broken.ipynb")
    assert main(["release", "96", "--course", str(root)]) == 0
    assert main(["validate", "96", "--course", str(root)]) == 1
    err = capsys.readouterr().err
    assert "code cell 2 of 2 (" in err and "assert x == 2" in err and "raised AssertionError: x should be 2" in err


@pytest.mark.parametrize("bad", ["0", "-3", "soon"])
def test_validate_timeout_must_be_positive_seconds(bad, capsys):
    with pytest.raises(SystemExit):
        main(["validate", "02", "--timeout", bad])
    assert "seconds" in capsys.readouterr().err


def test_default_validate_timeout_is_generous(tmp_path):
    assert find_course(make_tiny_course(tmp_path / "c")).validate_timeout >= 300
