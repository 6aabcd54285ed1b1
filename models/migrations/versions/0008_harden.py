"""Hardening: the audit hash chain, TRUNCATE and INSERT OR REPLACE refused, idempotency keys.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

Existing events are chained here, case by case in id order, with the triggers
that refuse updates set aside for the backfill only.
"""

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "audit_events is append-only: events are never updated or deleted"
SQLITE_APPEND_ONLY = {
    "update": f"BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    "delete": f"BEFORE DELETE ON audit_events BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
}
SQLITE_NO_REPLACE = (
    "CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events "
    "WHEN EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id) "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
)
POSTGRES_NO_TRUNCATE = f"""
CREATE FUNCTION audit_events_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_no_truncate();
"""


def _sqlite_triggers(create: bool) -> None:
    for action, body in SQLITE_APPEND_ONLY.items():
        if create:
            op.execute(f"CREATE TRIGGER audit_events_no_{action} {body}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS audit_events_no_{action}")


def _chain_existing_events() -> None:
    """Give every stored event its ``prev_hash`` and ``hash``, and every case its head."""
    from workflow.audit_chain import event_hash

    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer()),
        sa.column("case_id", sa.Integer()),
        sa.column("at", models.types.UTCDateTime()),
        sa.column("actor_id", sa.Integer()),
        sa.column("actor_role", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("trigger", sa.String()),
        sa.column("from_state", sa.String()),
        sa.column("to_state", sa.String()),
        sa.column("data", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    cases = sa.table("cases", sa.column("id", sa.Integer()), sa.column("audit_hash", sa.String()))
    conn = op.get_bind()
    heads: dict[int, str | None] = {}
    rows = conn.execute(sa.select(events).order_by(events.c.id)).mappings().all()
    for row in rows:
        event: Any = SimpleNamespace(**row)
        event.prev_hash = heads.get(row["case_id"])
        event.hash = event_hash(event)
        heads[row["case_id"]] = event.hash
        conn.execute(
            events.update()
            .where(events.c.id == row["id"])
            .values(prev_hash=event.prev_hash, hash=event.hash)
        )
    for case_id, head in heads.items():
        conn.execute(cases.update().where(cases.c.id == case_id).values(audit_hash=head))


def _create_idempotency_keys() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            "uq_idempotency_keys_user_method_path_key",
            ["user_id", "method", "path", "key"],
            unique=True,
        )
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)


def upgrade() -> None:
    _create_idempotency_keys()
    postgres = op.get_context().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    else:
        _sqlite_triggers(create=False)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("audit_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    _chain_existing_events()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column(
            "hash", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
    if postgres:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        op.execute(POSTGRES_NO_TRUNCATE)
    else:
        _sqlite_triggers(create=True)
        op.execute(SQLITE_NO_REPLACE)


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    postgres = op.get_context().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_no_truncate()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_replace")
        _sqlite_triggers(create=False)
    # In place, not batch: SQLite copies a table in batch mode, and dropping the
    # cases table that other tables refer to is refused.
    op.drop_column("audit_events", "hash")
    op.drop_column("audit_events", "prev_hash")
    op.drop_column("cases", "audit_hash")
    if not postgres:
        _sqlite_triggers(create=True)
