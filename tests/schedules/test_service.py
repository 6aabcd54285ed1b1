"""Reading reminders for the API: filters and cursor paging."""

from __future__ import annotations

from datetime import timedelta

from models.db import session_scope
from models.reminders import CANCELLED, PENDING
from schedules.service import list_reminders


def _ids(rows) -> list[int]:
    return [r.id for r in rows]


def test_filters_by_case_status_kind_and_due_before(clinic, reminders, now):
    first = clinic.open_case()
    second = clinic.case_in("delivery.awaiting_prescription")
    with session_scope(clinic.engine) as session:
        rows, cursor = list_reminders(session, case_id=first)
        assert [r.kind for r in rows] == ["evaluation_overdue"] and cursor is None

        rows, _ = list_reminders(session, status=CANCELLED)
        assert [(r.case_id, r.kind) for r in rows] == [(second, "evaluation_overdue")]

        rows, _ = list_reminders(session, kind="prescription_pending", status=PENDING)
        assert [r.case_id for r in rows] == [second]

        rows, _ = list_reminders(session, status=PENDING, due_before=now + timedelta(days=3))
        assert [r.kind for r in rows] == ["prescription_pending"]


def test_pages_in_id_order_with_a_cursor(clinic, reminders):
    for _ in range(5):
        clinic.open_case()
    everything = _ids(reminders.rows())
    pages, cursor = [], None
    with session_scope(clinic.engine) as session:
        while True:
            rows, cursor = list_reminders(session, limit=2, after_id=cursor)
            pages.append(_ids(rows))
            if cursor is None:
                break
    assert pages == [everything[0:2], everything[2:4], everything[4:5]]
