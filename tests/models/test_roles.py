"""On PostgreSQL the service's role may only read and add to the audit trail (SPEC.md section 6)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from models import migrate
from models.db import make_engine
from tests.conftest import owner_url

REFUSED = [
    "UPDATE audit_events SET kind = 'x'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "TRUNCATE cases CASCADE",
    "ALTER TABLE audit_events DISABLE TRIGGER USER",
    "DROP TRIGGER audit_events_append_only ON audit_events",
    "DELETE FROM alembic_version",
]


@contextmanager
def as_service(engine: Engine) -> Iterator[Connection]:
    """A connection with exactly the service's privileges.

    When the suite already runs as a separate service role (``.ci/run``), that
    is this test's own connection; when it runs as the owner, a throwaway role
    granted by ``grant_service_role`` is assumed with ``SET ROLE``.
    """
    owner = make_engine(owner_url(engine.url.render_as_string(hide_password=False)))
    role = None
    try:
        if engine.url.username == owner.url.username:
            role = f"carepath_service_{uuid.uuid4().hex[:8]}"
            with owner.begin() as conn:
                conn.execute(text(f'CREATE ROLE "{role}"'))
            migrate.grant_service_role(owner, role)
        with engine.connect() as conn:
            if role is not None:
                conn.execute(text(f'SET ROLE "{role}"'))
            yield conn
            conn.rollback()
            if role is not None:
                conn.execute(text("RESET ROLE"))
                conn.commit()
    finally:
        if role is not None:
            with owner.begin() as conn:
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))
        owner.dispose()


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cases (patient_ref, patient_state, state, phase, version, "
                "medication_list_version, referrals, created_at, updated_at) VALUES "
                "('p-1', 'CA', 'evaluation', 'evaluation', 1, 0, '[]', now(), now())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (case_id, at, actor_role, kind, data, hash) "
                "VALUES (1, now(), 'system', 'fact', '{}', 'x')"
            )
        )


@pytest.fixture
def postgres_engine(engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("database roles are PostgreSQL's; SQLite's triggers are tested elsewhere")
    return engine


@pytest.mark.parametrize("statement", REFUSED)
def test_service_role_may_not_change_or_empty_the_audit_trail(postgres_engine, statement):
    _seed(postgres_engine)
    with as_service(postgres_engine) as conn, pytest.raises(DBAPIError):
        conn.execute(text(statement))
    with postgres_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 1


def test_service_role_may_read_and_add(postgres_engine):
    _seed(postgres_engine)
    with as_service(postgres_engine) as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (case_id, at, actor_role, kind, data, hash) "
                "VALUES (1, now(), 'system', 'fact', '{}', 'y')"
            )
        )
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 2
        conn.execute(text("UPDATE cases SET version = 2"))
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
