"""The worklist (SPEC.md section 9): who needs what, most urgent first, page by page."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.deps import get_now
from tests.api.helpers import Api, approve, assert_problem, case_url, open_case

DAY = timedelta(days=1)
WORKLIST = "/api/v1/worklist"


def acknowledge_all(api: Api, case_id: int) -> None:
    for reminder in api.items("admin", case_url(case_id, "/reminders")):
        if reminder["status"] in ("pending", "sent"):
            api.post("clinician", f"/api/v1/reminders/{reminder['id']}/acknowledge", expect=200)


def severe_event(api: Api, case_id: int) -> None:
    event = {"kind": "dizziness", "severity": "severe", "description": "Fell."}
    api.post("coordinator", case_url(case_id, "/adverse-events"), event)


def everything(api: Api, caller: str = "clinician", **params) -> list[dict]:
    """Every worklist item, page by page, as ``caller`` sees it."""
    items, cursor = [], None
    while True:
        page = api.get(caller, WORKLIST, params=params | ({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def build(api: Api) -> dict[str, int]:
    """Cases in each rank: stuck (no reminder), overdue, due, and one needing a safety review."""
    cases = {"stuck": open_case(api)}
    acknowledge_all(api, cases["stuck"])
    cases["most_overdue"] = open_case(api)
    api.clock.advance(days=1)
    cases["overdue"] = open_case(api)
    api.clock.advance(days=7, hours=1)  # both evaluation reminders are now overdue
    cases["due"] = open_case(api)
    cases["safety"] = open_case(api)
    severe_event(api, cases["safety"])
    return cases


def test_the_worklist_puts_safety_first_then_overdue_then_due_then_stuck(api: Api):
    cases = build(api)
    items = api.get("clinician", WORKLIST)["items"]
    order = [cases[k] for k in ("safety", "most_overdue", "overdue", "due", "stuck")]
    assert [item["case"]["id"] for item in items] == order

    by_id = {item["case"]["id"]: item for item in items}
    (late,) = by_id[cases["most_overdue"]]["reminders"]
    assert late["kind"] == "evaluation_overdue"
    assert late["overdue_by_seconds"] == int(timedelta(days=1, hours=1).total_seconds())
    assert [r["overdue_by_seconds"] for r in by_id[cases["due"]]["reminders"]] == [0]
    assert by_id[cases["stuck"]]["reminders"] == []
    assert {"safety_review", "hold_review"} <= {
        r["kind"] for r in by_id[cases["safety"]]["reminders"]
    }
    assert by_id[cases["safety"]]["case"]["state"] == "on_hold"


def test_blocked_is_what_transitions_says(api: Api):
    cases = build(api)
    stuck = next(
        i for i in api.get("clinician", WORKLIST)["items"] if i["case"]["id"] == cases["stuck"]
    )
    transitions = api.get("clinician", case_url(cases["stuck"], "/transitions"))
    assert [(b["trigger"], b["unmet"]) for b in stuck["blocked"]] == [
        (t["trigger"], t["unmet"]) for t in transitions
    ]
    approve_item = next(b for b in stuck["blocked"] if b["trigger"] == "approve")
    assert approve_item["allowed"] is False
    assert "history.recorded" in {u["code"] for u in approve_item["unmet"]}


def test_in_state_since_is_the_last_transition(api: Api):
    case_id = open_case(api)
    created = api.items("admin", case_url(case_id, "/events"))[-1]["at"]
    api.clock.advance(days=2)
    severe_event(api, case_id)
    events = api.items("admin", case_url(case_id, "/events"))
    hold = [e for e in events if e["trigger"] == "hold"][-1]
    (item,) = [i for i in everything(api) if i["case"]["id"] == case_id]
    assert item["in_state_since"] == hold["at"] != created


def test_pages_follow_one_another_without_gaps_or_repeats(api: Api):
    cases = build(api)
    whole = [
        i["case"]["id"] for i in api.get("clinician", WORKLIST, params={"limit": 200})["items"]
    ]
    paged = [i["case"]["id"] for i in everything(api, limit=2)]
    assert paged == whole and len(whole) == len(cases)
    page = api.get("clinician", WORKLIST, params={"limit": 2})
    assert len(page["items"]) == 2 and page["next_cursor"]
    for bad in ("nonsense", "Y2FzZXM6MQ"):  # garbage, and another list's cursor
        problem = api.call("clinician", "GET", WORKLIST, params={"cursor": bad})
        assert_problem(problem, 422, "validation_error")


def test_a_closed_case_leaves_the_worklist_unless_a_reminder_is_still_open(api: Api):
    quiet, reviewed = open_case(api), open_case(api)
    severe_event(api, reviewed)
    for case_id in (quiet, reviewed):
        api.fire("coordinator", case_id, "withdraw", reason="Moved away.")
    ids = [i["case"]["id"] for i in everything(api)]
    assert quiet not in ids
    assert reviewed in ids  # its safety review outlives the closing


def test_filters_by_kind_role_and_assignee(api: Api, engine):
    cases = build(api)
    mine = open_case(api)
    approve(api, mine)  # the approving clinician is assigned
    safety = everything(api, kind="safety_review")
    assert [i["case"]["id"] for i in safety] == [cases["safety"]]
    clinical = {i["case"]["id"] for i in everything(api, role="clinician")}
    assert clinical == {cases["safety"], cases["stuck"], mine}
    assigned = everything(api, assignee="me")
    assert [i["case"]["id"] for i in assigned] == [mine]
    assert everything(api, "coordinator", assignee="me") == []
    bad = api.call("clinician", "GET", WORKLIST, params={"assignee": "someone"})
    assert_problem(bad, 422, "validation_error")


def test_acknowledging_moves_a_case_down_the_worklist(api: Api):
    cases = build(api)
    acknowledge_all(api, cases["most_overdue"])
    ids = [i["case"]["id"] for i in api.get("clinician", WORKLIST)["items"]]
    assert ids.index(cases["most_overdue"]) > ids.index(cases["due"])


def test_moving_the_clock_does_not_reorder_but_updates_overdue_seconds(api: Api, app):
    cases = build(api)
    before = api.get("clinician", WORKLIST)["items"]
    api.clock.advance(hours=2)
    after = api.get("clinician", WORKLIST)["items"]
    assert [i["case"]["id"] for i in before] == [i["case"]["id"] for i in after]
    first_late = lambda items: next(  # noqa: E731
        i for i in items if i["case"]["id"] == cases["most_overdue"]
    )["reminders"][0]["overdue_by_seconds"]
    assert first_late(after) - first_late(before) == 7200
    assert app.dependency_overrides[get_now]() == api.clock.now
    assert isinstance(datetime.fromisoformat(after[0]["in_state_since"]), datetime)
