"""Pilot timings (``mi_course.checking.pilot`` records, ``pilot_report`` reports, ``mi-course pilot``): off by
default, never under the grader or ``validate``, never failing a check; the times derived from a log; the
export without clock times; every exercise of every week mapped to its stated time."""

import json
import re
from pathlib import Path

import pytest
import torch

from mi_course import cli
from mi_course.cache import cache_dir
from mi_course.checking import core, pilot, pilot_report
from mi_course.checking import week13 as checks13
from mi_course.errors import InputError

REPO = Path(__file__).resolve().parents[1]
GAP = pilot_report.IDLE_GAP


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MI_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(pilot.ENV, raising=False)
    monkeypatch.delenv(core.RECORD_ENV, raising=False)
    return tmp_path / "cache"


def _stub(logits, targets):
    raise NotImplementedError


def _wrong(logits, targets):  # keeps the first position
    return float(torch.isin(logits.argmax(-1), torch.tensor(targets)).float().mean())


def _events():
    return [json.loads(line) for line in pilot.log_path().read_text().splitlines()]


def test_off_by_default_then_on_off_and_the_environment_decides(cache, monkeypatch):
    ex = checks13.TOP_PREDICTION
    checks13.check_top_prediction_share(ex.reference)
    pilot.kernel_started()
    assert not pilot.log_path().exists() and not pilot.enabled()
    pilot.switch(True)
    pilot.kernel_started()  # outside IPython: the start line only
    for fn in (_stub, _wrong, ex.reference):
        checks13.check_top_prediction_share(fn)
    events = _events()
    assert [e["outcome"] for e in events] == ["start", "todo", "fail", "pass"]
    assert {e["id"] for e in events[1:]} == {ex.id} and events[1]["title"] == ex.title
    assert all(set(e) == {"t", "id", "title", "outcome"} for e in events)  # no code, no answers
    checks13.check_top_prediction_share(ex.reference, seed=5)  # a hidden test is not a student's check
    assert len(_events()) == 4
    monkeypatch.setenv(pilot.ENV, "0")
    checks13.check_top_prediction_share(ex.reference)
    assert len(_events()) == 4
    monkeypatch.setenv(core.RECORD_ENV, str(cache / "grader"))  # the trusted grader: never recorded
    monkeypatch.setenv(pilot.ENV, "1")
    checks13.check_top_prediction_share(ex.reference)
    assert len(_events()) == 4
    monkeypatch.delenv(core.RECORD_ENV)
    pilot.switch(False)
    monkeypatch.delenv(pilot.ENV)
    assert not pilot.enabled()


def test_cells_that_ran_are_noted_at_most_once_a_minute(cache, monkeypatch):
    pilot.switch(True)
    clock = iter([1000.0, 1010.0, 1070.0])
    monkeypatch.setattr(pilot.time, "time", lambda: next(clock))
    monkeypatch.setattr(pilot, "_last_active", [0.0])
    for _ in range(3):
        pilot._cell_ran()
    assert [(e["t"], e["outcome"]) for e in _events()] == [(1000.0, "active"), (1070.0, "active")]


def test_recording_never_fails_a_check(cache, monkeypatch):
    monkeypatch.setenv(pilot.ENV, "1")
    cache.mkdir(parents=True)
    (cache / "pilot").write_text("a file where the folder should be")
    assert checks13.check_top_prediction_share(checks13.TOP_PREDICTION.reference) == True  # noqa: E712
    monkeypatch.delenv(pilot.ENV)  # no home folder at all (a container with an unknown user)
    monkeypatch.delenv("MI_COURSE_CACHE")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home"))))
    pilot.record("x", "x", "pass")
    pilot.kernel_started()


def test_the_cache_folder_expands_home_and_refuses_a_relative_path(monkeypatch):
    monkeypatch.setenv("MI_COURSE_CACHE", "~/somewhere")
    assert cache_dir("pilot") == Path.home() / "somewhere" / "pilot"
    monkeypatch.setenv("MI_COURSE_CACHE", "relative/cache")
    with pytest.raises(InputError, match="relative path"):
        cache_dir()


def _e(t, ex, outcome):
    return {"t": float(t), "id": ex, "title": ex, "outcome": outcome}


def test_times_from_a_log():
    events = [_e(0, "", "start"), _e(1, "A", "todo"), _e(1, "B", "todo"), _e(1, "C", "todo"),  # Run All
              _e(300, "A", "fail"), _e(400, "B", "fail"), _e(600, "A", "pass"),  # B tried before A passed
              _e(1200, "A", "pass"),                                # Run All again while B is under way
              _e(1500, "B", "pass"),                                # B: from A's first pass, 900 s
              _e(1600, "", "active"), _e(1600 + 2 * GAP, "", "active"),  # a long silent stretch: counts GAP
              _e(1700 + 2 * GAP, "C", "pass"),
              _e(1800 + 2 * GAP, "D", "fail")]                      # D never passed
    p = pilot_report.exercise_times(events)
    assert p.seconds == {"A": 600, "B": 900, "C": 100 + GAP + 100}
    assert sum(p.seconds.values()) <= events[-1]["t"]  # each moment counts once
    assert p.tried == {"A", "B", "C", "D"} and p.passed == {"A", "B", "C"}
    # the next day: a new kernel after a long pause starts afresh; Run All over finished work measures nothing
    later = [_e(0, "A", "pass"), _e(90_000, "", "start"), _e(90_001, "A", "pass"), _e(90_100, "B", "fail"),
             _e(90_400, "B", "pass")]
    assert pilot_report.exercise_times(later).seconds == {"B": 400}  # from the new kernel's start
    solved_before = [_e(0, "", "start"), _e(2, "A", "pass"), _e(2, "B", "pass"), _e(3, "C", "pass")]
    assert pilot_report.exercise_times(solved_before).seconds == {}


