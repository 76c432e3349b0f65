"""GRIDWATCH_CITY_BBOX as the README documents it (four comma-separated numbers) or as a JSON
list; a bad value is one clear line naming the variable, never a pydantic-settings traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
YINGTAN = (116.6, 27.75, 117.55, 28.72)


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """Only the variable under test: no GRIDWATCH_* of the caller, no cached settings."""
    for k in list(os.environ):
        if k.startswith("GRIDWATCH_"):
            monkeypatch.delenv(k)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("text", ["116.6,27.75,117.55,28.72", " 116.6, 27.75 ,117.55,28.72 ", "[116.6, 27.75, 117.55, 28.72]",
                                  "(116.6,27.75,117.55,28.72)"])
def test_documented_and_json_forms_from_the_environment(monkeypatch, text):
    monkeypatch.setenv("GRIDWATCH_CITY_BBOX", text)
    assert Settings().city_bbox == YINGTAN
    assert get_settings().city_bbox == YINGTAN


def test_default_and_python_values():
    assert Settings().city_bbox == YINGTAN
    assert Settings(city_bbox=[116.6, 27.75, 117.55, 28.72]).city_bbox == YINGTAN
    assert Settings(city_bbox="1,2,3,4").city_bbox == (1.0, 2.0, 3.0, 4.0)


def test_as_env_round_trips_through_the_documented_form():
    s = Settings(city_bbox=(116.0, 27.0, 118.0, 29.0))
    env = s.as_env({})
    assert env["GRIDWATCH_CITY_BBOX"] == "116.0,27.0,118.0,29.0"


@pytest.mark.parametrize("text,words", [
    ("116.6,27.75,117.55", ["four numbers", "got 3"]),
    ("116.6,27.75,117.55,28.72,1", ["four numbers", "got 5"]),
    ("", ["four numbers", "got 0"]),
    ("116.6,north,117.55,28.72", ["four comma-separated numbers", "'116.6,north,117.55,28.72'"]),
    ("116.6;27.75;117.55;28.72", ["four comma-separated numbers"]),
    ('["a", 1, 2, 3]', ["four comma-separated numbers"]),
    ("117.55,27.75,116.6,28.72", ["lon_min<lon_max"]),  # lon inverted
    ("116.6,28.72,117.55,27.75", ["lat_min<lat_max"]),  # lat inverted
    ("116.6,27.75,116.6,28.72", ["lon_min<lon_max"]),  # empty
    ("200,27.75,210,28.72", ["in degrees"]),
    ("nan,27.75,117.55,28.72", ["lon_min<lon_max"]),
])
def test_bad_values_are_a_validation_error_with_a_clear_message(monkeypatch, text, words):
    monkeypatch.setenv("GRIDWATCH_CITY_BBOX", text)
    with pytest.raises(ValidationError) as info:
        Settings()
    (err,) = info.value.errors()
    assert err["loc"] == ("city_bbox",)
    for w in words:
        assert w in err["msg"], err["msg"]
    # get_settings: one line naming the variable, no traceback chain
    with pytest.raises(SystemExit) as stop:
        get_settings()
    msg = str(stop.value.code)
    assert msg.splitlines()[0] == "Gridwatch settings are not valid:"
    assert msg.splitlines()[1].startswith("  GRIDWATCH_CITY_BBOX: ") and words[0] in msg
    assert stop.value.__cause__ is None and stop.value.__suppress_context__


# Entry points that read settings before doing anything else; each must stop with the one line.
ENTRY_POINTS = [
    ["-m", "db", "mode"],
    ["-m", "grid", "import", "--entities", "/nonexistent.csv"],
    ["-m", "ingest"],
    ["-m", "terminal", "--help"],
    ["-m", "dashboard.devserver"],
    ["-m", "bench.ingest"],
    ["-m", "bench.wall", "--no-browser"],
    ["-c", "import dashboard.app"],  # what gunicorn loads
]


@pytest.mark.parametrize("args", ENTRY_POINTS, ids=lambda a: " ".join(a[1:3]))
def test_entry_points_stop_with_one_clear_line(args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDWATCH_")}
    env["GRIDWATCH_CITY_BBOX"] = "116.6,27.75,117.55"
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "GRIDWATCH_CITY_BBOX" in proc.stderr and "four numbers" in proc.stderr, out
    assert "Traceback" not in out, out
