"""The dosing cycle over HTTP, with the clock under the test's control (SPEC.md 3.3, 4.1, 4.4,
4.5): contacts and monitors, the clearance, the dose with its real 2-hour observation,
deviations, voiding, cancellation, and the prescription's limits."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta

from api.logs import JsonFormatter
from tests.api.helpers import (
    Api,
    approve,
    assert_problem,
    case_in,
    case_url,
    clearance,
    deliver,
    dose_record,
    monitor_id,
    open_case,
)


def ready(api: Api) -> int:
    """A case in integration with a contact, a monitor and a preparation session."""
    case_id = case_in(api, "integration")
    body = {"kind": "preparation", "completed_at": api.ago(minutes=10)}
    api.post("coordinator", case_url(case_id, "/sessions"), body)
    return case_id


def clearances(api: Api, case_id: int) -> list[dict]:
    return api.items("coordinator", case_url(case_id, "/dose-clearances"))


def test_a_dose_with_the_real_two_hour_observation(api: Api):
    case_id = ready(api)
    cleared = clearance(api, case_id)
    assert (cleared["granted"], cleared["open"], cleared["void"], cleared["unmet"]) == (
        True,
        True,
        False,
        [],
    )
    start = datetime.fromisoformat(cleared["created_at"])
    assert datetime.fromisoformat(cleared["expires_at"]) == start + timedelta(hours=2)

    # The dose at +15 minutes, the post-dose reading at +45, and 2 hours 15 of observation.
    api.clock.advance(minutes=15)
    dosed_at = api.clock.now
    api.clock.advance(minutes=30)
    post_taken_at = api.clock.now
    api.clock.advance(hours=1, minutes=45)
    body = {
        "kind": "dosing",
        "clearance_id": cleared["id"],
        "monitor_id": cleared["monitor_id"],
        "dosed_at": dosed_at.isoformat(),
        "dose_mg": 100,
        "units_taken": 1,
        "post_systolic": 126,
        "post_diastolic": 82,
        "post_taken_at": post_taken_at.isoformat(),
        "completed_at": api.ago(),
    }
    dose = api.post("coordinator", case_url(case_id, "/sessions"), body)

    assert dose["deviations"] == []
    assert api.clock.now - dosed_at == timedelta(hours=2, minutes=15)
    (used,) = clearances(api, case_id)
    assert (used["open"], used["void"]) == (False, False)
    assert api.items("clinician", case_url(case_id, "/adverse-events")) == []
    # The next dose may be cleared only 72 hours after this one.
    refused = clearance(api, case_id)
    assert [u["code"] for u in refused["unmet"]] == ["dose.interval"]
    api.clock.now = dosed_at + timedelta(hours=72, minutes=1)
    assert clearance(api, case_id)["granted"]


def test_a_dose_taken_outside_the_rules_is_recorded_for_review(api: Api):
    case_id = ready(api)
    cleared = clearance(api, case_id)
    body = dose_record(api, case_id, cleared, completed_at=api.ago(minutes=-60))
    body["post_systolic"], body["post_diastolic"], body["post_taken_at"] = None, None, None
    api.clock.now = datetime.fromisoformat(body["completed_at"])

    dose = api.post("coordinator", case_url(case_id, "/sessions"), body)

    assert dose["deviations"] == ["post_dose.missing", "observation.short"]
    (event,) = api.items("clinician", case_url(case_id, "/adverse-events"))
    assert (event["kind"], event["severity"], event["recorded_by_system"]) == (
        "other",
        "moderate",
        True,
    )
    assert event["description"].startswith("dosing deviation: post_dose.missing")


def test_a_malformed_dose_record_is_a_422_and_stores_nothing(api: Api):
    case_id = ready(api)
    cleared = clearance(api, case_id)
    other = case_in(api, "integration")
    before = api.snapshot(case_id)
    sessions = case_url(case_id, "/sessions")
    for overrides, field in (
        ({"dose_mg": None}, "dose_mg"),
        ({"units_taken": 0}, "units_taken"),
        ({"dosed_at": "2026-11-02T15:15:00"}, "dosed_at"),
        ({"monitor_id": monitor_id(api, other)}, "monitor_id"),
    ):
        record = dose_record(api, case_id, cleared, **overrides)
        body = {k: v for k, v in record.items() if v is not None}
        response = api.call("coordinator", "POST", sessions, json=body)
        errors = assert_problem(response, 422, "validation_error")["errors"]
        assert ["body", field] in [e["loc"] for e in errors], (field, errors)
    assert api.snapshot(case_id) == before


def test_an_adverse_event_voids_the_open_clearance_for_good(api: Api):
    case_id = ready(api)
    cleared = clearance(api, case_id)
    api.clock.advance(minutes=5)
    event = {"kind": "nausea", "severity": "mild", "description": "Queasy before the dose."}
    recorded = api.post("coordinator", case_url(case_id, "/adverse-events"), event)
    resolve = case_url(case_id, f"/adverse-events/{recorded['id']}/resolve")
    api.post("clinician", resolve, {"note": "Settled."}, expect=200)

    (voided,) = clearances(api, case_id)
    assert (voided["open"], voided["void"]) == (False, True)
    assert f"#{recorded['id']}" in voided["void_reason"]
    body = dose_record(api, case_id, cleared, dosed_at=api.ago(minutes=-1))
    api.clock.now = datetime.fromisoformat(body["completed_at"])
    dose = api.post("coordinator", case_url(case_id, "/sessions"), body)
    assert dose["deviations"] == ["clearance.void"]
    trail = api.items("clinician", case_url(case_id, "/events"))
    voids = [e for e in trail if e["data"].get("fact") == "dose_clearance_void"]
    assert [(e["actor_role"], e["data"]["id"]) for e in voids] == [("system", cleared["id"])]


def test_an_unused_clearance_is_cancelled(api: Api):
    case_id = ready(api)
    cleared = clearance(api, case_id)
    path = case_url(case_id, f"/dose-clearances/{cleared['id']}/cancel")

    cancelled = api.post("coordinator", path, {"reason": "Felt unwell."}, expect=200)
    again = api.call("coordinator", "POST", path, json={"reason": "Twice."})

    assert (cancelled["open"], cancelled["cancel_reason"]) == (False, "Felt unwell.")
    assert_problem(again, 409, "conflict")
    assert clearance(api, case_id)["granted"]


def test_monitors_and_contacts_are_recorded_read_and_deactivated(api: Api):
    case_id = open_case(api)
    contact = {"name": "Sam Rivera", "relationship": "spouse", "phone": "+1 (555) 010-0100"}
    stored = api.post("coordinator", case_url(case_id, "/emergency-contacts"), contact)
    assert {k: stored[k] for k in contact} == contact
    monitor = {
        "name": "Alex Rivera",
        "relationship": "sibling",
        "phone": "555-0101",
        "adult_attested": True,
        "trained_on": api.ago(days=1)[:10],
    }
    registered = api.post("coordinator", case_url(case_id, "/monitors"), monitor)
    path = case_url(case_id, f"/monitors/{registered['id']}")
    changed = api.call("coordinator", "PATCH", path, json={"active": False}, expect=200).json()

    assert (registered["active"], changed["active"]) == (True, False)
    assert api.items("admin", case_url(case_id, "/monitors")) == [changed]
    assert api.items("admin", case_url(case_id, "/emergency-contacts")) == [stored]
    for bad in ({**monitor, "adult_attested": False}, {**monitor, "trained_on": "2099-01-01"}):
        response = api.call("coordinator", "POST", case_url(case_id, "/monitors"), json=bad)
        assert_problem(response, 422, "validation_error")


def test_names_and_phones_are_never_logged(api: Api):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        case_id = open_case(api)
        person = {"name": "Zephyrine Quill", "relationship": "aunt", "phone": "555-9876"}
        api.post("coordinator", case_url(case_id, "/emergency-contacts"), person)
        monitor = {**person, "adult_attested": True, "trained_on": api.ago(days=1)[:10]}
        api.post("coordinator", case_url(case_id, "/monitors"), monitor)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = stream.getvalue()
    assert "carepath.request" in text
    assert "Zephyrine" not in text and "555-9876" not in text


def test_the_case_shows_its_prescription_and_its_limits(api: Api):
    case_id = open_case(api)
    approve(api, case_id)
    too_much = {"dose_mg": 250, "route": "sublingual", "formulation": "troche", "units_per_dose": 1}
    problem = api.fire("clinician", case_id, "prescribe", expect=422, **too_much)
    assert "max_initial_dose_mg" in problem["detail"]
    iv = api.fire("clinician", case_id, "prescribe", expect=422, **{**too_much, "route": "IV push"})
    assert ["body", "route"] in [e["loc"] for e in iv["errors"]]
    deliver(api, case_id)

    case = api.get("coordinator", case_url(case_id))
    assert case["prescription"]["dose_mg"] == 100
    assert case["prescription"]["route"] == "sublingual"
    assert case["prescription"]["units_per_dose"] == 1
    step = api.fire("clinician", case_id, "adjust_dose", expect=422, dose_mg=151, rationale="More.")
    assert "max_dose_step_percent" in step["detail"]
    lowered = api.fire("clinician", case_id, "adjust_dose", dose_mg=75, rationale="Dizzy.")
    assert lowered["prescription"]["dose_mg"] == 75
