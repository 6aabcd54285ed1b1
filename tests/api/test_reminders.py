"""Reminder endpoints: a case's reminders, and every reminder filtered and paged."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from models.db import session_scope
from models.reminders import Reminder
from models.settings import Settings, settings
from models.tables import User
from schedules.dispatcher import Dispatcher
from tests.api.helpers import Api, approve, assert_problem, case_url, open_case
from tests.conftest import add_user
from tests.schedules.conftest import Recorder


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


# -- acknowledgement, repeats and escalation (SPEC.md section 7) -------------------

DAY = timedelta(days=1)


def user_id(engine: Engine, name: str) -> int:
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.name == name)).one()
        assert user.id is not None
        return user.id


def dispatch(engine: Engine, at: datetime, recorder: Recorder, rules: Settings | None = None):
    """One dispatcher pass with the clock at ``at``."""
    rules = rules or Settings(webhook_url=None, webhook_secret=None)
    return Dispatcher(engine, notifiers=[recorder], clock=lambda: at, rules=rules).run_pass()


def only(api: Api, case_id: int, kind: str) -> dict:
    (reminder,) = [
        r for r in api.items("admin", case_url(case_id, "/reminders")) if r["kind"] == kind
    ]
    return reminder


def hold_for_safety(api: Api, case_id: int) -> dict:
    """A severe adverse event: the case goes on hold and a safety review opens."""
    event = {"kind": "dizziness", "severity": "severe", "description": "Fell."}
    return api.post("coordinator", case_url(case_id, "/adverse-events"), event)


def test_the_recipient_role_or_any_clinician_acknowledges(api: Api, engine):
    case_id = open_case(api)
    reminder = only(api, case_id, "evaluation_overdue")
    path = f"/api/v1/reminders/{reminder['id']}/acknowledge"
    assert_problem(api.call("admin", "POST", path), 403, "forbidden")
    done = api.post("coordinator", path, expect=200)
    assert done["status"] == "acknowledged"
    assert done["acknowledged_by"] == user_id(engine, "cora")
    assert datetime.fromisoformat(done["acknowledged_at"]) == api.clock.now
    assert_problem(api.call("clinician", "POST", path), 409, "conflict")
    assert_problem(
        api.call("clinician", "POST", "/api/v1/reminders/999999/acknowledge"), 404, "not_found"
    )

    other = only(api, open_case(api), "evaluation_overdue")  # a clinician may acknowledge any
    api.post("clinician", f"/api/v1/reminders/{other['id']}/acknowledge", expect=200)


def test_a_coordinator_cannot_acknowledge_a_clinicians_safety_review(api: Api):
    case_id = open_case(api)
    hold_for_safety(api, case_id)
    review = only(api, case_id, "safety_review")
    assert (review["recipient_role"], review["status"]) == ("clinician", "pending")
    path = f"/api/v1/reminders/{review['id']}/acknowledge"
    before = api.snapshot(case_id)
    assert_problem(api.call("coordinator", "POST", path), 403, "forbidden")
    assert api.snapshot(case_id) == before  # a refusal changes nothing
    assert api.post("clinician", path, expect=200)["status"] == "acknowledged"
    assert api.snapshot(case_id)[1] == before[1] + 1  # the acknowledgement is audited


def test_an_overdue_sent_reminder_stays_in_the_open_view(api: Api, engine):
    case_id = open_case(api)
    reminder = only(api, case_id, "evaluation_overdue")
    dispatch(engine, api.clock.now + 8 * DAY, Recorder())
    pending = api.get("admin", "/api/v1/reminders", params={"status": "pending"})["items"]
    opened = api.get("admin", "/api/v1/reminders", params={"status": "open"})["items"]
    assert reminder["id"] not in [r["id"] for r in pending]
    assert [r["status"] for r in opened if r["id"] == reminder["id"]] == ["sent"]


def test_an_unacknowledged_reminder_repeats_then_escalates_once_to_the_other_clinicians(
    api: Api, engine
):
    owner = user_id(engine, "clio")
    other = add_user(engine, "cleo", "clinician", ("CA",)).id
    case_id = open_case(api)
    approve(api, case_id)  # clio approves: the case is hers
    original = only(api, case_id, "prescription_pending")
    assert original["recipient_id"] == owner
    due = datetime.fromisoformat(original["due_at"])
    recorder = Recorder()

    assert dispatch(engine, due - timedelta(seconds=1), recorder).sent == 0
    assert dispatch(engine, due, recorder).sent == 1
    assert dispatch(engine, due + 23 * timedelta(hours=1), recorder).sent == 0
    assert dispatch(engine, due + DAY, recorder).sent == 1  # repeat_after: 1 day
    assert [d.repeat for d in recorder.deliveries] == [0, 1]
    assert recorder.deliveries[0].recipient_ids == (owner,)

    # escalate_after for prescription_pending: 2 days past due.
    assert dispatch(engine, due + 2 * DAY - timedelta(seconds=1), recorder).escalated == 0
    result = dispatch(engine, due + 2 * DAY, recorder)
    assert result.escalated == 1
    assert dispatch(engine, due + 2 * DAY, recorder).escalated == 0  # one per original
    escalation = only(api, case_id, "escalation")
    assert (escalation["escalates"], escalation["recipient_role"]) == (original["id"], "clinician")
    assert escalation["recipient_id"] is None
    delivered = [d for d in recorder.deliveries if d.kind == "escalation"]
    assert [d.recipient_ids for d in delivered] == [(other,)]  # everyone but the recipient
    assert only(api, case_id, "prescription_pending")["status"] == "sent"  # stays open

    # Acknowledging the original stops its repeats and ends its escalation.
    api.post("clinician", f"/api/v1/reminders/{original['id']}/acknowledge", expect=200)
    assert only(api, case_id, "escalation")["status"] == "cancelled"
    count = len(recorder.deliveries)
    dispatch(engine, due + 10 * DAY, recorder)
    assert len(recorder.deliveries) == count


def test_the_time_scale_runs_a_week_of_reminders_in_a_minute(api: Api, engine, monkeypatch):
    scale = 1 / (7 * 24 * 60)  # a week is a minute
    monkeypatch.setattr(settings, "reminder_time_scale", scale)
    rules = Settings(webhook_url=None, webhook_secret=None, reminder_time_scale=scale)
    start = api.clock.now
    case_id = open_case(api)
    reminder = only(api, case_id, "evaluation_overdue")
    assert datetime.fromisoformat(reminder["due_at"]) == start + timedelta(minutes=1)
    recorder = Recorder()
    minute = timedelta(minutes=1)
    dispatch(engine, start + minute, recorder, rules)
    dispatch(engine, start + minute + DAY * scale, recorder, rules)  # 1 day: ~8.6 s
    dispatch(engine, start + minute + 3 * DAY * scale, recorder, rules)  # escalates
    kinds = [(d.kind, d.repeat) for d in recorder.deliveries]
    assert kinds[:2] == [("evaluation_overdue", 0), ("evaluation_overdue", 1)]
    assert ("escalation", 0) in kinds


def test_safety_review_outlives_hold_and_close_and_ends_when_its_events_are_resolved(api: Api):
    case_id = open_case(api)
    event = hold_for_safety(api, case_id)
    assert only(api, case_id, "evaluation_overdue")["status"] == "cancelled"  # left its state
    assert only(api, case_id, "hold_review")["status"] == "pending"
    api.fire("coordinator", case_id, "withdraw", reason="Moved away.")
    assert only(api, case_id, "hold_review")["status"] == "cancelled"
    assert only(api, case_id, "safety_review")["status"] == "pending"  # a closed case keeps it
    resolve = case_url(case_id, f"/adverse-events/{event['id']}/resolve")
    api.post("clinician", resolve, {"note": "Reviewed by phone."}, expect=200)
    assert only(api, case_id, "safety_review")["status"] == "cancelled"


def test_unknown_query_parameters_are_refused_on_every_endpoint(api: Api):
    case_id = open_case(api)
    for path in (
        "/api/v1/cases",
        "/api/v1/reminders",
        "/api/v1/worklist",
        case_url(case_id),
        case_url(case_id, "/events"),
        "/health",
    ):
        problem = assert_problem(
            api.call("clinician", "GET", path, params={"patient_reff": "PT-1"}),
            422,
            "validation_error",
        )
        assert problem["errors"][0]["loc"] == ["query", "patient_reff"], path
    # Declared ones still work.
    api.get("clinician", "/api/v1/cases", params={"phase": "evaluation", "limit": 5})
