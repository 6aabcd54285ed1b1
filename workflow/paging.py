"""Pages of a case's records in id order: the one way every per-case list is read."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from workflow.cases import get_case


def case_page(
    session: Session, model: Any, *, case_id: int, limit: int, after_id: int | None
) -> tuple[list[Any], int | None]:
    """Up to ``limit`` of the case's ``model`` rows after ``after_id``, oldest first,
    and the id to continue after (None on the last page). NotFound for an unknown case."""
    get_case(session, case_id)
    query = select(model).where(model.case_id == case_id)
    if after_id is not None:
        query = query.where(col(model.id) > after_id)
    rows = list(session.exec(query.order_by(col(model.id)).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (int(rows[-1].id) if more and rows else None)
