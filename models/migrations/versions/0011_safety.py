"""Suicide risk and adverse events: onset times, the assessment an event came from, safety
plans, and referrals that name the requirement each answers (SPEC.md 4.6, 4.7).

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-01

Events recorded before this revision began when they were recorded: their
``onset_at`` is their ``created_at``. A referral recorded before it is kept with
``answers`` null, since which requirement it answered was not stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create_safety_plans() -> None:
    op.create_table(
        "safety_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("plan", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column(
            "reviewed_with_patient_at", models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("risk_level", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("means_secured", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("safety_plans") as batch:
        batch.create_index("ix_safety_plans_case_id", ["case_id"], unique=False)
        batch.create_index(
            "ix_safety_plans_case_reviewed", ["case_id", "reviewed_with_patient_at"], unique=False
        )


def _referrals(to_objects: bool) -> None:
    """Rewrite stored referrals: strings to ``{"referral", "answers": None}``, or back."""
    cases = sa.table("cases", sa.column("id", sa.Integer()), sa.column("referrals", sa.JSON()))
    conn = op.get_bind()
    rows = conn.execute(sa.select(cases.c.id, cases.c.referrals)).all()
    for case_id, referrals in rows:
        if not referrals:
            continue
        if to_objects:
            new = [
                r if isinstance(r, dict) else {"referral": r, "answers": None} for r in referrals
            ]
        else:
            names = (r["referral"] if isinstance(r, dict) else r for r in referrals)
            new = list(dict.fromkeys(names))
        conn.execute(cases.update().where(cases.c.id == case_id).values(referrals=new))


def upgrade() -> None:
    with op.batch_alter_table("adverse_events") as batch:
        batch.add_column(
            sa.Column("onset_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("assessment_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_adverse_events_assessment_id", "assessments", ["assessment_id"], ["id"]
        )
    op.execute("UPDATE adverse_events SET onset_at = created_at")
    with op.batch_alter_table("adverse_events") as batch:
        batch.alter_column(
            "onset_at", existing_type=models.types.UTCDateTime(timezone=True), nullable=False
        )
        batch.create_index(
            "ix_adverse_events_case_kind_onset", ["case_id", "kind", "onset_at"], unique=False
        )
        batch.create_index(
            "uq_adverse_events_assessment_kind", ["assessment_id", "kind"], unique=True
        )
    _create_safety_plans()
    _referrals(to_objects=True)


def downgrade() -> None:
    _referrals(to_objects=False)
    op.drop_table("safety_plans")
    with op.batch_alter_table("adverse_events") as batch:
        batch.drop_index("uq_adverse_events_assessment_kind")
        batch.drop_index("ix_adverse_events_case_kind_onset")
        batch.drop_constraint("fk_adverse_events_assessment_id", type_="foreignkey")
        batch.drop_column("assessment_id")
        batch.drop_column("onset_at")
