"""Fixtures for the API tests: an app on this test's database, a movable clock, staff tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api import auth
from api.deps import get_now
from api.main import create_app
from models.db import session_scope
from models.schemas import UserCreate
from tests.api.helpers import Api

STAFF = {
    "admin": UserCreate(name="ada", role="admin"),
    "coordinator": UserCreate(name="cora", role="coordinator"),
    "clinician": UserCreate(name="clio", role="clinician", license_states=["CA", "NY"]),
}


class Clock:
    """The API's clock in tests: fixed until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(now) -> Clock:
    return Clock(now)


@pytest.fixture
def app(engine, clock) -> FastAPI:
    """The app on this test's database, its clock overridden the way any client's can be."""
    app = create_app(engine)
    app.dependency_overrides[get_now] = clock
    return app


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def make_tokens(engine: Engine, now: datetime) -> dict[str, str]:
    """One user per role; their bearer tokens by role."""
    tokens = {}
    with session_scope(engine) as session:
        for role, data in STAFF.items():
            _, tokens[role] = auth.create_user(session, data=data, now=now)
    return tokens


@pytest.fixture
def tokens(engine, now) -> dict[str, str]:
    return make_tokens(engine, now)


@pytest.fixture
def api(client, tokens, clock) -> Api:
    return Api(client, tokens, clock)
