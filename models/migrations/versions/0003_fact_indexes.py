"""Indexes for the bounded reads of a case's facts (the newest score, the open events).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_assessments_case_instrument_taken", "assessments", ["case_id", "instrument", "taken_at"]),
    ("ix_vitals_case_taken", "vitals", ["case_id", "taken_at"]),
    ("ix_care_sessions_case_kind", "care_sessions", ["case_id", "kind", "completed_at"]),
    ("ix_adverse_events_case_resolved", "adverse_events", ["case_id", "resolved_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
