"""Fixtures shared by every test package: a fresh database per test, a fixed clock, staff.

Tests run on SQLite by default. With ``CAREPATH_TEST_DATABASE_URL`` set to a
PostgreSQL server, the same tests run there: one throwaway database per test
run, emptied before each test. That URL's role is the service's; with
``CAREPATH_TEST_OWNER_URL`` set too, the throwaway database is created,
migrated and emptied as that owner role, and the service role gets only what
``models.migrate.grant_service_role`` grants (as in production).
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

from models import migrate
from models.db import make_engine, session_scope
from models.tables import User, name_key
from workflow import hooks
from workflow.definition import Actor

TEST_DATABASE_URL = os.environ.get("CAREPATH_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
OWNER_URL = os.environ.get("CAREPATH_TEST_OWNER_URL") or TEST_DATABASE_URL


def admin_url(url: str) -> str:
    """The URL of the server's maintenance database, for creating and dropping others."""
    return (
        make_url(url)
        .set(drivername="postgresql+psycopg", database="postgres")
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run, dropped at the end."""
    if not ON_POSTGRES:
        pytest.skip("needs CAREPATH_TEST_DATABASE_URL set to a PostgreSQL server")
    name = f"carepath_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url(OWNER_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def owner_url(url: str) -> str:
    """The URL of the same database as ``url``, as the owner role."""
    database = make_url(url).database
    return make_url(OWNER_URL).set(database=database).render_as_string(hide_password=False)


def empty_tables(url: str) -> None:
    """Empty every table of the PostgreSQL database at ``url``, as its owner.

    The audit table refuses TRUNCATE with a trigger that only its owner may set
    aside, here for this one transaction.
    """
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with _owner_engine(owner_url(url)).begin() as conn:
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_truncate"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_truncate"))


@functools.cache
def _owner_engine(url: str) -> Engine:
    return make_engine(url, pool_size=1, max_overflow=0)


@pytest.fixture(scope="session")
def _postgres_engine(request) -> Iterator[Engine | None]:
    """The service's engine on the throwaway database, migrated to head by the owner."""
    if not ON_POSTGRES:
        yield None
        return
    url = request.getfixturevalue("postgres_url")
    owner = make_engine(owner_url(url))
    migrate.upgrade(owner)
    service_role = make_url(url).username
    if service_role and service_role != owner.url.username:
        migrate.grant_service_role(owner, service_role)
    owner.dispose()
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """An SQLite file migrated to head once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "carepath.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    """The URL of a copy of the migrated SQLite ``template`` in ``directory``."""
    path = directory / "carepath.db"
    for suffix in ("", "-wal"):
        if Path(f"{template}{suffix}").exists():
            shutil.copyfile(f"{template}{suffix}", f"{path}{suffix}")
    return f"sqlite:///{path}"


@pytest.fixture
def database_url(tmp_path, _postgres_engine, request) -> str:
    """The URL of this test's database: migrated to head, with no rows."""
    if _postgres_engine is None:
        return sqlite_copy(request.getfixturevalue("_sqlite_template"), tmp_path)
    url = _postgres_engine.url.render_as_string(hide_password=False)
    empty_tables(url)
    return url


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    """An engine on this test's empty database, with the migrated schema in place."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _no_hook_listeners_from_elsewhere(monkeypatch) -> None:
    """Each test starts with no workflow listeners; a test that wants reminders installs them.

    Importing ``api.main`` builds its module-level app, which installs the
    reminder policies for the whole process: without this, a test's outcome
    would depend on which tests ran before it.
    """
    monkeypatch.setattr(hooks, "LISTENERS", [])


@pytest.fixture
def now() -> datetime:
    """The test clock: a fixed, time-zone-aware instant. Tests move it by hand."""
    return datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def add_user(engine: Engine, name: str, role: str, states: tuple[str, ...] = ()) -> Actor:
    """Store a user (no usable token) and return it as an actor."""
    with session_scope(engine) as session:
        licenses = [{"state": state, "expires_on": None} for state in states]
        user = User(
            name=name,
            name_key=name_key(name),
            role=role,
            licenses=licenses,
            token_hash=uuid.uuid4().hex,
        )
        session.add(user)
        session.flush()
        return Actor(id=user.id, role=role, license_states=states)


@pytest.fixture
def clinician(engine) -> Actor:
    """A clinician licensed in CA and NY."""
    return add_user(engine, "clinician", "clinician", ("CA", "NY"))


@pytest.fixture
def coordinator(engine) -> Actor:
    return add_user(engine, "coordinator", "coordinator")


@pytest.fixture
def admin(engine) -> Actor:
    return add_user(engine, "admin", "admin")


@pytest.fixture
def empty_engine(tmp_path) -> Iterator[Engine]:
    """An engine on a brand-new, empty database (SQLite file, or a throwaway PostgreSQL one)."""
    if not ON_POSTGRES:
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    name = f"carepath_schema_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url(OWNER_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    # Schema tests migrate up and down: as the owner, as migrations run in production.
    engine = make_engine(
        make_url(OWNER_URL).set(database=name).render_as_string(hide_password=False)
    )
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
