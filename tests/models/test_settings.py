"""Settings: checked once into one-line errors; URLs normalised; relaxed settings named."""

from __future__ import annotations

import threading
import time

import pytest

from models import db
from models import settings as settings_module
from models.db import (
    DatabaseUnusable,
    check_database,
    describe_url,
    make_engine,
    normalise_url,
    write_lock,
    writers_waiting,
)
from models.settings import Settings, SettingsError, load_settings, relaxed_settings


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CAREPATH_CLOCK_SKEW_SECONDS", "-1", "CAREPATH_CLOCK_SKEW_SECONDS: "),
        ("CAREPATH_DISPATCH_BATCH_SIZE", "many", "CAREPATH_DISPATCH_BATCH_SIZE: Input should be"),
        ("CAREPATH_DATABASE_URL", "oracle://db/x", "CAREPATH_DATABASE_URL: unknown scheme"),
        ("CAREPATH_MIN_HOURS_BETWEEN_DOSES", "-1", "CAREPATH_MIN_HOURS_BETWEEN_DOSES: "),
        ("CAREPATH_OBSERVATION_MINUTES", "-0.5", "CAREPATH_OBSERVATION_MINUTES: "),
        ("CAREPATH_MAX_DOSES_PER_WINDOW", "0", "CAREPATH_MAX_DOSES_PER_WINDOW: "),
        (
            "CAREPATH_POST_DOSE_BP_MIN_MINUTES",
            "95",
            "CAREPATH_POST_DOSE_BP_MIN_MINUTES: may not be more than post_dose_bp_max_minutes",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(monkeypatch, variable, value, says):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith(says) and "\n" not in str(raised.value)


def test_a_secret_is_never_echoed(monkeypatch):
    monkeypatch.setenv("CAREPATH_DATABASE_URL", "postgresql://u:hunter2@db:port/x")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)


def test_a_negative_duration_is_refused_even_where_zero_is_allowed():
    class WithDuration(Settings):
        observation_minutes: float = 120

    assert WithDuration(observation_minutes=0).observation_minutes == 0
    with pytest.raises(ValueError, match="observation_minutes: a duration may not be negative"):
        WithDuration(observation_minutes=-1)


def test_the_dosing_demonstration_settings_may_be_zero_and_are_named_relaxed():
    demo = Settings(
        observation_minutes=0,
        post_dose_bp_min_minutes=0,
        post_dose_bp_max_minutes=0,
        min_hours_between_doses=0.5,
    )
    assert relaxed_settings(demo) == {
        "observation_minutes": 0,
        "post_dose_bp_min_minutes": 0,
        "post_dose_bp_max_minutes": 0,
        "min_hours_between_doses": 0.5,
    }


def test_each_route_has_its_ceiling():
    rules = Settings()
    ceilings = {r: rules.max_dose_mg(r) for r in ("sublingual", "oral", "intranasal")}
    assert ceilings == {"sublingual": 450, "oral": 450, "intranasal": 100}


def test_importing_reads_no_setting(monkeypatch):
    monkeypatch.setenv("CAREPATH_DISPATCH_SECONDS", "soon")
    lazy = settings_module._SettingsOnDemand()
    with pytest.raises(SettingsError):
        _ = lazy.dispatch_seconds


def test_relaxed_settings_are_those_below_their_clinical_default(monkeypatch):
    monkeypatch.setattr(settings_module, "CLINICAL_FLOORS", ("clearance_valid_minutes", "nope"))
    assert relaxed_settings(Settings()) == {}
    assert relaxed_settings(Settings(clearance_valid_minutes=10)) == {"clearance_valid_minutes": 10}
    assert relaxed_settings(Settings(clearance_valid_minutes=500)) == {}


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("postgres://u:p@db/x", "postgresql+psycopg://u:p@db/x"),
        ("postgresql://u@db:5433/x", "postgresql+psycopg://u@db:5433/x"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/x"),
        ("sqlite:////srv/carepath.db", "sqlite:////srv/carepath.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_urls_are_normalised(url, normal):
    assert normalise_url(url) == normal


def test_a_relative_sqlite_path_is_resolved_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalise_url("sqlite:///./data/c.db") == f"sqlite:///{tmp_path}/data/c.db"
    assert describe_url("postgresql+psycopg://u:pw@db/x") == "postgresql+psycopg://u:***@db/x"


def test_check_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/c.db")
    with pytest.raises(DatabaseUnusable, match="does not exist"):
        check_database(engine, must_exist=True)
    assert not (tmp_path / "c.db").exists()
    check_database(engine)
    assert (tmp_path / "c.db").exists()
    engine.dispose()


def test_writers_waiting_counts_the_sqlite_queue(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/q.db")
    assert writers_waiting() == 0
    lock = write_lock(engine)
    with lock:
        waiter = threading.Thread(target=lambda: lock.__enter__() or lock.__exit__())
        waiter.start()
        deadline = time.monotonic() + 5
        while writers_waiting() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writers_waiting() == 1
    waiter.join(5)
    assert writers_waiting() == 0
    assert db.write_lock(engine) is lock
    engine.dispose()


def test_every_duration_setting_accepts_decimals(monkeypatch):
    """SPEC.md section 8: a duration in days, hours, minutes or seconds may be a decimal."""
    durations = [
        name
        for name in Settings.model_fields
        if name.endswith(("_days", "_hours", "_minutes", "_seconds"))
    ]
    assert "baseline_window_days" in durations and "clock_skew_seconds" in durations
    for name in durations:
        monkeypatch.setenv(f"CAREPATH_{name.upper()}", "1.5")
    loaded = Settings()
    assert all(getattr(loaded, name) == 1.5 for name in durations), durations
