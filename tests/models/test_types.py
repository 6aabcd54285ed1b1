"""Timestamps are stored and read back as time-zone-aware UTC on every database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlmodel import Session

from models.tables import Case


def _case(at: datetime) -> Case:
    return Case(
        patient_ref="p-1",
        patient_state="CA",
        state="evaluation",
        phase="evaluation",
        created_at=at,
        updated_at=at,
    )


def test_an_aware_timestamp_comes_back_as_the_same_instant_in_utc(engine):
    at = datetime(2026, 11, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    with Session(engine) as session:
        session.add(_case(at))
        session.commit()
    with Session(engine) as session:
        stored = session.get(Case, 1)
        assert stored.created_at == at
        assert stored.created_at.utcoffset() == timedelta(0)


def test_a_naive_timestamp_is_refused(engine):
    with Session(engine) as session, pytest.raises(StatementError, match="naive"):
        session.add(_case(datetime(2026, 11, 2, 9, 30)))
        session.commit()


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path):
    import os
    import stat

    from sqlalchemy import text

    from models.db import make_engine

    previous = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'private.db'}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            files = sorted(p.name for p in tmp_path.iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        engine.dispose()
    finally:
        os.umask(previous)
    assert {"private.db", "private.db-wal", "private.db-shm"} <= set(files)
    assert modes == dict.fromkeys(files, 0o600)
