"""Tokens: stored as hashes, refused once deactivated or rotated; the admin token bootstrap."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from api import auth
from api.main import create_app
from models.db import make_engine, session_scope
from models.schemas import UserCreate
from models.settings import settings
from models.tables import User, UserEvent

ROOT = Path(__file__).resolve().parents[2]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admins(engine) -> list[User]:
    with session_scope(engine) as session:
        return list(session.exec(select(User).where(User.name_key == "admin")).all())


def event_kinds(engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        events = session.exec(select(UserEvent).order_by(UserEvent.id)).all()
        return [(e.kind, e.data["via"]) for e in events]


def test_tokens_are_stored_only_as_sha256_hashes(engine, tokens):
    with session_scope(engine) as session:
        stored = {u.token_hash for u in session.exec(select(User)).all()}
    assert not stored & set(tokens.values())
    assert {auth.hash_token(t) for t in tokens.values()} <= stored
    assert all(len(h) == 64 for h in stored)


def test_a_token_lookup_sees_deactivation_and_rotation_at_once(engine, tokens, now):
    with session_scope(engine) as session:
        assert auth.actor_for_token(session, tokens["coordinator"]).role == "coordinator"
        user = auth.find_user(session, "cora")
        auth.deactivate(session, user=user, now=now)
        assert auth.actor_for_token(session, tokens["coordinator"]) is None
        auth.reactivate(session, user=user, now=now)
        assert auth.actor_for_token(session, tokens["coordinator"]) is not None
        new = auth.rotate_token(session, user=user, now=now)
        assert auth.actor_for_token(session, tokens["coordinator"]) is None
        assert auth.actor_for_token(session, new).id == user.id


def test_the_request_token_lookup_sees_deactivation_and_rotation_at_once(engine, tokens, now):
    lookup = auth.TokenLookup(engine)
    actor = lookup.actor(tokens["clinician"])
    assert actor is not None and actor.role == "clinician"
    assert sorted(lic.state for lic in actor.licenses) == ["CA", "NY"]
    assert lookup.actor("not-a-token-anyone-has") is None
    with session_scope(engine) as session:
        user = auth.find_user(session, "clio")
        auth.deactivate(session, user=user, now=now)
    assert lookup.actor(tokens["clinician"]) is None
    with session_scope(engine) as session:
        user = auth.find_user(session, "clio")
        auth.reactivate(session, user=user, now=now)
        new = auth.rotate_token(session, user=user, now=now)
        user_id = user.id
    assert lookup.actor(tokens["clinician"]) is None
    assert lookup.actor(new).id == user_id
    assert engine.pool.checkedout() == 0


def test_a_failing_token_lookup_is_a_database_error_that_hides_the_token(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")
    token = "a-token-that-must-not-be-printed"
    try:
        with pytest.raises(OperationalError) as raised:
            auth.TokenLookup(engine).actor(token)
        assert token not in str(raised.value) and auth.hash_token(token) not in str(raised.value)
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


FIRST, SECOND = "first-admin-token-0123456789abcdef", "second-admin-token-987654321fedcba"


def test_admin_token_bootstrap_creates_then_rekeys(engine, monkeypatch):
    monkeypatch.setattr(settings, "admin_token", FIRST)
    with TestClient(create_app(engine)) as client:
        assert client.get("/api/v1/users", headers=bearer(FIRST)).status_code == 200
    monkeypatch.setattr(settings, "admin_token", SECOND)
    with TestClient(create_app(engine)) as client:
        assert client.get("/api/v1/users", headers=bearer(FIRST)).status_code == 401
        assert client.get("/api/v1/users", headers=bearer(SECOND)).status_code == 200
    with TestClient(create_app(engine)) as client:  # the same token again: nothing to record
        assert client.get("/api/v1/users/me", headers=bearer(SECOND)).json()["name"] == "admin"
    assert [u.role for u in admins(engine)] == ["admin"]
    assert event_kinds(engine) == [("created", "bootstrap"), ("token_rotated", "bootstrap")]


def test_processes_bootstrapping_at_once_all_start_with_one_admin(engine, database_url):
    """Several API processes starting together: one creates the admin, the others find it."""
    token = "t" * 40
    engines = [make_engine(database_url) for _ in range(4)]
    start, errors = threading.Barrier(len(engines)), []

    def boot(each) -> None:
        start.wait()
        try:
            auth.bootstrap_admin(each, token)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for each in engines:
        each.dispose()
    assert errors == []
    with session_scope(engine) as session:
        admins = session.exec(select(User).where(User.role == "admin")).all()
        assert [a.name for a in admins] == ["admin"]


def test_bootstrap_reactivates_a_deactivated_admin(engine, now):
    auth.bootstrap_admin(engine, FIRST)
    with session_scope(engine) as session:
        auth.create_user(session, data=UserCreate(name="root", role="admin"), now=now)
        auth.deactivate(session, user=auth.find_user(session, "admin"), now=now)
    auth.bootstrap_admin(engine, FIRST)
    [user] = admins(engine)
    assert user.active and user.token_hash == auth.hash_token(FIRST)
    assert event_kinds(engine)[-2:] == [("deactivated", "cli"), ("reactivated", "bootstrap")]


@pytest.mark.parametrize("name", ["admin", "Admin", "ADMIN"])
def test_bootstrap_refuses_a_non_admin_named_admin_in_any_case(engine, now, name):
    with session_scope(engine) as session:
        data = UserCreate(name=name, role="coordinator")
        _, token = auth.create_user(session, data=data, now=now)
    with pytest.raises(auth.BootstrapRefused, match="not admin"):
        auth.bootstrap_admin(engine, SECOND)
    [kept] = admins(engine)
    assert (kept.name, kept.role, kept.token_hash) == (name, "coordinator", auth.hash_token(token))
    assert event_kinds(engine) == [("created", "cli")]


@pytest.mark.parametrize("token", ["", "x", "a" * 31])
def test_bootstrap_refuses_a_token_shorter_than_32_characters(engine, token):
    with pytest.raises(auth.BootstrapRefused, match="at least 32"):
        auth.bootstrap_admin(engine, token)
    assert admins(engine) == []
    auth.bootstrap_admin(engine, "a" * 32)
    assert len(admins(engine)) == 1


def test_no_admin_token_no_admin_user(engine, monkeypatch):
    monkeypatch.setattr(settings, "admin_token", None)
    with TestClient(create_app(engine)) as client:
        assert client.get("/health").status_code == 200
    assert admins(engine) == []


def run_serve(database_url: str, admin_token: str) -> subprocess.CompletedProcess[str]:
    """``carepath serve`` in a process of its own, as an operator starts it."""
    env = {**os.environ, "CAREPATH_DATABASE_URL": database_url, "CAREPATH_ADMIN_TOKEN": admin_token}
    command = [sys.executable, "-m", "api.cli", "serve", "--no-scheduler", "--port", "0"]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def refusal_lines(stderr: str) -> list[str]:
    """What the command says of its own (log records carry a time stamp and a level)."""
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("carepath:")]


@pytest.mark.slow
def test_serve_stops_with_one_line_on_a_short_admin_token(database_url):
    finished = run_serve(database_url, "too-short-0123456789")
    assert finished.returncode != 0 and finished.stdout == ""
    assert refusal_lines(finished.stderr) == [
        "carepath: CAREPATH_ADMIN_TOKEN is 20 characters long; it must be at least 32."
    ]


@pytest.mark.slow
def test_serve_stops_with_one_line_when_admin_is_taken_by_a_non_admin(engine, database_url, now):
    with session_scope(engine) as session:
        auth.create_user(session, data=UserCreate(name="ADMIN", role="clinician"), now=now)
    finished = run_serve(database_url, SECOND)
    assert finished.returncode != 0
    [line] = refusal_lines(finished.stderr)
    assert "'ADMIN' exists with the role clinician, not admin" in line
    [kept] = admins(engine)
    assert kept.role == "clinician"
