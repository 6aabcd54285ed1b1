"""Many clients firing the same transition at once: exactly one wins, once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

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
