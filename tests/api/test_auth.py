"""Tokens: stored only as hashes, and the CAREPATH_ADMIN_TOKEN bootstrap."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from api import auth
from api.main import create_app
from models.db import session_scope
from models.settings import settings
from models.tables import User


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admins(engine) -> list[User]:
    with session_scope(engine) as session:
        return list(session.exec(select(User).where(User.name == "admin")).all())


def test_tokens_are_stored_only_as_sha256_hashes(engine, tokens):
    with session_scope(engine) as session:
        stored = {u.token_hash for u in session.exec(select(User)).all()}
    assert not stored & set(tokens.values())
    assert {auth.hash_token(t) for t in tokens.values()} <= stored
    assert all(len(h) == 64 for h in stored)


FIRST, SECOND = "first-admin-token-0123456789", "second-admin-token-987654321"


def test_admin_token_bootstrap_creates_then_rekeys(engine, monkeypatch):
    monkeypatch.setattr(settings, "admin_token", FIRST)
    with TestClient(create_app(engine)) as client:
        assert client.get("/api/v1/users", headers=bearer(FIRST)).status_code == 200
    monkeypatch.setattr(settings, "admin_token", SECOND)
    with TestClient(create_app(engine)) as client:
        assert client.get("/api/v1/users", headers=bearer(FIRST)).status_code == 401
        assert client.get("/api/v1/users", headers=bearer(SECOND)).status_code == 200
    assert [u.role for u in admins(engine)] == ["admin"]


def test_bootstrap_restores_the_admin_role(engine):
    with session_scope(engine) as session:
        session.add(User(name="admin", role="coordinator", token_hash=auth.hash_token("x")))
    auth.bootstrap_admin(engine, SECOND)
    [user] = admins(engine)
    assert (user.role, user.token_hash) == ("admin", auth.hash_token(SECOND))


def test_no_admin_token_no_admin_user(engine, monkeypatch):
    monkeypatch.setattr(settings, "admin_token", None)
    with TestClient(create_app(engine)) as client:
        assert client.get("/health").status_code == 200
    assert admins(engine) == []
