"""The database engine and sessions."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

from models import facts, idempotency, reminders, tables  # noqa: F401  (registers every table)
from models.settings import settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "carepath_read_only"
"""Execution option of a connection that only reads (see ``read_only``)."""


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """An engine for ``url`` (default: ``CAREPATH_DATABASE_URL``), tuned for its database."""
    url = url or settings.database_url
    # An error's message and traceback never carry the statement's values.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _create_private(url: str) -> None:
    """Create the SQLite file readable and writable by its owner only, if it does not exist.

    SQLite gives the -wal and -shm files the database file's permissions.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError:
        return  # a directory that does not exist: SQLite's own error names it on connect


def _sqlite_engine(url: str, **kwargs) -> Engine:
    _create_private(url)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if ":memory:" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit the client was told about survives power loss, not just a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # WAL: a reader works on a snapshot; it never waits for the writer
            # and never holds it up.
            connection.exec_driver_sql("BEGIN")
            return
        # A deferred transaction that reads, then writes after another writer
        # committed, fails at once with SQLITE_BUSY_SNAPSHOT and never waits.
        # Taking the write lock up front makes writers queue on the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def read_only(engine: Engine) -> Engine:
    """``engine`` for transactions that only read: on SQLite they take no lock at all."""
    return engine.execution_options(**{READ_ONLY: True})


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def write_lock(bind: Engine | Connection) -> AbstractContextManager[object]:
    """Hold around a whole write transaction: this process's writers take turns.

    SQLite lets one writer in at a time, and the others poll for the lock
    (sleeping 1 ms, then longer, up to 100 ms): under load the lock sits idle
    between polls, and whoever polls at the right moment wins, so some
    requests wait for seconds. Waiting on a lock in the process instead hands
    over at once. Other databases lock rows, not the database: no lock here.
    """
    engine = bind.engine
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _WRITE_LOCKS.setdefault(engine, threading.Lock())


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process's engine, made once from the settings."""
    return make_engine()


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet (tests and the embedded default)."""
    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session, session.begin():
        yield session
