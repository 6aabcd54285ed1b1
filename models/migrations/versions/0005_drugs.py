"""Drug knowledge: a medication's classes, stop date and clinician class; the table version.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("medications") as batch:
        batch.add_column(
            sa.Column("drug_classes", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(sa.Column("stopped_on", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("class_reason", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True)
        )
        batch.add_column(sa.Column("class_set_by", sa.Integer(), nullable=True))
    with op.batch_alter_table("interaction_screenings") as batch:
        batch.add_column(
            sa.Column(
                "drug_table_version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True
            )
        )
    with op.batch_alter_table("tapers") as batch:
        batch.add_column(
            sa.Column("ended_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("tapers") as batch:
        batch.drop_column("ended_at")
    with op.batch_alter_table("interaction_screenings") as batch:
        batch.drop_column("drug_table_version")
    with op.batch_alter_table("medications") as batch:
        for column in ("class_set_by", "class_reason", "stopped_on", "drug_classes"):
            batch.drop_column(column)
