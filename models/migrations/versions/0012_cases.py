"""Cases: assignment, patient_ref without regard to case, approval time, per-taper reminders.

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-01

- ``cases.assigned_coordinator_id`` beside ``assigned_clinician_id``, each
  with an index for ``?assignee=``.
- ``cases.approved_at``, filled in from each case's ``approve`` event, so
  "is the case approved?" no longer scans the audit trail.
- ``patient_ref`` compared without regard to case: the one-open-case-per-patient
  index is rebuilt on ``lower(patient_ref)``, and ``?patient_ref=`` gets an index
  on the same expression. The upgrade stops, naming the cases, if two open
  cases already differ only in the case of their reference: a person must
  close one first.
- ``case_changes``: the assignment and ``PATCH`` facts.
- ``tapers.active_when_planned``: whether the medication was still taken when
  its taper was planned (it limits the confirmed last dose). Existing open
  tapers of a medication stopped on or before the plan's date are marked
  ``false``; every other taper ``true``.
- ``reminders.taper_id``: a ``taper_checkin`` per taper, one pending per
  taper instead of one per case. Open check-ins made before this keep no
  taper and end when every taper of their case is confirmed, as before.

Columns are added and dropped in place, never by copying the table: on
SQLite a copy would drop ``cases`` under the tables that refer to it, and
would lose the expression indexes (SQLAlchemy cannot reflect them there).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "phase != 'closed'"
PER_CASE_BEFORE = "status = 'pending' AND kind != 'escalation'"
PER_CASE = "status = 'pending' AND kind != 'escalation' AND taper_id IS NULL"
PER_TAPER = "status = 'pending' AND taper_id IS NOT NULL"

APPROVED_AT = """
UPDATE cases SET approved_at = (
    SELECT min(audit_events.at) FROM audit_events
    WHERE audit_events.case_id = cases.id
      AND audit_events.kind = 'transition' AND audit_events.trigger = 'approve'
)
"""
DUPLICATE_OPEN_PATIENTS = """
SELECT lower(patient_ref) AS patient_key, count(*) AS n, min(id) AS first_id, max(id) AS last_id
FROM cases WHERE phase != 'closed' GROUP BY lower(patient_ref) HAVING count(*) > 1
"""


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def _add_reference(table: str, column: str, target: str) -> None:
    """A nullable integer column referring to ``target.id``, added in place."""
    if _sqlite():
        # SQLite adds a column with a REFERENCES clause in place; a separate
        # ADD CONSTRAINT (what Alembic would emit) it cannot do.
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER REFERENCES {target} (id)")
    else:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(f"fk_{table}_{column}_{target}", table, target, [column], ["id"])


def _drop_reference(table: str, column: str, target: str) -> None:
    if not _sqlite():
        op.drop_constraint(f"fk_{table}_{column}_{target}", table, type_="foreignkey")
    op.drop_column(table, column)


def _refuse_duplicate_open_patients() -> None:
    rows = op.get_bind().execute(sa.text(DUPLICATE_OPEN_PATIENTS)).all()
    if rows:
        found = "; ".join(f"{n} open cases, ids {first}..{last}" for _, n, first, last in rows)
        raise RuntimeError(
            "Some patients have more than one open case once patient_ref is compared without "
            f"regard to case ({found}): close or withdraw the extra cases, then upgrade again."
        )


def _patient_ref_indexes() -> None:
    _refuse_duplicate_open_patients()
    op.drop_index("uq_cases_open_patient_ref", table_name="cases")
    op.create_index(
        "uq_cases_open_patient_ref",
        "cases",
        [sa.text("lower(patient_ref)")],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_index("ix_cases_patient_key_id", "cases", [sa.text("lower(patient_ref)"), "id"])


def _mark_tapers_planned_after_the_stop() -> None:
    tapers = sa.table(
        "tapers",
        sa.column("id", sa.Integer()),
        sa.column("medication_id", sa.Integer()),
        sa.column("confirmed_at", models.types.UTCDateTime()),
        sa.column("ended_at", models.types.UTCDateTime()),
        sa.column("created_at", models.types.UTCDateTime()),
        sa.column("active_when_planned", sa.Boolean()),
    )
    medications = sa.table(
        "medications",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("stopped_on", sa.Date()),
    )
    conn = op.get_bind()
    query = (
        sa.select(tapers.c.id, tapers.c.created_at, medications.c.stopped_on)
        .join(medications, medications.c.id == tapers.c.medication_id)
        .where(
            tapers.c.confirmed_at.is_(None),
            tapers.c.ended_at.is_(None),
            medications.c.status == "stopped",
            medications.c.stopped_on.is_not(None),
        )
    )
    for taper_id, created_at, stopped_on in conn.execute(query).all():
        if stopped_on <= created_at.date():
            conn.execute(
                tapers.update().where(tapers.c.id == taper_id).values(active_when_planned=False)
            )


def _create_case_changes() -> None:
    op.create_table(
        "case_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("fact", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("made_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_changes_case_id", "case_changes", ["case_id"])


def _reminder_per_taper() -> None:
    _add_reference("reminders", "taper_id", "tapers")
    op.drop_index("uq_reminders_pending_case_kind", table_name="reminders")
    op.create_index(
        "uq_reminders_pending_case_kind",
        "reminders",
        ["case_id", "kind"],
        unique=True,
        sqlite_where=sa.text(PER_CASE),
        postgresql_where=sa.text(PER_CASE),
    )
    op.create_index(
        "uq_reminders_pending_taper_kind",
        "reminders",
        ["taper_id", "kind"],
        unique=True,
        sqlite_where=sa.text(PER_TAPER),
        postgresql_where=sa.text(PER_TAPER),
    )


def upgrade() -> None:
    _add_reference("cases", "assigned_coordinator_id", "users")
    op.add_column(
        "cases", sa.Column("approved_at", models.types.UTCDateTime(timezone=True), nullable=True)
    )
    op.execute(APPROVED_AT)
    op.create_index("ix_cases_assigned_clinician_id_id", "cases", ["assigned_clinician_id", "id"])
    op.create_index(
        "ix_cases_assigned_coordinator_id_id", "cases", ["assigned_coordinator_id", "id"]
    )
    _patient_ref_indexes()
    _create_case_changes()
    op.add_column(
        "tapers",
        sa.Column("active_when_planned", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    _mark_tapers_planned_after_the_stop()
    _reminder_per_taper()


def downgrade() -> None:
    # A taper's pending check-ins become the case's one again: keep the oldest of each case.
    op.execute(
        "UPDATE reminders SET status = 'cancelled' WHERE status = 'pending' "
        "AND taper_id IS NOT NULL AND id NOT IN (SELECT min(id) FROM reminders "
        "WHERE status = 'pending' AND taper_id IS NOT NULL GROUP BY case_id, kind)"
    )
    op.drop_index("uq_reminders_pending_taper_kind", table_name="reminders")
    op.drop_index("uq_reminders_pending_case_kind", table_name="reminders")
    op.create_index(
        "uq_reminders_pending_case_kind",
        "reminders",
        ["case_id", "kind"],
        unique=True,
        sqlite_where=sa.text(PER_CASE_BEFORE),
        postgresql_where=sa.text(PER_CASE_BEFORE),
    )
    _drop_reference("reminders", "taper_id", "tapers")
    op.drop_column("tapers", "active_when_planned")
    op.drop_index("ix_case_changes_case_id", table_name="case_changes")
    op.drop_table("case_changes")
    op.drop_index("ix_cases_patient_key_id", table_name="cases")
    op.drop_index("uq_cases_open_patient_ref", table_name="cases")
    op.create_index(
        "uq_cases_open_patient_ref",
        "cases",
        ["patient_ref"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.drop_index("ix_cases_assigned_coordinator_id_id", table_name="cases")
    op.drop_index("ix_cases_assigned_clinician_id_id", table_name="cases")
    op.drop_column("cases", "approved_at")
    _drop_reference("cases", "assigned_coordinator_id", "users")
