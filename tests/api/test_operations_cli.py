"""Misconfiguration stops the ``carepath`` command with one line naming the setting, exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]


def carepath(*argv: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run ``carepath`` in a fresh process with only these ``CAREPATH_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREPATH_")}
    env |= {f"CAREPATH_{k.upper()}": v for k, v in settings.items()}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "api.cli", *argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error line, after asserting it is the only line and the exit code is 2."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("dispatch_seconds", "soon", "CAREPATH_DISPATCH_SECONDS: Input should be a valid number"),
        ("delivery_max_attempts", "3.5", "CAREPATH_DELIVERY_MAX_ATTEMPTS: "),
        ("delivery_backoff_seconds", "-30", "CAREPATH_DELIVERY_BACKOFF_SECONDS: "),
        ("database_url", "mysql://db/carepath", "CAREPATH_DATABASE_URL: unknown scheme 'mysql'"),
        ("database_url", "carepath.db", "CAREPATH_DATABASE_URL: not a database URL"),
        ("database_url", "postgresql://u@db:port/x", "CAREPATH_DATABASE_URL: malformed URL"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path, setting, value, says):
    line = one_line(carepath("db", "current", cwd=tmp_path, **{setting: value}))
    assert line.startswith(f"carepath: {says}")


def test_help_reads_no_setting(tmp_path):
    for argv in (["--help"], ["serve", "--help"], ["db", "current", "--help"]):
        result = carepath(*argv, cwd=tmp_path, dispatch_seconds="soon", database_url="nonsense")
        assert result.returncode == 0 and "usage: carepath" in result.stdout, result.stderr


def test_an_unreachable_postgresql_is_one_line(tmp_path):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://carepath:secret-pw@127.0.0.1:{port}/carepath"
    line = one_line(carepath("db", "current", cwd=tmp_path, database_url=url))
    assert line.startswith("carepath: CAREPATH_DATABASE_URL: cannot reach ")
    assert "secret-pw" not in line and f":{port}" in line


def test_an_sqlite_path_in_no_directory_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    url = f"sqlite:///{tmp_path}/file/carepath.db"
    line = one_line(carepath("db", "upgrade", cwd=tmp_path, database_url=url))
    assert line == f"carepath: CAREPATH_DATABASE_URL: {tmp_path}/file is not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only directory")
def test_an_unwritable_sqlite_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    url = f"sqlite:///{locked}/carepath.db"
    line = one_line(carepath("db", "upgrade", cwd=tmp_path, database_url=url))
    assert line == (
        f"carepath: CAREPATH_DATABASE_URL: cannot create {locked}/carepath.db: "
        "its directory is not writable"
    )


def test_db_current_creates_no_database_in_the_working_directory(tmp_path):
    line = one_line(carepath("db", "current", cwd=tmp_path))
    assert line == f"carepath: CAREPATH_DATABASE_URL: {tmp_path}/carepath.db does not exist " + (
        "(`carepath db upgrade` creates it)"
    )
    assert list(tmp_path.iterdir()) == []
    assert carepath("db", "upgrade", cwd=tmp_path).returncode == 0
    upgraded = carepath("db", "current", cwd=tmp_path / "..", database_url="sqlite:///x/../y.db")
    assert upgraded.returncode == 2  # a relative path is resolved against the working directory
    in_place = carepath("db", "current", cwd=tmp_path)
    assert in_place.returncode == 0 and in_place.stdout.strip() not in ("", "none")


def test_a_busy_port_fails_before_serving(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = carepath("serve", "--port", str(port), cwd=tmp_path)
    assert "serving on" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("carepath:")]
    assert result.returncode == 2 and len(error) == 1, result.stderr
    assert error[0].startswith(f"carepath: --port: cannot listen on 127.0.0.1:{port}: ")


@pytest.mark.skipif(not ON_POSTGRES, reason="needs CAREPATH_TEST_DATABASE_URL on PostgreSQL")
def test_postgres_scheme_is_postgresql(tmp_path):
    url = make_url(TEST_DATABASE_URL).set(drivername="postgres").render_as_string(False)
    result = carepath("db", "current", cwd=tmp_path, database_url=url)
    assert result.returncode == 0, result.stderr


def test_the_start_up_line_names_the_database_and_relaxed_settings(monkeypatch, caplog):
    from api.cli import announce
    from models import settings as settings_module
    from models.db import make_engine
    from models.settings import Settings

    monkeypatch.setattr(settings_module, "CLINICAL_FLOORS", ("clearance_valid_minutes",))
    engine = make_engine("postgresql://carepath:pw@db.internal:5432/carepath")
    with caplog.at_level("INFO", logger="carepath"):
        announce(engine, "alone (no API)", Settings(clearance_valid_minutes=5))
    [record] = caplog.records
    assert record.getMessage() == (
        "database postgresql+psycopg://carepath:***@db.internal:5432/carepath; "
        "scheduler alone (no API); below the clinical default: clearance_valid_minutes=5"
    )
    assert record.relaxed_settings == {"clearance_valid_minutes": 5}  # type: ignore[attr-defined]