def test_logs_export_and_load(tmp_path):
    log = tmp_path / "checks.jsonl"
    lines = [json.dumps(e) for e in (_e(0, "", "start"), _e(60, "A", "fail"), _e(300, "A", "pass"))]
    log.write_text("\n".join(lines[:2] + ['{"t": NaN, "id": "A", "outcome": "pass"}', "garbage"] + lines[2:])
                   + '\n{"t": 400, "id": "B", "outc')  # a torn last line
    events, skipped = pilot_report.read_log(log)
    assert skipped == 3 and [e["outcome"] for e in events] == ["start", "fail", "pass"]
    out = pilot_report.export(log, tmp_path / "alice.json")
    data = json.loads(out.read_text())
    assert data["exercises"] == {"A": {"title": "A", "seconds": 300.0, "tried": True, "passed": True}}
    assert all("t" not in d for d in data["exercises"].values())  # no clock time leaves the machine
    person, _ = pilot_report.load(out)
    assert person.seconds == {"A": 300.0} and person.passed == {"A"}
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not an export"):
        pilot_report.load(tmp_path / "bad.json")
    (tmp_path / "empty.jsonl").write_text("nothing here\n")
    with pytest.raises(InputError, match="no pilot event"):
        pilot_report.read_log(tmp_path / "empty.jsonl")


def test_every_exercise_of_every_week_has_its_stated_time():
    stated = pilot_report.stated_times(REPO / "solutions")
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        md = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        n = len(re.findall(r"^### Exercise \d+", md, re.M))
        found = sorted(s.number for s in stated.values() if s.week == path.parent.name)
        assert found == list(range(1, n + 1)), path.parent.name
    assert all(s.minutes and 1 <= s.minutes <= 60 for s in stated.values())
    s = stated[checks13.TOP_PREDICTION.id]
    assert (s.week, s.number, s.minutes) == ("13_steering_feature_circuits", 5, 5)
    assert pilot_report.stated_times(REPO / "notebooks") == stated  # a student's release states the same


def test_report_and_the_cli(cache, tmp_path, capsys, monkeypatch):
    ex = checks13.TOP_PREDICTION.id
    files = []
    for i, minutes in enumerate((4, 6, 20)):
        path = tmp_path / f"student{i}.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in [_e(0, "", "start"), _e(10, ex, "todo"),
                                                           _e(60, ex, "fail"), _e(60 * minutes, ex, "pass")]))
        files.append(path)
    gave_up = tmp_path / "student3.jsonl"
    gave_up.write_text(json.dumps(_e(0, ex, "fail")))
    files.append(gave_up)
    people = [pilot_report.load(f)[0] for f in files]
    rows = {r.title: r for r in pilot_report.report(people, pilot_report.stated_times(REPO / "solutions"))}
    row = rows["what the model would say"]
    assert (row.stated_minutes, row.median_minutes, row.passed, row.tried) == (5, 6.0, 3, 4)
    assert rows["the steering hook"].tried == 0
    assert cli.main(["pilot", "report", *map(str, files), "--course", str(REPO)]) == 0
    out = capsys.readouterr().out
    assert "5: what the model would say" in out and "6 min" in out and "3/4" in out and "steering hook" not in out
    monkeypatch.chdir(tmp_path)  # no course folder here: stated times unknown, the measured ones still shown
    monkeypatch.setattr("mi_course.course.model._package_checkout", lambda: None)
    assert cli.main(["pilot", "report", *map(str, files)]) == 0
    assert "6 min" in capsys.readouterr().out
    assert cli.main(["pilot", "report", "--course", str(REPO)]) == 2  # no log of one's own yet: a clear error
    assert "mi-course pilot on" in capsys.readouterr().err
    assert cli.main(["pilot", "on"]) == 0 and pilot.enabled() and "ON" in capsys.readouterr().out
    assert cli.main(["pilot", "on", "x.jsonl"]) == 2  # a file makes no sense there
    monkeypatch.setenv(pilot.ENV, "1")
    assert cli.main(["pilot", "off"]) == 0  # the flag goes, but the environment keeps it on: said so
    said = capsys.readouterr().out
    assert "ON" in said and "decides" in said
    monkeypatch.delenv(pilot.ENV)
    assert cli.main(["pilot", "status"]) == 0 and "off" in capsys.readouterr().out
    pilot.log_path().parent.mkdir(parents=True, exist_ok=True)
    pilot.log_path().write_text(files[0].read_text())
    assert cli.main(["pilot", "export", str(tmp_path / "mine.json")]) == 0
    assert pilot_report.load(tmp_path / "mine.json")[0].seconds == {ex: 240.0}


def test_validate_runs_notebooks_with_pilot_timing_off():
    import inspect

    from mi_course.course import nbgrader_tools

    assert '"MI_COURSE_PILOT": "0"' in inspect.getsource(nbgrader_tools)
