"""Reminder rows: the source of truth for what is due (SPEC.md section 7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, timestamp_field


class Reminder(SQLModel, table=True):
    """Something due on a case, for a role, at a time."""

    __tablename__ = "reminders"
    __table_args__ = (
        # One pending reminder per case and kind, enforced by the database.
        Index(
            "uq_reminders_pending_case_kind",
            "case_id",
            "kind",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_reminders_status_due_at", "status", "due_at"),
        Index("ix_reminders_case_id", "case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    kind: str = Field(max_length=40)
    due_at: datetime = Field(sa_type=UTCDateTime)
    recipient_role: str = Field(max_length=20)
    status: str = Field(default="pending", max_length=10)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
