"""Suicide risk over HTTP (SPEC.md 4.6): from a PHQ-9 with item 9 = 2 to a resumed case.

A PHQ-9 item 9 of 2 records suicidal ideation (severe) by the service, which holds
the case and opens a safety review due at once; a clinician resolves the event,
reviews a safety plan with the patient, and only then may the case resume.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.api.helpers import Api, assert_problem, case_in, case_url, clearance, open_case


def reminder_of(api: Api, case_id: int, kind: str) -> dict[str, Any]:
    (found,) = [r for r in api.items("admin", case_url(case_id, "/reminders")) if r["kind"] == kind]
    return found


def plan(api: Api, **fields: Any) -> dict[str, Any]:
    return {
        "plan": "Warning signs, the monitor, the crisis line; the medication is locked away.",
        "reviewed_with_patient_at": api.ago(minutes=5),
        "risk_level": "low",
        "means_secured": True,
    } | fields


def test_from_item9_of_2_through_hold_review_resolution_plan_and_resume(api: Api):
    case_id = case_in(api, "monitoring")
    taken_at = api.ago(hours=2)
    phq9 = {"instrument": "phq9", "score": 17, "item9": 2, "taken_at": taken_at}
    api.post("coordinator", case_url(case_id, "/assessments"), phq9)

    # The service records the ideation, at the time of the PHQ-9, and holds the case.
    (event,) = api.items("clinician", case_url(case_id, "/adverse-events"))
    assert (event["kind"], event["severity"], event["recorded_by_system"]) == (
        "suicidal_ideation",
        "severe",
        True,
    )
    assert datetime.fromisoformat(event["onset_at"]) == datetime.fromisoformat(taken_at)
    case = api.get("clinician", case_url(case_id))
    assert (case["state"], case["held_from"]) == ("on_hold", "monitoring")

    # A clinician is asked at once, ahead of everything else on the worklist.
    review = reminder_of(api, case_id, "safety_review")
    assert (review["status"], review["recipient_role"]) == ("pending", "clinician")
    assert datetime.fromisoformat(review["due_at"]) == api.clock.now
    (first,) = api.get("clinician", "/api/v1/worklist", params={"limit": 1})["items"]
    assert first["case"]["id"] == case_id

    # No dose, no withdrawal, no resumption while the ideation is unresolved.
    refused = clearance(api, case_id)
    assert not refused["granted"]
    withdraw = api.call(
        "coordinator", "POST", case_url(case_id, "/transitions/withdraw"), json={"reason": "x"}
    )
    body = assert_problem(withdraw, 409, "transition_blocked")
    assert [u["code"] for u in body["unmet"]] == ["adverse_events.suicide_risk_resolved"]
    options = {o["trigger"]: o for o in api.get("clinician", case_url(case_id, "/transitions"))}
    assert [u["code"] for u in options["resume"]["unmet"]] == [
        "adverse_events.resolved",
        "safety.reassessed",
    ]

    # The clinician resolves the event: the review ends, the reassessment is still owed.
    resolve = case_url(case_id, f"/adverse-events/{event['id']}/resolve")
    assert_problem(api.call("coordinator", "POST", resolve, json={"note": "x"}), 403, "forbidden")
    api.post("clinician", resolve, {"note": "Seen the same day; no plan or intent."}, expect=200)
    assert reminder_of(api, case_id, "safety_review")["status"] == "cancelled"
    blocked = api.call("clinician", "POST", case_url(case_id, "/transitions/resume"))
    assert [u["code"] for u in assert_problem(blocked, 409, "transition_blocked")["unmet"]] == [
        "safety.reassessed"
    ]

    # A plan rating the risk moderate is recorded, and keeps the case held.
    api.post("clinician", case_url(case_id, "/safety-plans"), plan(api, risk_level="moderate"))
    blocked = api.call("clinician", "POST", case_url(case_id, "/transitions/resume"))
    assert_problem(blocked, 409, "transition_blocked")

    # Reassessed as low risk with the means secured: the case resumes where it was.
    api.clock.advance(hours=1)
    recorded = api.post("clinician", case_url(case_id, "/safety-plans"), plan(api))
    assert recorded["risk_level"] == "low" and recorded["recorded_by"] is not None
    assert [p["risk_level"] for p in api.items("admin", case_url(case_id, "/safety-plans"))] == [
        "moderate",
        "low",
    ]
    case = api.fire("clinician", case_id, "resume")
    assert (case["state"], case["held_from"]) == ("monitoring", None)


def test_a_safety_plan_refuses_bad_input_and_a_coordinator(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/safety-plans")
    before = api.snapshot(case_id)
    for bad in (
        plan(api, risk_level="none"),
        plan(api, means_secured="yes"),
        plan(api, reviewed_with_patient_at=api.ago(minutes=-10)),
        {k: v for k, v in plan(api).items() if k != "plan"},
    ):
        assert_problem(api.call("clinician", "POST", path, json=bad), 422, "validation_error")
    assert_problem(api.call("coordinator", "POST", path, json=plan(api)), 403, "forbidden")
    assert api.snapshot(case_id) == before


def test_an_unknown_adverse_event_kind_is_422_and_onset_at_is_checked(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/adverse-events")
    before = api.snapshot(case_id)
    event = {"kind": "nausea", "severity": "mild", "description": "After the dose."}
    for bad in (
        event | {"kind": "sadness"},
        event | {"onset_at": api.ago(minutes=-5)},
        event | {"onset_at": "2026-11-01T10:00:00"},
    ):
        response = api.call("coordinator", "POST", path, json=bad)
        assert_problem(response, 422, "validation_error")
    assert api.snapshot(case_id) == before
    recorded = api.post("coordinator", path, event | {"kind": "hypnotic_restarted"})
    assert datetime.fromisoformat(recorded["onset_at"]) == api.clock.now


def test_a_closed_case_takes_adverse_events_only(api: Api):
    case_id = open_case(api)
    api.fire("coordinator", case_id, "withdraw", reason="Moved away.")
    before = api.snapshot(case_id)
    writes = [
        ("/assessments", {"instrument": "isi", "score": 9, "taken_at": api.ago(hours=1)}),
        ("/vitals", {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}),
        ("/medications", {"name": "sertraline"}),
        ("/safety-plans", plan(api)),
    ]
    for suffix, body in writes:
        response = api.call("clinician", "POST", case_url(case_id, suffix), json=body)
        assert_problem(response, 409, "conflict")
    assert api.snapshot(case_id) == before

    event = {"kind": "suicidal_ideation", "severity": "moderate", "description": "Called in."}
    recorded = api.post("coordinator", case_url(case_id, "/adverse-events"), event)
    assert reminder_of(api, case_id, "safety_review")["status"] == "pending"
    assert api.get("admin", case_url(case_id))["state"] == "withdrawn"
    resolve = case_url(case_id, f"/adverse-events/{recorded['id']}/resolve")
    api.post("clinician", resolve, {"note": "Crisis team reached the patient."}, expect=200)
    assert reminder_of(api, case_id, "safety_review")["status"] == "cancelled"
