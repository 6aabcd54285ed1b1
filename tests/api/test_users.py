"""User management (SPEC.md section 1): licences, deactivation, rotation, events, paging.

The clock of these tests is 2 November 2026, 15:00 UTC.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from api import auth
from api.deps import get_now
from api.main import create_app
from models import migrate
from models.db import make_engine, session_scope
from models.schemas import UserCreate
from models.tables import User
from tests.api.helpers import Api, assert_problem, case_url, open_case, record_evaluation, screen
from tests.system.processes import carepath, free_port, wait_healthy
from workflow.errors import Conflict

USERS = "/api/v1/users"
PUBLIC_KEYS = {"id", "name", "role", "licenses", "license_states", "active", "created_at"}


def create(api: Api, expect: int = 201, **body: Any) -> dict[str, Any]:
    return api.post("admin", USERS, body, expect=expect)


def user_url(user: dict[str, Any], suffix: str = "") -> str:
    return f"{USERS}/{user['id']}{suffix}"


def kinds(api: Api, user: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in api.get("admin", user_url(user, "/events"))["items"]]


def me_status(client: TestClient, token: str) -> int:
    return client.get(f"{USERS}/me", headers={"Authorization": f"Bearer {token}"}).status_code


def user_count(api: Api) -> int:
    return len(api.get("admin", USERS, params={"limit": 200})["items"])


# -- creating ------------------------------------------------------------------


def test_a_clinician_is_created_with_licences_and_a_token_shown_once(api: Api):
    created = create(
        api,
        name="dr-lee",
        role="clinician",
        licenses=[{"state": "TX", "expires_on": "2027-06-30"}, {"state": "CA"}],
        license_states=["NY"],
    )
    assert created.keys() == PUBLIC_KEYS | {"token"} and len(created["token"]) >= 40
    assert created["licenses"] == [
        {"state": "CA", "expires_on": None},
        {"state": "NY", "expires_on": None},
        {"state": "TX", "expires_on": "2027-06-30"},
    ]
    assert (created["license_states"], created["active"]) == (["CA", "NY", "TX"], True)
    shown = api.get("admin", user_url(created))
    assert shown == {k: v for k, v in created.items() if k != "token"}
    assert kinds(api, created) == ["created"]


def test_an_expired_licence_is_kept_but_does_not_count(api: Api):
    body = [
        {"state": "CA", "expires_on": "2026-11-01"},
        {"state": "NY", "expires_on": "2026-11-02"},
    ]
    created = create(api, name="dr-old", role="clinician", licenses=body)
    assert created["licenses"] == body
    assert created["license_states"] == ["NY"]  # valid through its expiry date: today
    api.clock.advance(days=1)
    assert api.get("admin", user_url(created))["license_states"] == []


def test_a_clinician_whose_licence_expired_cannot_approve(api: Api):
    created = create(
        api, name="dr-old", role="clinician", licenses=[{"state": "CA", "expires_on": "2026-11-01"}]
    )
    api.tokens["expired"] = created["token"]
    case_id = open_case(api)
    record_evaluation(api, case_id)
    screen(api, case_id)
    before = api.snapshot(case_id)
    blocked = assert_problem(
        api.call("expired", "POST", case_url(case_id, "/transitions/approve")),
        409,
        "transition_blocked",
    )
    assert [u["code"] for u in blocked["unmet"]] == ["clinician.licensed"]
    assert api.snapshot(case_id) == before
    api.fire("clinician", case_id, "approve")  # licensed in CA without expiry


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "sam", "role": "coordinator", "license_states": ["CA"]}, "body"),
        ({"name": "sam", "role": "admin", "licenses": [{"state": "CA"}]}, "body"),
        ({"name": "sam", "role": "clinician", "license_states": ["ZZ"]}, "body"),
        ({"name": "sam", "role": "clinician", "licenses": [{"state": "XX"}]}, "body"),
        ({"name": "sam", "role": "clinician", "licenses": [{"state": "ca"}]}, "body"),
        (
            {"name": "sam", "role": "clinician", "licenses": [{"state": "CA", "expires_on": "x"}]},
            "body",
        ),
        ({"name": "sam", "role": "clinician", "licenses": [{"state": "CA", "from": "x"}]}, "body"),
    ],
    ids=["coordinator", "admin", "ZZ", "XX", "lower case", "bad date", "unknown field"],
)
def test_bad_licences_are_a_422_and_create_nothing(api: Api, body, field):
    before = user_count(api)
    problem = assert_problem(api.call("admin", "POST", USERS, json=body), 422, "validation_error")
    assert problem["errors"] and all(e["loc"][0] == field for e in problem["errors"])
    assert user_count(api) == before


@pytest.mark.parametrize("name", ["ADA", "Ada", "ada"])
def test_names_are_unique_without_regard_to_case(api: Api, name):
    before = user_count(api)
    response = api.call("admin", "POST", USERS, json={"name": name, "role": "coordinator"})
    assert "already exists" in assert_problem(response, 409, "conflict")["detail"]
    assert user_count(api) == before


# -- reading -------------------------------------------------------------------


def test_users_are_listed_in_pages(api: Api):
    for n in range(3):
        create(api, name=f"extra-{n}", role="coordinator")
    first = api.get("admin", USERS, params={"limit": 4})
    assert [u["name"] for u in first["items"]] == ["ada", "cora", "clio", "extra-0"]
    assert all(u.keys() == PUBLIC_KEYS for u in first["items"])
    rest = api.get("admin", USERS, params={"limit": 4, "cursor": first["next_cursor"]})
    assert ([u["name"] for u in rest["items"]], rest["next_cursor"]) == (
        ["extra-1", "extra-2"],
        None,
    )
    open_case(api)
    open_case(api)
    cases_cursor = api.get("admin", "/api/v1/cases", params={"limit": 1})["next_cursor"]
    for params in ({"cursor": cases_cursor}, {"cursor": "junk"}, {"limit": 0}, {"limit": 201}):
        assert_problem(api.call("admin", "GET", USERS, params=params), 422, "validation_error")


@pytest.mark.parametrize("role", ["admin", "coordinator", "clinician"])
def test_any_user_reads_itself(api: Api, role):
    me = api.get(role, f"{USERS}/me")
    assert (me["role"], me.keys()) == (role, PUBLIC_KEYS)
    assert "token" not in me


def test_an_unknown_user_is_a_404(api: Api):
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/deactivate"),
        ("POST", "/reactivate"),
        ("POST", "/token"),
        ("GET", "/events"),
    ):
        body = {"licenses": []} if method == "PATCH" else None
        response = api.call("admin", method, f"{USERS}/999{suffix}", json=body)
        assert_problem(response, 404, "not_found")


# -- changing licences ---------------------------------------------------------


def test_patch_replaces_a_clinician_s_licences(api: Api):
    clio = api.get("clinician", f"{USERS}/me")
    new = [{"state": "TX", "expires_on": "2027-01-31"}]
    changed = api.call("admin", "PATCH", user_url(clio), json={"licenses": new}, expect=200).json()
    assert (changed["licenses"], changed["license_states"]) == (new, ["TX"])
    [event] = api.get("admin", user_url(clio, "/events"))["items"][1:]
    assert event["kind"] == "licenses_changed" and event["data"]["after"] == new
    assert [lic["state"] for lic in event["data"]["before"]] == ["CA", "NY"]
    case_id = open_case(api)  # a CA patient: the clinician is no longer licensed there
    unmet = api.get("clinician", case_url(case_id, "/transitions"))[0]["unmet"]
    assert unmet[0]["code"] == "clinician.licensed"


def test_licences_for_a_non_clinician_are_a_422_and_change_nothing(api: Api):
    cora = api.get("coordinator", f"{USERS}/me")
    body = {"licenses": [{"state": "CA"}]}
    response = api.call("admin", "PATCH", user_url(cora), json=body)
    assert assert_problem(response, 422, "validation_error")["errors"][0]["loc"] == [
        "body",
        "licenses",
    ]
    assert api.get("admin", user_url(cora)) == cora
    assert kinds(api, cora) == ["created"]
    no_state = api.call("admin", "PATCH", user_url(cora), json={"licenses": [{"state": "QQ"}]})
    assert_problem(no_state, 422, "validation_error")


# -- deactivating, reactivating, rotating --------------------------------------------


def test_a_deactivated_token_is_a_401_from_the_next_request_and_reactivation_restores_it(api: Api):
    cora = api.get("coordinator", f"{USERS}/me")
    done = api.post("admin", user_url(cora, "/deactivate"), expect=200)
    assert done["active"] is False
    response = api.call("coordinator", "GET", "/api/v1/cases")
    assert_problem(response, 401, "unauthenticated")
    assert api.post("admin", user_url(cora, "/deactivate"), expect=200)["active"] is False
    assert api.post("admin", user_url(cora, "/reactivate"), expect=200)["active"] is True
    api.get("coordinator", "/api/v1/cases")
    assert kinds(api, cora) == ["created", "deactivated", "reactivated"]


def test_a_rotated_token_is_a_401_and_the_new_one_works(api: Api):
    clio = api.get("clinician", f"{USERS}/me")
    rotated = api.post("admin", user_url(clio, "/token"), expect=200)
    old, api.tokens["clinician"] = api.tokens["clinician"], rotated["token"]
    assert rotated["token"] != old and len(rotated["token"]) >= 40
    assert_problem(api.call(old, "GET", f"{USERS}/me"), 401, "unauthenticated")
    assert api.get("clinician", f"{USERS}/me")["id"] == clio["id"]
    events = api.get("admin", user_url(clio, "/events"))["items"]
    assert [e["kind"] for e in events] == ["created", "token_rotated"]
    assert events[1]["actor_id"] == api.get("admin", f"{USERS}/me")["id"]
    assert all(t not in str(events) for t in (old, rotated["token"]))


def test_the_last_active_admin_cannot_be_deactivated(api: Api):
    ada = api.get("admin", f"{USERS}/me")
    response = api.call("admin", "POST", user_url(ada, "/deactivate"))
    assert "last active admin" in assert_problem(response, 409, "conflict")["detail"]
    assert api.get("admin", f"{USERS}/me")["active"] is True
    assert kinds(api, ada) == ["created"]

    root = create(api, name="root", role="admin")
    api.tokens["root"] = root["token"]
    assert api.post("admin", user_url(ada, "/deactivate"), expect=200)["active"] is False
    assert_problem(api.call("admin", "GET", USERS), 401, "unauthenticated")
    refused = api.call("root", "POST", user_url(root, "/deactivate"))
    assert_problem(refused, 409, "conflict")
    api.post("root", user_url(ada, "/reactivate"), expect=200)
    api.post("admin", user_url(root, "/deactivate"), expect=200)


def test_user_events_are_paged_oldest_first(api: Api):
    cora = api.get("coordinator", f"{USERS}/me")
    for _ in range(2):
        api.post("admin", user_url(cora, "/deactivate"), expect=200)
        api.post("admin", user_url(cora, "/reactivate"), expect=200)
    first = api.get("admin", user_url(cora, "/events"), params={"limit": 3})
    rest = api.get("admin", user_url(cora, "/events"), params={"cursor": first["next_cursor"]})
    events = first["items"] + rest["items"]
    assert rest["next_cursor"] is None
    assert [e["kind"] for e in events] == ["created"] + ["deactivated", "reactivated"] * 2
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert {e["data"]["via"] for e in events} == {"cli", "api"}  # the fixture made it with code


@pytest.mark.parametrize(
    "statement", ["UPDATE user_events SET kind = 'x'", "DELETE FROM user_events"]
)
def test_the_database_refuses_to_change_user_events(api: Api, engine, statement):
    cora = api.get("coordinator", f"{USERS}/me")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert kinds(api, cora) == ["created"]


# -- every API process sees a change on its next request ---------------------------


def test_two_api_processes_see_deactivation_and_rotation_at_once(api: Api, database_url, clock):
    """Two apps, each with its own engine (its own pool) on one database."""
    other_engine = make_engine(database_url)
    other = create_app(other_engine)
    other.dependency_overrides[get_now] = clock
    try:
        with TestClient(other) as second:

            def check(token: str) -> int:
                return me_status(second, token)

            cora = api.get("coordinator", f"{USERS}/me")
            assert check(api.tokens["coordinator"]) == 200
            api.post("admin", user_url(cora, "/deactivate"), expect=200)
            assert check(api.tokens["coordinator"]) == 401
            api.post("admin", user_url(cora, "/reactivate"), expect=200)
            assert check(api.tokens["coordinator"]) == 200
            new = api.post("admin", user_url(cora, "/token"), expect=200)["token"]
            assert (check(api.tokens["coordinator"]), check(new)) == (401, 200)
    finally:
        other_engine.dispose()


ADMIN_TOKEN = "users-test-admin-token-0123456789abcdef"


@pytest.mark.slow
def test_two_carepath_serve_processes_see_deactivation_and_rotation(empty_engine, tmp_path: Path):
    """Real ``carepath serve`` processes on one database (PostgreSQL in CI, SQLite here)."""
    migrate.upgrade(empty_engine)
    env = {
        "CAREPATH_DATABASE_URL": empty_engine.url.render_as_string(hide_password=False),
        "CAREPATH_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    with ExitStack() as stack:
        bases = []
        for n in range(2):
            port = free_port()
            args = ("serve", "--no-scheduler", "--port", str(port))
            process = stack.enter_context(carepath(*args, env=env, log=tmp_path / f"api-{n}.log"))
            bases.append(f"http://127.0.0.1:{port}")
            wait_healthy(bases[-1], process)
        one, two = bases

        def call(base: str, method: str, path: str, token: str = ADMIN_TOKEN) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.request(method, base + path, headers=headers, timeout=30)

        response = httpx.post(
            f"{one}{USERS}",
            json={"name": "sam", "role": "coordinator"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        sam = response.json()
        assert call(two, "GET", f"{USERS}/me", sam["token"]).status_code == 200
        assert call(one, "POST", user_url(sam, "/deactivate")).status_code == 200
        assert call(two, "GET", f"{USERS}/me", sam["token"]).status_code == 401
        assert call(two, "POST", user_url(sam, "/reactivate")).status_code == 200
        assert call(one, "GET", f"{USERS}/me", sam["token"]).status_code == 200
        new = call(two, "POST", user_url(sam, "/token")).json()["token"]
        assert call(one, "GET", f"{USERS}/me", sam["token"]).status_code == 401
        assert call(one, "GET", f"{USERS}/me", new).status_code == 200
        events = call(one, "GET", user_url(sam, "/events")).json()["items"]
        assert [e["kind"] for e in events] == [
            "created",
            "deactivated",
            "reactivated",
            "token_rotated",
        ]


def test_two_admins_deactivating_each_other_at_once_leave_one_active(engine, now):
    """The last-admin rule holds under concurrency: the active admins are locked first."""
    with session_scope(engine) as session:
        ids = [
            auth.create_user(session, data=UserCreate(name=n, role="admin"), now=now)[0].id
            for n in ("root-a", "root-b")
        ]
    barrier = threading.Barrier(2)

    def deactivate(user_id: int) -> str:
        barrier.wait()
        try:
            with session_scope(engine) as session:
                auth.deactivate(session, user=session.get(User, user_id), now=now)
        except Conflict:
            return "refused"
        return "done"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(deactivate, ids))
    assert outcomes == ["done", "refused"]
    with session_scope(engine) as session:
        assert len(session.exec(select(User).where(col(User.active))).all()) == 1
