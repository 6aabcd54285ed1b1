"""The patient: profile, consent, the history's new fields; indexes for the ongoing-safety reads.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Histories recorded before this revision get ``false`` for each new field:
``insomnia_mood_driven`` false leaves ``criteria.mood_disorder`` unmet until a
clinician records it, and the new contraindications are unknown, not absent,
until the history is taken again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_HISTORY_FLAGS = (
    "insomnia_mood_driven",
    "psychosis_or_mania_history",
    "aneurysm_avm_or_ich",
    "recent_mi_or_stroke",
)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("pregnant", sa.Boolean(), nullable=False),
        sa.Column("breastfeeding", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("signed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consents_case_version", "consents", ["case_id", "version"])
    for name in NEW_HISTORY_FLAGS:
        op.add_column(
            "histories",
            sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    op.add_column(
        "cases",
        sa.Column("clinical_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_audit_events_case_trigger", "audit_events", ["case_id", "trigger", "id"])
    op.create_index(
        "ix_dose_clearances_case_granted_created",
        "dose_clearances",
        ["case_id", "granted", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_dose_clearances_case_granted_created", table_name="dose_clearances")
    op.drop_index("ix_audit_events_case_trigger", table_name="audit_events")
    # In place, not batch: SQLite copies a table in batch mode, and dropping the
    # cases table that other tables refer to is refused.
    op.drop_column("cases", "clinical_version")
    for name in reversed(NEW_HISTORY_FLAGS):
        op.drop_column("histories", name)
    op.drop_index("ix_consents_case_version", table_name="consents")
    op.drop_table("consents")
    op.drop_table("profiles")
