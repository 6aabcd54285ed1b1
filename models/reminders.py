"""Reminder rows: the source of truth for what is due (SPEC.md section 7), and the worklist's
per-case sort key (SPEC.md section 9)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, timestamp_field

PENDING, SENT, ACKNOWLEDGED, FAILED, CANCELLED = (
    "pending",
    "sent",
    "acknowledged",
    "failed",
    "cancelled",
)
STATUSES = (PENDING, SENT, ACKNOWLEDGED, FAILED, CANCELLED)
"""Every status a reminder can have. A claimed reminder keeps its status: its lease is
``next_attempt_at`` (see ``schedules.dispatcher``), so no transient status exists."""
OPEN_STATUSES = (PENDING, SENT)
"""A reminder is open while it waits for delivery or for a person."""
OPEN = "open"
"""The ``?status=`` filter that means either open status."""

ESCALATION = "escalation"
URGENT_KINDS = ("safety_review", ESCALATION)
"""Open reminders of these kinds put a case at the top of the worklist."""


PER_CASE = "status = 'pending' AND kind != 'escalation' AND taper_id IS NULL"
PER_TAPER = "status = 'pending' AND taper_id IS NOT NULL"


class Reminder(SQLModel, table=True):
    """Something due on a case, for a role (and its assigned user), at a time."""

    __tablename__ = "reminders"
    __table_args__ = (
        # One pending reminder per case and kind, enforced by the database;
        # escalations are one per original instead, and a taper's reminder one
        # per taper (below).
        Index(
            "uq_reminders_pending_case_kind",
            "case_id",
            "kind",
            unique=True,
            sqlite_where=text(PER_CASE),
            postgresql_where=text(PER_CASE),
        ),
        Index(
            "uq_reminders_pending_taper_kind",
            "taper_id",
            "kind",
            unique=True,
            sqlite_where=text(PER_TAPER),
            postgresql_where=text(PER_TAPER),
        ),
        Index(
            "uq_reminders_escalates",
            "escalates",
            unique=True,
            sqlite_where=text("escalates IS NOT NULL"),
            postgresql_where=text("escalates IS NOT NULL"),
        ),
        # The dispatcher's queries: first deliveries by due_at, repeats by next_attempt_at.
        Index("ix_reminders_status_due_at", "status", "due_at"),
        Index("ix_reminders_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_reminders_case_id", "case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    kind: str = Field(max_length=40)
    due_at: datetime = Field(sa_type=UTCDateTime)
    recipient_role: str = Field(max_length=20)
    recipient_id: int | None = Field(default=None, foreign_key="users.id")
    """The case's assigned user of ``recipient_role`` when it was made; null for escalations."""
    taper_id: int | None = Field(default=None, foreign_key="tapers.id")
    """For a reminder about one taper (``taper_checkin``): that taper."""
    status: str = Field(default=PENDING, max_length=20)
    attempts: int = 0
    """Delivery attempts claimed so far, repeats included; also the claim token."""
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Not before then: a lease in flight, the backoff after a failure, or the next repeat."""
    last_error: str | None = Field(default=None, max_length=1000)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When it was first delivered."""
    deliveries: int = 0
    """Successful deliveries: the first, then one per repeat."""
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: int | None = Field(default=None, foreign_key="users.id")
    escalates: int | None = Field(default=None, foreign_key="reminders.id")
    """For an escalation: the reminder nobody acknowledged."""
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When this reminder's escalation was created (it has at most one)."""
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class WorkItem(SQLModel, table=True):
    """A case's place on the worklist, kept up to date with its reminders and its state.

    ``rank`` 0: an open safety review or escalation, ordered by its due time;
    1: other open reminders, by the earliest due time (most overdue first);
    2: an open case with no open reminder, by ``state_since`` (longest first);
    null: not on the worklist. One index walk gives any page in order.
    """

    __tablename__ = "work_items"
    __table_args__ = (Index("ix_work_items_rank_sort_at_case_id", "rank", "sort_at", "case_id"),)

    case_id: int = Field(primary_key=True, foreign_key="cases.id")
    rank: int | None = Field(default=None)
    sort_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    state_since: datetime = Field(sa_type=UTCDateTime)
    """When the case entered its current state (its last transition event's ``at``)."""
