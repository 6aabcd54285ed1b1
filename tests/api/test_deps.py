"""The request's dependencies: its session is closed, its connection back in the pool, by the
time the response is sent."""

from __future__ import annotations

import anyio.to_thread

from api import auth
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


def test_the_token_lookup_takes_a_worker_thread_only_off_sqlite(api, engine, monkeypatch):
    pooled = []
    run_sync = anyio.to_thread.run_sync

    async def spy(func, *args, **kwargs):
        pooled.append(getattr(func, "__func__", func))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    api.get("clinician", "/api/v1/cases?limit=1")
    assert pooled, "the request ran nothing in the thread pool: the spy saw nothing"
    assert (auth.TokenLookup.actor in pooled) == (engine.dialect.name != "sqlite")
