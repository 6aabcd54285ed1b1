"""Users: licences with expiry, deactivation, case-insensitive names, and user events.

``license_states`` becomes ``licenses`` (each without an expiry date), every
user starts active, and ``user_events`` is append-only like ``audit_events``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "user_events is append-only: events are never updated or deleted"

POSTGRES_UP = f"""
CREATE FUNCTION user_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER user_events_append_only
    BEFORE UPDATE OR DELETE ON user_events
    FOR EACH ROW EXECUTE FUNCTION user_events_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS user_events_append_only ON user_events;
DROP FUNCTION IF EXISTS user_events_append_only();
"""

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("name_key", sa.String),
    sa.column("license_states", sa.JSON),
    sa.column("licenses", sa.JSON),
)


def upgrade() -> None:
    # Columns are added and dropped in place, never by copying the table: on
    # SQLite a copy would drop ``users`` under the cases that refer to it.
    op.add_column("users", sa.Column("name_key", sa.String(100), nullable=False, server_default=""))
    op.add_column("users", sa.Column("licenses", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column(
        "users", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.name, users.c.license_states))
    for user_id, name, states in rows.all():
        licenses = [{"state": state, "expires_on": None} for state in states or []]
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(name_key=name.lower(), licenses=licenses)
        )
    op.create_index("uq_users_name_key", "users", ["name_key"], unique=True)
    op.drop_column("users", "license_states")

    op.create_table(
        "user_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_events_user_id_id", "user_events", ["user_id", "id"])
    _append_only_up()


def _append_only_up() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRES_UP)
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER user_events_no_{action.lower()} BEFORE {action} ON user_events "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRES_DOWN)
    op.drop_index("ix_user_events_user_id_id", table_name="user_events")
    op.drop_table("user_events")  # SQLite drops the table's triggers with it
    op.add_column(
        "users", sa.Column("license_states", sa.JSON(), nullable=False, server_default="[]")
    )
    connection = op.get_bind()
    for user_id, licenses in connection.execute(sa.select(users.c.id, users.c.licenses)).all():
        states = sorted({licence["state"] for licence in licenses or []})
        connection.execute(
            users.update().where(users.c.id == user_id).values(license_states=states)
        )
    op.drop_index("uq_users_name_key", table_name="users")
    for column in ("active", "licenses", "name_key"):
        op.drop_column("users", column)
