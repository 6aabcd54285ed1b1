"""A write kept waiting for the SQLite writers' turn by another process: 503, nothing written.

The turn is SQLite's (PostgreSQL locks the case's row), so this module's
database is always a SQLite file, on either of CI's runs.
"""

from __future__ import annotations

import os

import pytest

from models.db import write_lock
from tests.api.helpers import Api, assert_problem, case_url, open_case
from tests.conftest import sqlite_copy
from tests.models.turns import other_process_turn


@pytest.fixture
def database_url(tmp_path, _sqlite_template) -> str:
    return sqlite_copy(_sqlite_template, tmp_path)


def test_a_write_not_given_its_turn_among_processes_is_503_and_writes_nothing(
    api: Api, engine, monkeypatch
):
    """Another process holds the turn past the busy timeout (shortened here)."""
    assert engine.dialect.name == "sqlite"
    case_id = open_case(api)
    monkeypatch.setattr(write_lock(engine).turn, "timeout", 0.3)
    other = other_process_turn(engine.url.database)
    try:
        vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
        response = api.call("coordinator", "POST", case_url(case_id, "/vitals"), json=vital)
        assert_problem(response, 503, "unavailable")
        assert int(response.headers["retry-after"]) >= 1
    finally:
        os.close(other)
    case = api.call("coordinator", "GET", case_url(case_id))
    assert case.headers["etag"] == '"1"'
    assert api.get("coordinator", case_url(case_id, "/vitals"))["items"] == []
