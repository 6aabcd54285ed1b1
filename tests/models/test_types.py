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
