"""Reminder endpoints: a case's reminders, and every reminder filtered and paged."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from models.db import session_scope
from models.reminders import Reminder
from tests.api.helpers import Api, case_url, open_case


def add_reminders(engine: Engine, case_id: int, now: datetime, specs) -> list[int]:
    """Store reminders (kind, status, due in hours) directly, as the policies would."""
    with session_scope(engine) as session:
        rows = [
            Reminder(
                case_id=case_id,
                kind=kind,
                status=status,
                due_at=now + timedelta(hours=hours),
                recipient_role="coordinator",
            )
            for kind, status, hours in specs
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows if r.id is not None]


def test_creating_a_case_schedules_its_evaluation_reminder(api: Api):
    case_id = open_case(api)
    reminders = api.items("coordinator", case_url(case_id, "/reminders"))
    overdue = [r for r in reminders if r["kind"] == "evaluation_overdue"]
    assert len(overdue) == 1 and overdue[0]["status"] == "pending"
    due = datetime.fromisoformat(overdue[0]["due_at"])
    assert due == api.clock.now + timedelta(days=7)
    assert set(overdue[0]) >= {"id", "case_id", "recipient_role", "attempts", "sent_at"}


def test_reminders_filter_by_status_kind_and_due_time(api: Api, engine):
    case_id = open_case(api)
    mine = add_reminders(
        engine,
        case_id,
        api.clock.now,
        [
            ("hold_review", "sent", 1),
            ("safety_review", "pending", 0),
            ("hold_review", "failed", 48),
        ],
    )
    listed = api.get("clinician", "/api/v1/reminders", params={"kind": "hold_review"})
    assert [r["id"] for r in listed["items"]] == [mine[0], mine[2]]
    sent = api.get("clinician", "/api/v1/reminders", params={"status": "sent"})
    assert [r["id"] for r in sent["items"]] == [mine[0]]
    soon = (api.clock.now + timedelta(hours=2)).isoformat()
    due = api.get(
        "clinician", "/api/v1/reminders", params={"due_before": soon, "kind": "hold_review"}
    )
    assert [r["id"] for r in due["items"]] == [mine[0]]
    by_case = api.items("clinician", case_url(case_id, "/reminders"))
    assert set(mine) <= {r["id"] for r in by_case}
    assert api.get("clinician", case_url(open_case(api), "/reminders")) != by_case


def test_reminders_page_with_a_cursor(api: Api, engine):
    case_id = open_case(api)
    add_reminders(engine, case_id, api.clock.now, [("hold_review", "sent", h) for h in range(5)])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "status": "sent"} | ({"cursor": cursor} if cursor else {})
        page = api.get("admin", "/api/v1/reminders", params=params)
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen)
    open_case(api)
    cases_cursor = api.get("admin", "/api/v1/cases", params={"limit": 1})["next_cursor"]
    response = api.call("admin", "GET", "/api/v1/reminders", params={"cursor": cases_cursor})
    assert response.status_code == 422  # a cursor belongs to its own list
