"""A whole course of care through HTTP, and the benzodiazepine taper track."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.api.helpers import (
    ELIGIBLE_HISTORY,
    MOOD_DRIVEN,
    PRESCRIPTION,
    Api,
    case_url,
    complete_sessions,
    deliver,
    open_case,
    record_evaluation,
    screen,
    with_item9,
)


def unmet_codes(api: Api, case_id: int, trigger: str, role: str = "clinician") -> list[str]:
    options = api.get(role, case_url(case_id, "/transitions"))
    option = next(o for o in options if o["trigger"] == trigger)
    return [u["code"] for u in option["unmet"]]


def blocked_codes(api: Api, case_id: int, trigger: str, **body) -> list[str]:
    problem = api.fire("clinician", case_id, trigger, expect=409, **body)
    assert problem["code"] == "transition_blocked"
    return [u["code"] for u in problem["unmet"]]


def test_evaluation_to_discharge(api: Api):
    case_id = open_case(api)
    record_evaluation(api, case_id)
    assert unmet_codes(api, case_id, "approve") == ["screening.interactions"]
    assert screen(api, case_id)["result"] == "clear"

    case = api.fire("clinician", case_id, "approve")
    assert case["state"] == "delivery.awaiting_prescription"
    assert case["assigned_clinician_id"] is not None
    deliver(api, case_id)
    assert api.get("coordinator", case_url(case_id))["state"] == "integration"

    assert unmet_codes(api, case_id, "start_monitoring", "coordinator") == [
        "session.preparation",
        "session.dosing",
        "session.integration",
    ]
    complete_sessions(api, case_id)
    case = api.fire("coordinator", case_id, "start_monitoring")
    assert (case["state"], case["phase"]) == ("monitoring", "monitoring")

    api.clock.advance(days=20)  # the baseline assessments are no longer recent
    # SPEC.md v2 (3.1, 4.5): the 7 units left of the 8 shipped keep the case from discharge.
    assert case["units_on_hand"] == 7
    assert unmet_codes(api, case_id, "discharge") == ["medication.reconciled", "assessments.recent"]
    give_back = {"units": 7, "kind": "returned", "witness": "Sam Rivera"}
    api.post("coordinator", case_url(case_id, "/medication-returns"), give_back)
    assert unmet_codes(api, case_id, "discharge") == ["assessments.recent"]
    for instrument, score in (("phq9", 6), ("isi", 9)):
        body = {"instrument": instrument, "score": score, "taken_at": api.ago(hours=3)}
        api.post("coordinator", case_url(case_id, "/assessments"), with_item9(body))

    before = case["version"]
    case = api.fire("clinician", case_id, "adjust_dose", dose_mg=80, rationale="Good response.")
    assert case["state"] == "monitoring" and case["version"] > before
    case = api.fire("clinician", case_id, "discharge")
    assert (case["state"], case["phase"]) == ("discharged", "closed")

    events = api.items("coordinator", case_url(case_id, "/events"))
    moves = [(e["trigger"], e["to_state"]) for e in events if e["kind"] == "transition"]
    assert moves == [
        ("create", "evaluation"),
        ("approve", "delivery.awaiting_prescription"),
        ("prescribe", "delivery.prescribed"),
        ("ship", "delivery.shipped"),
        ("confirm_delivery", "integration"),
        ("start_monitoring", "monitoring"),
        ("adjust_dose", "monitoring"),
        ("discharge", "discharged"),
    ]
    assert events[-1]["to_state"] == case["state"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def test_benzodiazepine_taper_track(api: Api):
    case_id = open_case(api)
    record_evaluation(api, case_id)
    med = api.post("coordinator", case_url(case_id, "/medications"), {"name": "Xanax"})
    assert med["drug_class"] == "benzodiazepine"
    assert screen(api, case_id)["result"] == "caution"
    assert blocked_codes(api, case_id, "approve") == ["taper.planned"]

    taper_body = {"medication_id": med["id"], "plan": "Reduce 0.25 mg a week."}
    taper = api.post("clinician", case_url(case_id, "/tapers"), taper_body)
    api.fire("clinician", case_id, "approve")

    prescription: dict[str, Any] = dict(PRESCRIPTION)
    # Still taken: neither confirmed nor washed out.
    assert blocked_codes(api, case_id, "prescribe", **prescription) == [
        "taper.confirmed",
        "taper.washout",
    ]
    confirm = case_url(case_id, f"/tapers/{taper['id']}/confirm")
    confirmed = api.post("clinician", confirm, {"last_dose_on": api.ago()[:10]}, expect=200)
    assert confirmed["confirmed_at"] is not None
    medications = api.items("clinician", case_url(case_id, "/medications"))
    assert medications[0]["status"] == "stopped"
    # Confirming stopped the drug: the list changed, so the screening is stale.
    assert blocked_codes(api, case_id, "prescribe", **prescription) == [
        "screening.interactions",
        "taper.washout",
    ]
    screen(api, case_id)
    # Alprazolam's washout is 7 days from the day of the last dose, today (a dose before
    # the plan's date is refused): it ends on the 7th day after it, not a day sooner.
    assert blocked_codes(api, case_id, "prescribe", **prescription) == ["taper.washout"]
    api.clock.advance(days=6)
    vital = {"systolic": 126, "diastolic": 80, "taken_at": api.ago(hours=1)}
    api.post("coordinator", case_url(case_id, "/vitals"), vital)  # a week on: a new reading
    assert blocked_codes(api, case_id, "prescribe", **prescription) == ["taper.washout"]
    api.clock.advance(days=1)
    case = api.fire("clinician", case_id, "prescribe", **prescription)
    assert case["state"] == "delivery.prescribed"


def test_severe_adverse_event_holds_the_case_until_resolved(api: Api):
    case_id = open_case(api)
    body = {"kind": "dissociation", "severity": "severe", "description": "Prolonged."}
    event = api.post("coordinator", case_url(case_id, "/adverse-events"), body)
    case = api.get("coordinator", case_url(case_id))
    assert (case["state"], case["held_from"]) == ("on_hold", "evaluation")
    assert blocked_codes(api, case_id, "resume") == ["adverse_events.resolved"]

    resolve = case_url(case_id, f"/adverse-events/{event['id']}/resolve")
    resolved = api.post("clinician", resolve, {"note": "Settled."}, expect=200)
    assert resolved["resolved_at"] is not None
    case = api.fire("clinician", case_id, "resume")
    assert (case["state"], case["held_from"]) == ("evaluation", None)
    system_hold = [e for e in api.items("clinician", case_url(case_id, "/events"))][2]
    assert (system_hold["trigger"], system_hold["actor_role"]) == ("hold", "system")


def test_phq9_item9_records_suicidal_ideation_and_holds(api: Api):
    case_id = open_case(api)
    body = {"instrument": "phq9", "score": 14, "item9": 1, "taken_at": api.ago(hours=1)}
    api.post("coordinator", case_url(case_id, "/assessments"), body)
    events = api.items("clinician", case_url(case_id, "/adverse-events"))
    assert [(e["kind"], e["severity"]) for e in events] == [("suicidal_ideation", "moderate")]
    onset, taken = (
        datetime.fromisoformat(str(v)) for v in (events[0]["onset_at"], body["taken_at"])
    )
    assert onset == taken  # the time of the PHQ-9 that showed it
    assert api.get("clinician", case_url(case_id))["state"] == "on_hold"


def test_decline_keeps_referrals(api: Api):
    case_id = open_case(api)
    # The clinician judges the insomnia mood-driven: only the missing CBT-I trial refers.
    history = {**ELIGIBLE_HISTORY, **MOOD_DRIVEN, "cbti_completed": False}
    api.call("clinician", "PUT", case_url(case_id, "/history"), json=history, expect=200)
    case = api.fire("clinician", case_id, "decline", reason="No CBT-I trial yet.")
    assert (case["state"], case["phase"]) == ("ineligible", "closed")
    assert case["referrals"] == [{"referral": "cbt_i", "answers": "criteria.cbti_trial"}]
    assert api.get("coordinator", case_url(case_id))["referrals"] == case["referrals"]


def test_clearance_refused_lists_reasons(api: Api):
    case_id = open_case(api)
    body = {"systolic": 150, "diastolic": 95, "monitor_id": 999}
    refused = api.post("coordinator", case_url(case_id, "/dose-clearances"), body)
    assert refused["granted"] is False and refused["expires_at"] is None
    assert (refused["open"], refused["void"]) == (False, False)
    codes = [u["code"] for u in refused["unmet"]]
    assert codes[0] == "case.dosing_state"
    assert {"emergency_contact.recorded", "monitor.registered", "dose.blood_pressure"} <= set(codes)
    assert all(u["message"] for u in refused["unmet"])
