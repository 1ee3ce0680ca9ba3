"""Pilot timings (``mi_course.checking.pilot`` and ``pilot_report``, ``mi-course pilot``): off by default, never under the grader,
never failing a check; the times it derives from a log; every exercise of every week mapped to its stated time."""

import json
import re
from pathlib import Path

import pytest
import torch

from mi_course import cli
from mi_course.checking import core, pilot, pilot_report
from mi_course.checking import week13 as checks13
from mi_course.errors import InputError

REPO = Path(__file__).resolve().parents[1]


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
    assert not pilot.log_path().exists() and not pilot.enabled()
    pilot.switch(True)
    for fn in (_stub, _wrong, ex.reference):
        checks13.check_top_prediction_share(fn)
    events = _events()
    assert [e["outcome"] for e in events] == ["todo", "fail", "pass"]
    assert {e["id"] for e in events} == {ex.id} and events[0]["title"] == ex.title
    assert set(events[0]) == {"t", "id", "title", "outcome"}  # no code, no answers
    checks13.check_top_prediction_share(ex.reference, seed=5)  # a hidden test is not a student's check
    assert len(_events()) == 3
    monkeypatch.setenv(pilot.ENV, "0")
    checks13.check_top_prediction_share(ex.reference)
    assert len(_events()) == 3
    monkeypatch.setenv(core.RECORD_ENV, str(cache / "grader"))  # the trusted grader: never recorded
    monkeypatch.setenv(pilot.ENV, "1")
    checks13.check_top_prediction_share(ex.reference)
    assert len(_events()) == 3
    monkeypatch.delenv(core.RECORD_ENV)
    pilot.switch(False)
    monkeypatch.delenv(pilot.ENV)
    assert not pilot.enabled()


def test_a_log_that_cannot_be_written_never_fails_a_check(cache, monkeypatch):
    monkeypatch.setenv(pilot.ENV, "1")
    cache.mkdir(parents=True)
    (cache / "pilot").write_text("a file where the folder should be")
    assert checks13.check_top_prediction_share(checks13.TOP_PREDICTION.reference) == True  # noqa: E712


def _e(t, ex, outcome):
    return {"t": float(t), "id": ex, "title": ex, "outcome": outcome}


def test_times_from_a_log():
    events = [_e(0, "A", "todo"), _e(1, "B", "todo"), _e(2, "C", "todo"), _e(3, "D", "todo"),  # Run All
              _e(300, "A", "fail"), _e(600, "A", "pass"),          # A: 600 s from the sitting's first check
              _e(900, "B", "fail"), _e(1200, "A", "pass"),         # Run All again while B is under way
              _e(1500, "B", "pass"),                               # B: from A's first pass, 900 s
              _e(1600, "C", "fail"), _e(8800, "C", "fail"),        # a two-hour pause
              _e(9000, "C", "pass"),                               # C: 100 + 200 s of work
              _e(9100, "D", "fail")]                               # D never passed
    assert pilot_report.exercise_times(events) == {"A": 600, "B": 900, "C": 300}
    # the next day's first exercise starts at that sitting's first check, not at yesterday's last pass
    later = [_e(0, "A", "pass"), _e(90_000, "B", "todo"), _e(90_100, "B", "fail"), _e(90_400, "B", "pass")]
    assert pilot_report.exercise_times(later)["B"] == 400


def test_every_exercise_of_every_week_has_its_stated_time():
    stated = pilot_report.stated_times(REPO / "solutions")
    headers = {}
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        md = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
        headers[path.parent.name] = len(re.findall(r"### Exercise \d+", md))
    for week, n in headers.items():
        found = sorted(s.number for s in stated.values() if s.week == week)
        assert found == list(range(1, n + 1)), week
    assert all(s.minutes and 1 <= s.minutes <= 60 for s in stated.values())
    s = stated[checks13.TOP_PREDICTION.id]
    assert (s.week, s.number, s.minutes) == ("13_steering_feature_circuits", 5, 5)
    assert pilot_report.stated_times(REPO / "notebooks") == stated  # a student's release states the same


def test_report_and_the_cli(cache, tmp_path, capsys):
    ex = checks13.TOP_PREDICTION.id
    logs = []
    for i, minutes in enumerate((4, 6, 20)):
        path = tmp_path / f"student{i}.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in [_e(0, "w13_steer", "todo"), _e(10, ex, "todo"),
                                                           _e(60, ex, "fail"), _e(60 * minutes, ex, "pass")]))
        logs.append(path)
    rows = {r.title: r for r in pilot_report.report(logs, REPO / "solutions")}
    row = rows["what the model would say"]
    assert (row.stated_minutes, row.median_minutes, row.passed, row.people) == (5, 6.0, 3, 3)
    assert rows["the steering hook"].median_minutes is None
    assert cli.main(["pilot", "report", *map(str, logs), "--course", str(REPO)]) == 0
    out = capsys.readouterr().out
    assert "5: what the model would say" in out and "6 min" in out and "3/3" in out and "steering hook" not in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 1, "id": "x", "outcome": "pass"}\nnot json\n')
    with pytest.raises(InputError, match="line 2"):
        pilot_report.read_log(bad)
    assert cli.main(["pilot", "report", "--course", str(REPO)]) == 2  # no log of one's own yet: a clear error
    assert "mi-course pilot on" in capsys.readouterr().err
    assert cli.main(["pilot", "on"]) == 0 and pilot.enabled()
    assert cli.main(["pilot", "status"]) == 0 and "is on" in capsys.readouterr().out
    assert cli.main(["pilot", "off"]) == 0 and not pilot.enabled()
