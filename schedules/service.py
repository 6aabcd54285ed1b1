"""Reading reminders: the queries the API serves (SPEC.md section 5 and 7)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from models.reminders import OPEN, OPEN_STATUSES, Reminder


def list_reminders(
    session: Session,
    *,
    case_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    due_before: datetime | None = None,
    limit: int = 50,
    after_id: int | None = None,
) -> tuple[list[Reminder], int | None]:
    """A page of reminders in id order, and the id to continue after (None on the last page).

    ``status`` may be ``open``: pending or sent."""
    query = select(Reminder).order_by(col(Reminder.id)).limit(limit + 1)
    if case_id is not None:
        query = query.where(Reminder.case_id == case_id)
    if status == OPEN:
        query = query.where(col(Reminder.status).in_(OPEN_STATUSES))
    elif status is not None:
        query = query.where(Reminder.status == status)
    if kind is not None:
        query = query.where(Reminder.kind == kind)
    if due_before is not None:
        query = query.where(Reminder.due_at <= due_before)
    if after_id is not None:
        query = query.where(col(Reminder.id) > after_id)
    rows = list(session.exec(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
