"""The tables carepath keeps: users and their events, cases, and the audit trail.

Facts recorded on a case live in ``models.facts`` and reminders in
``models.reminders``. A case's ``state`` is written only by the workflow
service, through the shared state machine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ColumnElement, Index, String, func, text
from sqlmodel import Field, SQLModel, col

from models.types import UTCDateTime, timestamp_field


def name_key(name: str) -> str:
    """What makes two user names the same: ``Admin`` and ``admin`` are one name."""
    return name.lower()


class User(SQLModel, table=True):
    """A member of staff who signs in with a bearer token."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_name_key", "name_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(100), unique=True, nullable=False))
    name_key: str = Field(max_length=100)
    """``name_key(name)``: the database keeps names unique without regard to case."""
    role: str = Field(max_length=20)
    licenses: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    """A clinician's licences: ``{"state": "CA", "expires_on": "2027-06-30" or None}``."""
    active: bool = Field(default=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = timestamp_field()


class UserEvent(SQLModel, table=True):
    """One change to a user (created, licences, deactivated, ...). Never updated, never deleted."""

    __tablename__ = "user_events"
    __table_args__ = (Index("ix_user_events_user_id_id", "user_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    at: datetime = timestamp_field()
    actor_id: int | None = Field(default=None)
    """The admin who made the change; None for the command line and the bootstrap."""
    kind: str = Field(max_length=30)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


CLOSED_PHASE = "closed"


class Case(SQLModel, table=True):
    """One patient's course of care, moving through the workflow's states."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_phase_id", "phase", "id"),
        Index("ix_cases_state_id", "state", "id"),
        Index("ix_cases_assigned_clinician_id_id", "assigned_clinician_id", "id"),
        Index("ix_cases_assigned_coordinator_id_id", "assigned_coordinator_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(max_length=64)
    patient_state: str = Field(max_length=2)
    state: str = Field(max_length=40)
    phase: str = Field(max_length=20)
    held_from: str | None = Field(default=None, max_length=40)
    version: int = Field(default=1)
    medication_list_version: int = Field(default=0)
    """Bumped by every change to the medication list; screenings record the one they saw."""
    clinical_version: int = Field(default=0)
    """Bumped by every history or profile write that changes a value (a rewrite of the same
    values does not): what a dose clearance granted earlier was checked against."""
    assigned_clinician_id: int | None = Field(default=None, foreign_key="users.id")
    assigned_coordinator_id: int | None = Field(default=None, foreign_key="users.id")
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the case was approved (its ``approve`` transition), set by that trigger's effect."""
    referrals: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    """A declined case's referrals: ``{"referral": ..., "answers": <requirement code>}``."""
    prescription: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """The dose in force (SPEC.md 4.5): set by ``prescribe``, changed by ``adjust_dose``."""
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
    audit_hash: str | None = Field(default=None, max_length=64)
    """The ``hash`` of the case's newest audit event: the head of its chain."""


def patient_key(patient_ref: str) -> str:
    """What makes two patient references the same: ``PT-1`` and ``pt-1`` are one patient.

    The same as the database's ``lower()`` on the ASCII a ``patient_ref`` may hold.
    """
    return patient_ref.lower()


PATIENT_KEY = func.lower(col(Case.patient_ref))
"""``patient_key`` in SQL: the expression the indexes below are built on."""


def same_patient(patient_ref: str) -> ColumnElement[bool]:
    """A filter for the cases of the patient ``patient_ref``, by ``lower(patient_ref)``: the
    expression the indexes are built on, so they serve it."""
    return func.lower(col(Case.patient_ref)) == patient_key(patient_ref)


# One open case per patient, without regard to case, enforced by the database itself.
Index(
    "uq_cases_open_patient_ref",
    PATIENT_KEY,
    unique=True,
    sqlite_where=text("phase != 'closed'"),
    postgresql_where=text("phase != 'closed'"),
)
# ``GET /cases?patient_ref=``: every case of a patient, open or closed, in id order.
Index("ix_cases_patient_key_id", PATIENT_KEY, col(Case.id))


class AuditEvent(SQLModel, table=True):
    """One accepted write to a case. Never updated, never deleted."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_case_id_id", "case_id", "id"),
        # One trigger's events of a case (was it approved?) without reading its whole trail.
        Index("ix_audit_events_case_trigger", "case_id", "trigger", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    at: datetime = timestamp_field()
    actor_id: int | None = Field(default=None)
    actor_role: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    trigger: str | None = Field(default=None, max_length=40)
    from_state: str | None = Field(default=None, max_length=40)
    to_state: str | None = Field(default=None, max_length=40)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str | None = Field(default=None, max_length=64)
    """The ``hash`` of the case's previous event; None on its first."""
    hash: str = Field(max_length=64)
    """SHA-256 of this event's canonical encoding, its ``prev_hash`` included."""


class WebSession(SQLModel, table=True):
    """A signed-in browser of the web pages: the cookie holds a secret, this row its hash.

    The row keeps the user's token hash at sign-in: the session is valid only
    while the user's token is still that one, so a rotated token ends it.
    """

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    secret_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = timestamp_field()
    last_seen_at: datetime = timestamp_field()
