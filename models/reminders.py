"""Reminder rows: the source of truth for what is due (SPEC.md section 7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, timestamp_field

PENDING, SENT, FAILED, CANCELLED = "pending", "sent", "failed", "cancelled"
STATUSES = (PENDING, SENT, FAILED, CANCELLED)
"""Every status a reminder can have. A claimed reminder stays ``pending``: its lease is
``next_attempt_at`` (see ``schedules.dispatcher``), so no transient status exists."""


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
        # The dispatcher's query: status = 'pending' AND due_at <= now, oldest first.
        Index("ix_reminders_status_due_at", "status", "due_at"),
        Index("ix_reminders_case_id", "case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    kind: str = Field(max_length=40)
    due_at: datetime = Field(sa_type=UTCDateTime)
    recipient_role: str = Field(max_length=20)
    status: str = Field(default=PENDING, max_length=10)
    attempts: int = 0
    """Delivery attempts claimed so far; also the claim token (``schedules.dispatcher``)."""
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Not before then: the lease of an attempt in flight, or the backoff after a failed one."""
    last_error: str | None = Field(default=None, max_length=1000)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
