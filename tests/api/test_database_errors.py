"""Database errors: a problem+json that keeps the connection open; no statement values logged."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, ProgrammingError, StatementError

from tests.api.helpers import Api, assert_problem, case_url, open_case
from workflow import records

SECRET = 187_654_321
"""A value that must never appear in a response or a log."""


def test_engine_hides_statement_parameters(engine):
    assert engine.hide_parameters
    with pytest.raises(StatementError) as raised, engine.connect() as conn:
        conn.execute(text("SELECT x FROM no_such_table WHERE x = :value"), {"value": SECRET})
    assert str(SECRET) not in str(raised.value)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (DataError, 422, "validation_error"),
        (ProgrammingError, 500, "internal_error"),
    ],
)
def test_database_error_is_a_problem_without_request_data(
    api: Api, monkeypatch, caplog, error, status, code
):
    def failing(*args, **kwargs):
        orig = sqlite3.DatabaseError(f"value {SECRET} out of range")
        raise error("INSERT INTO vitals ...", {"systolic": SECRET}, orig)

    monkeypatch.setattr(records.record_vital, "body", failing)
    case_id = open_case(api)
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    with caplog.at_level(logging.DEBUG):
        # The test client re-raises what reaches Starlette's last resort (which
        # would close the connection): this must be answered before that.
        response = api.call("coordinator", "POST", case_url(case_id, "/vitals"), json=vital)
    assert_problem(response, status, code)
    assert str(SECRET) not in response.text
    assert str(SECRET) not in caplog.text
    assert "POST" in caplog.text


def test_real_database_error_in_a_request_leaks_nothing(api: Api, monkeypatch, caplog):
    def failing(write, **kwargs):
        statement = text("INSERT INTO no_such_table VALUES (:systolic)")
        write.session.execute(statement, {"systolic": SECRET})

    monkeypatch.setattr(records.record_vital, "body", failing)
    case_id = open_case(api)
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    with caplog.at_level(logging.DEBUG):
        response = api.call("coordinator", "POST", case_url(case_id, "/vitals"), json=vital)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.status_code in (500, 503)
    assert str(SECRET) not in response.text + caplog.text
