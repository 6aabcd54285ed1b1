"""Idempotency-Key on POST (SPEC.md section 5): a replay gets the first answer, changes nothing."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.api.helpers import Api, assert_problem, case_url, open_case

CLIENTS = 12


def items(page: Any) -> list[Any]:
    return page["items"] if isinstance(page, dict) else page


def vital(api: Api) -> dict[str, Any]:
    return {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}


def post(api: Api, path: str, body: Any, key: str, role: str = "coordinator"):
    return api.call(role, "POST", path, json=body, headers={"Idempotency-Key": key})


def test_a_replay_gets_the_first_response_and_changes_nothing(api: Api):
    case_id = open_case(api)
    path, body = case_url(case_id, "/vitals"), vital(api)
    first = post(api, path, body, "retry-1")
    assert first.status_code == 201
    before = api.snapshot(case_id)
    again = post(api, path, body, "retry-1")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert api.snapshot(case_id) == before
    assert len(items(api.get("admin", path))) == 1


def test_the_body_is_compared_as_parsed_json(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/vitals")
    body = vital(api)
    first = post(api, path, body, "k")
    reordered = dict(reversed(list(body.items())))
    again = api.client.post(
        path,
        content=json.dumps(reordered, indent=2),
        headers=api.headers(
            "coordinator", {"Idempotency-Key": "k", "Content-Type": "application/json"}
        ),
    )
    assert (again.status_code, again.json()) == (first.status_code, first.json())


def test_a_different_body_with_the_same_key_is_422(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/vitals")
    post(api, path, vital(api), "k")
    before = api.snapshot(case_id)
    response = post(api, path, {**vital(api), "systolic": 150}, "k")
    assert_problem(response, 422, "validation_error")
    assert api.snapshot(case_id) == before


def test_errors_are_replayed_too(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/transitions/approve")
    first = post(api, path, None, "approve-1", role="clinician")
    assert first.status_code == 409
    again = post(api, path, None, "approve-1", role="clinician")
    assert (again.status_code, again.json()) == (409, first.json())


def test_keys_are_per_user_and_per_path(api: Api):
    first, second = open_case(api), open_case(api)
    body = vital(api)
    post(api, case_url(first, "/vitals"), body, "same")
    post(api, case_url(second, "/vitals"), body, "same")
    post(api, case_url(first, "/vitals"), body, "same", role="clinician")
    assert len(items(api.items("admin", case_url(first, "/vitals")))) == 2
    assert len(items(api.items("admin", case_url(second, "/vitals")))) == 1


def test_a_key_expires_after_idempotency_hours(api: Api, app):
    case_id = open_case(api)
    path, body = case_url(case_id, "/vitals"), vital(api)
    app.state.clock = api.clock
    post(api, path, body, "k")
    api.clock.advance(hours=23)
    assert post(api, path, body, "k").headers.get("idempotent-replayed") == "true"
    api.clock.advance(hours=2)
    assert post(api, path, body, "k").status_code == 201
    assert len(items(api.get("admin", path))) == 2


@pytest.mark.parametrize("key", ["", "x" * 201, "caf\u00e9", "tab\there"])
def test_a_bad_key_is_422(api: Api, key):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    response = api.client.post(
        case_url(case_id, "/vitals"),
        json=vital(api),
        headers={
            **api.headers("coordinator"),
            "Idempotency-Key": key.encode(),
        },
    )
    assert_problem(response, 422, "validation_error")
    assert api.snapshot(case_id) == before


def test_a_key_without_a_token_is_still_401(api: Api):
    case_id = open_case(api)
    response = post(api, case_url(case_id, "/vitals"), vital(api), "k", role=None)  # type: ignore[arg-type]
    assert_problem(response, 401, "unauthenticated")


def test_concurrent_requests_with_one_key_apply_once(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/transitions/hold")
    barrier = threading.Barrier(CLIENTS)
    headers = api.headers("coordinator", {"Idempotency-Key": "hold-once"})

    def hold(_: int) -> tuple[int, Any]:
        barrier.wait()
        response = api.client.post(path, json={"reason": "Retrying."}, headers=headers)
        return response.status_code, response.json()

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(hold, range(CLIENTS)))

    assert {status for status, _ in results} == {200}, results
    assert len({str(body) for _, body in results}) == 1
    events = items(api.items("admin", case_url(case_id, "/events")))
    assert [e["trigger"] for e in events].count("hold") == 1
    assert api.get("admin", case_url(case_id))["version"] == 2


def test_concurrent_fact_posts_with_one_key_record_one_fact(api: Api):
    case_id = open_case(api)
    path, body = case_url(case_id, "/vitals"), vital(api)
    barrier = threading.Barrier(CLIENTS)
    headers = api.headers("coordinator", {"Idempotency-Key": "vital-once"})

    def record(_: int) -> int:
        barrier.wait()
        return api.client.post(path, json=body, headers=headers).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(record, range(CLIENTS)))
    assert statuses == [201] * CLIENTS
    assert len(items(api.get("admin", path))) == 1


def test_expired_rows_are_removed(api: Api, app, engine):
    from sqlmodel import Session, select

    from models.idempotency import IdempotencyKey

    app.state.clock = api.clock
    case_id = open_case(api)
    post(api, case_url(case_id, "/vitals"), vital(api), "old")
    api.clock.advance(hours=25)
    post(api, case_url(case_id, "/vitals"), vital(api), "new")
    with Session(engine) as session:
        keys = [row.key for row in session.exec(select(IdempotencyKey)).all()]
    assert keys == ["new"]


def test_a_body_too_deep_for_json_is_hashed_as_bytes(api: Api):
    body = b"[" * 30_000 + b"]" * 30_000
    headers = api.headers("coordinator", {"Idempotency-Key": "deep"})
    response = api.client.post("/api/v1/cases", content=body, headers=headers)
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("rotate", [False, True])
def test_a_token_is_never_kept_for_a_replay(api: Api, engine, rotate: bool):
    # SPEC.md section 1: a token is shown once and stored only as its hash.
    from sqlmodel import Session, select

    from models.idempotency import IdempotencyKey

    created = post(api, "/api/v1/users", {"name": "nurse.two", "role": "clinician"}, "u", "admin")
    path = f"/api/v1/users/{created.json()['id']}/token" if rotate else "/api/v1/users"
    body = None if rotate else {"name": "nurse.two", "role": "clinician"}
    first = post(api, path, body, "u", "admin") if rotate else created
    token = first.json()["token"]
    assert first.status_code == (200 if rotate else 201) and token
    with Session(engine) as session:
        kept = [row.body or "" for row in session.exec(select(IdempotencyKey)).all()]
    assert kept and not any(token in body for body in kept)
    again = post(api, path, body, "u", "admin")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.status_code == first.status_code
    shown = {k: v for k, v in first.json().items() if k != "token"}
    assert again.json() == shown
    users = [u for u in items(api.get("admin", "/api/v1/users")) if u["name"] == "nurse.two"]
    assert len(users) == 1


def test_a_path_with_a_nul_is_the_app_s_404_and_keeps_no_key(api: Api, engine):
    # PostgreSQL text cannot hold a NUL: the key is not looked up for a path no route has.
    from sqlmodel import Session, select

    from models.idempotency import IdempotencyKey

    case_id = open_case(api)
    before = api.snapshot(case_id)
    for path in (case_url(case_id, "/transitions/hold%00"), "/api/v1/nope%00"):
        response = post(api, path, {"reason": "Away."}, "nul", role="clinician")
        assert_problem(response, 404, "not_found")
    with Session(engine) as session:
        assert session.exec(select(IdempotencyKey)).all() == []
    assert api.snapshot(case_id) == before
