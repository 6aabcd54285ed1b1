"""The request's dependencies and route: its session closed and its connection back in the pool
by the time the response is sent, and at most one trip to the thread pool per request."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import anyio.to_thread
import pytest
from sqlmodel import Session

from api import auth
from api.routers import cases, evaluation
from api.routing import offloaded
from tests.api.conftest import Clock
from tests.api.helpers import assert_problem, case_url, open_case


def test_a_read_returns_its_connection_when_it_answers(api, engine):
    case_id = open_case(api)
    api.get("clinician", case_url(case_id))
    assert engine.pool.checkedout() == 0
    assert_problem(api.call("clinician", "GET", case_url(case_id + 1000)), 404, "not_found")
    assert engine.pool.checkedout() == 0


def test_a_write_with_a_stale_or_malformed_if_match_is_refused(api):
    case_id = open_case(api)
    path = case_url(case_id, "/transitions/hold")
    for if_match in ('"999"', "3", 'W/"x"'):
        response = api.call(
            "coordinator", "POST", path, json={"reason": "r"}, headers={"If-Match": if_match}
        )
        assert_problem(response, 412, "version_conflict")
    assert api.get("coordinator", case_url(case_id))["state"] == "evaluation"
    held = api.call("coordinator", "POST", path, json={"reason": "r"}, headers={"If-Match": "*"})
    assert held.status_code == 200 and held.json()["state"] == "on_hold"


@pytest.fixture
def pooled(monkeypatch) -> list[Any]:
    """Every function the requests run in the thread pool, from now on."""
    functions: list[Any] = []
    run_sync = anyio.to_thread.run_sync

    async def spy(func, *args, **kwargs):
        called = func
        while isinstance(called, functools.partial):
            called = called.func
        functions.append(getattr(called, "__func__", called))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    return functions


def test_the_token_lookup_takes_a_worker_thread_only_off_sqlite(api, engine, pooled):
    api.get("clinician", "/api/v1/cases?limit=1")
    assert pooled, "the request ran nothing in the thread pool: the spy saw nothing"
    assert (auth.TokenLookup.actor in pooled) == (engine.dialect.name != "sqlite")


def endpoint_trips(pooled: list[Any]) -> list[Any]:
    """The trips to the pool but the token lookup and closing a session (off SQLite), and the
    tests' clock (a plain callable overriding ``get_now``)."""
    skipped = (auth.TokenLookup.actor, Session.close)
    return [f for f in pooled if f not in skipped and not isinstance(f, Clock)]


def test_a_request_takes_one_trip_to_the_thread_pool_or_none(api, engine, pooled):
    case_id = open_case(api)
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    pooled.clear()
    api.post("coordinator", case_url(case_id, "/vitals"), vital)
    # The endpoint: its response is validated on the event loop, not in a second trip. On
    # SQLite a write runs on the event loop itself, when no other thread is writing.
    on_loop = engine.dialect.name == "sqlite"
    assert endpoint_trips(pooled) == ([] if on_loop else [evaluation.record_vital])
    pooled.clear()
    assert api.get("clinician", case_url(case_id))["id"] == case_id
    assert endpoint_trips(pooled) == [cases.get_case]


def test_an_offloaded_endpoint_keeps_its_name_signature_and_docstring():
    def endpoint(case_id: int, note: str = "x") -> dict[str, Any]:
        """What it does."""
        return {"case_id": case_id, "note": note}

    wrapped = offloaded(endpoint)
    assert inspect.iscoroutinefunction(wrapped)
    assert (wrapped.__name__, wrapped.__doc__) == ("endpoint", "What it does.")
    assert inspect.signature(wrapped) == inspect.signature(endpoint)
    assert anyio.run(lambda: wrapped(case_id=3)) == {"case_id": 3, "note": "x"}
