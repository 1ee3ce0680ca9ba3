"""mi-course release / validate / slides on a scratch copy of the course."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from mi_course.cli import main
from mi_course.course import nbgrader_tools


@pytest.fixture
def scratch(tmp_path, repo, monkeypatch):
    root = tmp_path / "course"
    for sub in ("solutions", "notebooks", "slides"):
        shutil.copytree(repo / sub, root / sub)
    shutil.copy(repo / "nbgrader_config.py", root)
    monkeypatch.setenv("MI_COURSE_ROOT", str(root))
    return root


def test_validate_passes_on_the_repo(scratch, capsys):
    assert main(["validate", "02", "--no-run"]) == 0


def test_validate_catches_a_hand_edited_release(scratch, capsys):
    nb_path = next((scratch / "notebooks" / "02_induction_heads").glob("*.ipynb"))
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source += "\nedited by hand"
    nbformat.write(nb, nb_path)
    assert main(["validate", "02", "--no-run"]) == 1
    assert "differs from a fresh generation" in capsys.readouterr().err


def test_validate_catches_outputs_in_solutions_and_release_strips_them(scratch, capsys):
    src = next((scratch / "solutions" / "02_induction_heads").glob("*.ipynb"))
    nb = nbformat.read(src, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.execution_count = 3
    code.outputs = [nbformat.v4.new_output("stream", text="hello")]
    nb.metadata["widgets"] = {"state": {}}
    nbformat.write(nb, src)
    assert main(["validate", "02", "--no-run"]) == 1
    assert "outputs or execution metadata" in capsys.readouterr().err
    assert main(["release", "02"]) == 0
    assert main(["validate", "02", "--no-run"]) == 0


def test_release_is_deterministic(scratch):
    week = "02_induction_heads"
    before = {p.name: p.read_bytes() for p in (scratch / "notebooks" / week).iterdir()}
    nbgrader_tools.release(week)
    after = {p.name: p.read_bytes() for p in (scratch / "notebooks" / week).iterdir()}
    assert before == after


def test_release_has_stubs_and_no_solutions_or_hidden_tests(repo):
    for path in (repo / "notebooks").glob("*/*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert "raise NotImplementedError()" in text


def test_unknown_week_is_a_clear_error(scratch, capsys):
    assert main(["validate", "99", "--no-run"]) == 2
    assert "no week '99'" in capsys.readouterr().err


@pytest.mark.slow
def test_slides_build_offline(scratch, capsys):
    assert main(["slides", "02"]) == 0
    html = (scratch / "slides" / "02_induction_heads" / "02_induction_heads.html").read_text()
    assert html.count("<section>") >= 8
    assert html.count("data:image/png;base64,") >= 5
    assert "http://" not in html and "https://" not in html  # self-contained


def test_validate_runs_solutions_and_reports_a_failing_one(scratch, capsys):
    week = scratch / "solutions" / "98_broken"
    week.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("assert x == 2, 'wrong'")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, week / "98_broken.ipynb")
    assert main(["release", "98"]) == 0
    assert main(["validate", "98"]) == 1
    assert "does not pass its own tests" in capsys.readouterr().err
