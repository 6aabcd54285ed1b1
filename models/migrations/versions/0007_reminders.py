"""Reminders wait for a person: acknowledgement, repeats, escalation; the worklist's order.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.types import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_ONLY = "status = 'pending'"
PENDING_NOT_ESCALATION = "status = 'pending' AND kind != 'escalation'"
HAS_ORIGINAL = "escalates IS NOT NULL"

# Each case's place on the worklist, from its state and its open reminders
# (workflow.worklist.refresh does the same for every later change).
BACKFILL = (
    """
    INSERT INTO work_items (case_id, rank, sort_at, state_since)
    SELECT c.id, NULL, NULL, COALESCE(
        (SELECT max(a.at) FROM audit_events a WHERE a.case_id = c.id AND a.kind = 'transition'),
        c.created_at)
    FROM cases c
    """,
    """
    UPDATE work_items SET rank = 2, sort_at = state_since
    WHERE case_id IN (SELECT id FROM cases WHERE phase != 'closed')
    """,
    # Grouped first, then joined: a correlated min() per case lets SQLite pick the
    # (status, due_at) index and scan every open reminder once per case.
    """
    UPDATE work_items SET rank = 1, sort_at = open_reminders.due_at
    FROM (SELECT case_id, min(due_at) AS due_at FROM reminders
          WHERE status IN ('pending', 'sent') GROUP BY case_id) AS open_reminders
    WHERE work_items.case_id = open_reminders.case_id
    """,
    """
    UPDATE work_items SET rank = 0, sort_at = urgent.due_at
    FROM (SELECT case_id, min(due_at) AS due_at FROM reminders
          WHERE status IN ('pending', 'sent') AND kind IN ('safety_review', 'escalation')
          GROUP BY case_id) AS urgent
    WHERE work_items.case_id = urgent.case_id
    """,
)


def upgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=10),
            type_=sqlmodel.sql.sqltypes.AutoString(length=20),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("recipient_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("deliveries", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("acknowledged_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("escalates", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_reminders_recipient_id_users", "users", ["recipient_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_reminders_acknowledged_by_users", "users", ["acknowledged_by"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_reminders_escalates_reminders", "reminders", ["escalates"], ["id"]
        )
        batch_op.drop_index("uq_reminders_pending_case_kind")
        batch_op.create_index(
            "uq_reminders_pending_case_kind",
            ["case_id", "kind"],
            unique=True,
            sqlite_where=sa.text(PENDING_NOT_ESCALATION),
            postgresql_where=sa.text(PENDING_NOT_ESCALATION),
        )
        batch_op.create_index(
            "uq_reminders_escalates",
            ["escalates"],
            unique=True,
            sqlite_where=sa.text(HAS_ORIGINAL),
            postgresql_where=sa.text(HAS_ORIGINAL),
        )
        batch_op.create_index(
            "ix_reminders_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.alter_column("deliveries", server_default=None)

    op.create_table(
        "work_items",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("sort_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("state_since", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index(
        "ix_work_items_rank_sort_at_case_id", "work_items", ["rank", "sort_at", "case_id"]
    )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_work_items_rank_sort_at_case_id", table_name="work_items")
    op.drop_table("work_items")
    op.execute("DELETE FROM reminders WHERE kind = 'escalation'")
    op.execute("UPDATE reminders SET status = 'sent' WHERE status = 'acknowledged'")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_status_next_attempt_at")
        batch_op.drop_index("uq_reminders_escalates")
        batch_op.drop_index("uq_reminders_pending_case_kind")
        batch_op.create_index(
            "uq_reminders_pending_case_kind",
            ["case_id", "kind"],
            unique=True,
            sqlite_where=sa.text(PENDING_ONLY),
            postgresql_where=sa.text(PENDING_ONLY),
        )
        batch_op.drop_constraint("fk_reminders_escalates_reminders", type_="foreignkey")
        batch_op.drop_constraint("fk_reminders_acknowledged_by_users", type_="foreignkey")
        batch_op.drop_constraint("fk_reminders_recipient_id_users", type_="foreignkey")
        for name in (
            "escalated_at",
            "escalates",
            "acknowledged_by",
            "acknowledged_at",
            "deliveries",
            "recipient_id",
        ):
            batch_op.drop_column(name)
        batch_op.alter_column(
            "status",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=20),
            type_=sqlmodel.sql.sqltypes.AutoString(length=10),
            existing_nullable=False,
        )
