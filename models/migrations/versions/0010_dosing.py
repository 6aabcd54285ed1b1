"""The dosing cycle: monitors, emergency contacts, the dose record, the case's prescription.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-30

Every change is made in place, not in batch mode: on SQLite a batch copy drops
the old table, which ``care_sessions`` (and other tables) refer to. Existing
rows are carried over: a v1 dosing session's dose time is its completion, a
granted clearance no session used stays open, and each case's prescription is
read from its latest ``prescribe`` or ``adjust_dose`` audit event.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def _person_table(name: str, *extra: sa.Column) -> None:
    """A table of people on a case: a name, a relationship and a phone (personal data)."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(length=200), nullable=False),
        sa.Column("relationship", AutoString(length=100), nullable=False),
        sa.Column("phone", AutoString(length=40), nullable=False),
        *extra,
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(f"ix_{name}_case_id", name, ["case_id"], unique=False)


def _add_monitor_id(table: str) -> None:
    """A ``monitor_id`` referring to ``monitors``; SQLite takes the reference only inline."""
    if op.get_context().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} ADD COLUMN monitor_id INTEGER REFERENCES monitors (id)")
        return
    op.add_column(
        table, sa.Column("monitor_id", sa.Integer(), sa.ForeignKey("monitors.id"), nullable=True)
    )


CLEARANCE_COLUMNS = (
    ("heart_rate", sa.Integer()),
    ("voided_at", UTCDateTime(timezone=True)),
    ("void_reason", AutoString(length=400)),
    ("cancelled_at", UTCDateTime(timezone=True)),
    ("cancelled_by", sa.Integer()),
    ("cancel_reason", AutoString(length=4000)),
)
SESSION_COLUMNS = (
    ("dosed_at", UTCDateTime(timezone=True)),
    ("dose_mg", sa.Float()),
    ("units_taken", sa.Integer()),
    ("post_systolic", sa.Integer()),
    ("post_diastolic", sa.Integer()),
    ("post_taken_at", UTCDateTime(timezone=True)),
    ("recheck_systolic", sa.Integer()),
    ("recheck_diastolic", sa.Integer()),
    ("recheck_taken_at", UTCDateTime(timezone=True)),
)


def _upgrade_clearances() -> None:
    for name, type_ in CLEARANCE_COLUMNS:
        op.add_column("dose_clearances", sa.Column(name, type_, nullable=True))
    # No reference: a refused clearance keeps the monitor id it named, registered or not.
    op.add_column("dose_clearances", sa.Column("monitor_id", sa.Integer(), nullable=True))
    for flag in ("open", "void"):
        op.add_column(
            "dose_clearances",
            sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    op.execute(
        "UPDATE dose_clearances SET open = "
        + ("true" if op.get_context().dialect.name == "postgresql" else "1")
        + " WHERE granted AND NOT EXISTS "
        "(SELECT 1 FROM care_sessions s WHERE s.clearance_id = dose_clearances.id)"
    )
    op.drop_column("dose_clearances", "monitor_present")
    op.create_index(
        "ix_dose_clearances_case_open_created",
        "dose_clearances",
        ["case_id", "open", "created_at"],
        unique=False,
    )


def _upgrade_sessions() -> None:
    for name, type_ in SESSION_COLUMNS:
        op.add_column("care_sessions", sa.Column(name, type_, nullable=True))
    _add_monitor_id("care_sessions")
    op.add_column(
        "care_sessions", sa.Column("deviations", sa.JSON(), nullable=False, server_default="[]")
    )
    op.execute("UPDATE care_sessions SET dosed_at = completed_at WHERE kind = 'dosing'")
    # A clearance used twice is a deviation now, recorded with the dose: no longer unique.
    op.drop_index("uq_care_sessions_clearance", table_name="care_sessions")
    op.create_index("ix_care_sessions_clearance", "care_sessions", ["clearance_id"], unique=False)
    op.create_index(
        "ix_care_sessions_case_kind_dosed",
        "care_sessions",
        ["case_id", "kind", "dosed_at"],
        unique=False,
    )


def _prescriptions_from_the_audit_trail() -> None:
    """Each case's dose in force, from its latest ``prescribe`` or ``adjust_dose`` event."""
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer()),
        sa.column("case_id", sa.Integer()),
        sa.column("at", UTCDateTime()),
        sa.column("actor_id", sa.Integer()),
        sa.column("trigger", sa.String()),
        sa.column("data", sa.JSON()),
    )
    cases = sa.table("cases", sa.column("id", sa.Integer()), sa.column("prescription", sa.JSON()))
    conn = op.get_bind()
    query = (
        sa.select(events)
        .where(events.c.trigger.in_(("prescribe", "adjust_dose")))
        .order_by(events.c.id)
    )
    found: dict[int, dict[str, Any]] = {}
    for row in conn.execute(query).mappings():
        data = row["data"] or {}
        held = found.get(row["case_id"], {})
        found[row["case_id"]] = {
            "dose_mg": data.get("dose_mg", held.get("dose_mg")),
            "route": data.get("route", held.get("route")),
            "formulation": data.get("formulation", held.get("formulation")),
            "units_per_dose": data.get("units_per_dose", held.get("units_per_dose")),
            "prescribed_by": row["actor_id"],
            "prescribed_at": row["at"].isoformat() if row["at"] is not None else None,
            "refills": 0,
        }
    for case_id, prescription in found.items():
        conn.execute(cases.update().where(cases.c.id == case_id).values(prescription=prescription))


def upgrade() -> None:
    _person_table("emergency_contacts")
    _person_table(
        "monitors",
        sa.Column("adult_attested", sa.Boolean(), nullable=False),
        sa.Column("trained_on", sa.Date(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )
    _upgrade_clearances()
    _upgrade_sessions()
    op.add_column("cases", sa.Column("prescription", sa.JSON(), nullable=True))
    _prescriptions_from_the_audit_trail()


def downgrade() -> None:
    # In place, as the upgrade: dropping a column keeps the tables that refer to this one.
    op.drop_column("cases", "prescription")
    op.drop_index("ix_care_sessions_case_kind_dosed", table_name="care_sessions")
    op.drop_index("ix_care_sessions_clearance", table_name="care_sessions")
    op.create_index("uq_care_sessions_clearance", "care_sessions", ["clearance_id"], unique=True)
    for name in ("deviations", "monitor_id", *(n for n, _ in SESSION_COLUMNS)):
        op.drop_column("care_sessions", name)
    op.drop_index("ix_dose_clearances_case_open_created", table_name="dose_clearances")
    op.add_column(
        "dose_clearances",
        sa.Column("monitor_present", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    for name in ("open", "void", "monitor_id", *(n for n, _ in CLEARANCE_COLUMNS)):
        op.drop_column("dose_clearances", name)
    for name in ("monitors", "emergency_contacts"):
        op.drop_index(f"ix_{name}_case_id", table_name=name)
        op.drop_table(name)
