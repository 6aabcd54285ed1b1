"""The controlled-substance record: dispenses, medication counts, returns (SPEC.md 4.5).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Cases shipped before this revision have no dispense on record: their units
on hand start at 0, and a clinician records a refill (``POST dispenses``) to
bring their ketamine under the record before the next dose clearance.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, models.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dispenses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", _text(10), nullable=False),
        sa.Column("quantity_units", sa.Integer(), nullable=False),
        sa.Column("lot", _text(100), nullable=False),
        sa.Column("carrier", _text(100), nullable=True),
        sa.Column("tracking_number", _text(100), nullable=True),
        sa.Column("dispensed_by", sa.Integer(), nullable=True),
        _at("received_at", nullable=True),
        sa.Column("received_by", sa.Integer(), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dispenses_case_id", "dispenses", ["case_id"])
    op.create_index("ix_dispenses_case_received", "dispenses", ["case_id", "received_at"])
    op.create_table(
        "medication_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("units_counted", sa.Integer(), nullable=False),
        _at("counted_at"),
        sa.Column("expected_units", sa.Integer(), nullable=False),
        sa.Column("shortfall", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_medication_counts_case_id", "medication_counts", ["case_id"])
    op.create_table(
        "medication_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("kind", _text(10), nullable=False),
        sa.Column("witness", _text(200), nullable=True),
        sa.Column("count_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["count_id"], ["medication_counts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_medication_returns_case_id", "medication_returns", ["case_id"])


def downgrade() -> None:
    op.drop_table("medication_returns")
    op.drop_table("medication_counts")
    op.drop_table("dispenses")
