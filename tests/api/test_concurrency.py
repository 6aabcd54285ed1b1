"""Many clients firing the same transition at once: exactly one wins, once."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from api import deps
from models.db import write_lock, writers_waiting
from tests.api.helpers import Api, case_url, open_case

CLIENTS = 16


def test_sixteen_concurrent_holds_give_one_success_and_one_event(api: Api):
    case_id = open_case(api)
    barrier = threading.Barrier(CLIENTS)
    path = case_url(case_id, "/transitions/hold")
    headers = api.headers("coordinator")

    def hold(n: int) -> tuple[int, str]:
        barrier.wait()
        response = api.client.post(path, json={"reason": f"Client {n}."}, headers=headers)
        return response.status_code, response.json().get("code", "")

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(hold, range(CLIENTS)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * (CLIENTS - 1), results
    assert {code for status, code in results if status == 409} == {"invalid_transition"}
    holds = [e for e in api.items("admin", case_url(case_id, "/events")) if e["trigger"] == "hold"]
    assert len(holds) == 1
    case = api.get("admin", case_url(case_id))
    assert (case["state"], case["version"]) == ("on_hold", 2)


def test_concurrent_writes_with_one_if_match_give_one_success(api: Api):
    case_id = open_case(api)
    barrier = threading.Barrier(CLIENTS)
    headers = api.headers("coordinator", {"If-Match": '"1"'})
    body = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}

    def record(_: int) -> int:
        barrier.wait()
        return api.client.post(case_url(case_id, "/vitals"), json=body, headers=headers).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = sorted(pool.map(record, range(CLIENTS)))

    assert statuses == [201] + [412] * (CLIENTS - 1)
    assert len(api.items("admin", case_url(case_id, "/vitals"))) == 1
    assert api.get("admin", case_url(case_id))["version"] == 2


def test_a_case_write_runs_on_the_event_loop_on_sqlite_and_in_a_worker_thread_elsewhere(
    api: Api, engine, monkeypatch
):
    """On SQLite a write holds the database's one write lock, and runs on the loop so that
    nothing else in the process shares its CPU meanwhile; PostgreSQL locks a row, and a write
    there makes round trips to the server, which must not hold up the loop."""
    case_id = open_case(api)
    where: list[str] = []
    real = deps.commit_write

    def spy(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            where.append("loop")
        except RuntimeError:
            where.append("thread")
        return real(*args, **kwargs)

    monkeypatch.setattr(deps, "commit_write", spy)
    body = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    api.call("coordinator", "POST", case_url(case_id, "/vitals"), json=body, expect=201)
    assert where == ["loop" if engine.dialect.name == "sqlite" else "thread"]


def test_a_write_waiting_for_another_threads_turn_does_not_hold_up_the_loop(api: Api, engine):
    """The reminder dispatcher writes from a thread of its own. While it does, an API write
    waits for it, and the event loop goes on answering everything else."""
    case_id = open_case(api)
    body = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    headers = api.headers("coordinator")
    with ThreadPoolExecutor(1) as pool:
        with write_lock(engine):
            write = pool.submit(
                api.client.post, case_url(case_id, "/vitals"), json=body, headers=headers
            )
            deadline = time.monotonic() + 5
            while writers_waiting() == 0 and time.monotonic() < deadline and not write.done():
                time.sleep(0.01)
            if engine.dialect.name == "sqlite":  # elsewhere nothing waits: no database lock
                assert writers_waiting() == 1 and not write.done()
            assert api.client.get("/health").status_code == 200
            assert api.client.get(case_url(case_id), headers=headers).status_code == 200
        assert write.result(5).status_code == 201
    assert writers_waiting() == 0
    assert api.get("coordinator", case_url(case_id))["version"] == 2
