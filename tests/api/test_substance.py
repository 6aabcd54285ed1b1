"""The controlled-substance record over HTTP (SPEC.md 4.5, 3.1 `medication.reconciled`, 3.3
`units.on_hand`, 2 `withdraw`): dispenses and their receipts, doses, counts, returns,
disposals and losses, and the units on hand they add up to.

`units_on_hand` is checked at every step against the records themselves (received
dispenses - units taken - returns, disposals and losses), on the case, in the case list
and on transition responses. Every refused request changes nothing: the case's ETag,
version, audit trail and state, and every list of the record, are compared before and after.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.api.helpers import (
    PRESCRIPTION,
    SHIPMENT,
    Api,
    approve,
    assert_problem,
    case_in,
    case_url,
    clearance,
    complete_sessions,
    dose_record,
    open_case,
    people,
)

WITNESS = "Sam Rivera"
REFILL = {"quantity_units": 8, "lot": "LOT-2026-B2", "carrier": "UPS", "tracking_number": "1Z1"}
RECORDS = ("/dispenses", "/medication-counts", "/medication-returns", "/sessions")


def returned(units: int, kind: str = "returned", witness: str | None = WITNESS) -> dict:
    body: dict[str, Any] = {"units": units, "kind": kind}
    return body | ({"witness": witness} if witness is not None else {})


def counted(api: Api, units: int, **ago: float) -> dict[str, Any]:
    return {"units_counted": units, "counted_at": api.ago(**(ago or {"minutes": 5}))}


def listed(api: Api, case_id: int, suffix: str) -> list[dict[str, Any]]:
    return api.items("admin", case_url(case_id, suffix))


def on_hand(api: Api, case_id: int) -> int:
    """The case's units on hand: the same on the case, in the case list and by the records."""
    case = api.get("coordinator", case_url(case_id))
    params = {"patient_ref": case["patient_ref"]}
    (in_list,) = [c for c in api.items("clinician", "/api/v1/cases", params=params)]
    received = sum(
        d["quantity_units"] for d in listed(api, case_id, "/dispenses") if d["received_at"]
    )
    taken = sum(
        s["units_taken"] for s in listed(api, case_id, "/sessions") if s["kind"] == "dosing"
    )
    left = sum(r["units"] for r in listed(api, case_id, "/medication-returns"))
    assert case["units_on_hand"] == in_list["units_on_hand"] == received - taken - left
    return case["units_on_hand"]


def unchanged(api: Api, case_id: int) -> tuple[Any, ...]:
    """What a refused request must not change: the case's ETag, version, audit trail and state,
    and the lists of the controlled-substance record and of the sessions."""
    etag = api.call("admin", "GET", case_url(case_id), expect=200).headers["etag"]
    lists = tuple(tuple(map(str, listed(api, case_id, suffix))) for suffix in RECORDS)
    return (etag, api.snapshot(case_id), *lists)


def post(api: Api, role: str, case_id: int, suffix: str, body: Any) -> httpx.Response:
    return api.call(role, "POST", case_url(case_id, suffix), json=body)


def fields_named(response: httpx.Response) -> list[str]:
    """The body fields a 422 names."""
    body = assert_problem(response, 422, "validation_error")
    return [e["loc"][-1] for e in body["errors"]]


def unmet_of(response: httpx.Response) -> list[dict[str, str]]:
    return assert_problem(response, 409, "transition_blocked")["unmet"]


def user_id(api: Api, role: str) -> int:
    return api.get(role, "/api/v1/users/me")["id"]


def refillable(api: Api) -> int:
    """A case in integration with 3 of its 8 units left: units_per_dose (1) +
    refill_grace_units (2), so a refill may be dispensed."""
    case_id = case_in(api, "integration")
    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(5))
    assert on_hand(api, case_id) == 3
    return case_id


def refill_received(api: Api, case_id: int, quantity_units: int = 8) -> dict[str, Any]:
    """A refill dispensed by the clinician and received by the patient; the dispense."""
    dispense = api.post(
        "clinician", case_url(case_id, "/dispenses"), REFILL | {"quantity_units": quantity_units}
    )
    path = case_url(case_id, f"/dispenses/{dispense['id']}/receipt")
    return api.post("coordinator", path, {"received_at": api.ago()}, expect=200)


# -- a course of care, unit by unit --------------------------------------------------------


def test_from_ship_to_discharge_with_a_refill_a_short_count_and_a_disposal(api: Api):
    case_id = open_case(api)
    approve(api, case_id)
    api.fire("clinician", case_id, "prescribe", **PRESCRIPTION)

    # ship's body is the first dispense: on its way, not yet on hand.
    shipped = api.fire("coordinator", case_id, "ship", **SHIPMENT)
    assert shipped["units_on_hand"] == 0 == on_hand(api, case_id)
    (first,) = listed(api, case_id, "/dispenses")
    assert (first["kind"], first["quantity_units"], first["lot"], first["carrier"]) == (
        "first",
        8,
        "LOT-2026-A1",
        "UPS",
    )
    assert first["received_at"] is None
    assert first["dispensed_by"] == user_id(api, "coordinator")

    # confirm_delivery is its receipt: 8 units on hand.
    delivered = api.fire("coordinator", case_id, "confirm_delivery")
    assert delivered["units_on_hand"] == 8 == on_hand(api, case_id)
    (first,) = listed(api, case_id, "/dispenses")
    assert datetime.fromisoformat(first["received_at"]) == api.clock.now
    assert first["received_by"] == user_id(api, "coordinator")

    # Preparation, one dose of 1 unit, integration.
    people(api, case_id)
    complete_sessions(api, case_id)
    assert on_hand(api, case_id) == 7
    monitoring = api.fire("coordinator", case_id, "start_monitoring")
    assert monitoring["units_on_hand"] == 7

    # 7 on hand is more than units_per_dose 1 + refill_grace_units 2: too early to refill.
    before = unchanged(api, case_id)
    early = post(api, "clinician", case_id, "/dispenses", REFILL)
    assert "7 units are on hand" in assert_problem(early, 409, "conflict")["detail"]
    assert unchanged(api, case_id) == before

    # 4 units returned before a witness leave 3: the refill is dispensed.
    back = api.post("coordinator", case_url(case_id, "/medication-returns"), returned(4))
    assert (back["units"], back["kind"], back["witness"], back["count_id"]) == (
        4,
        "returned",
        WITNESS,
        None,
    )
    assert on_hand(api, case_id) == 3
    refill = api.post("clinician", case_url(case_id, "/dispenses"), REFILL)
    assert (refill["kind"], refill["quantity_units"], refill["received_at"]) == ("refill", 8, None)
    assert refill["dispensed_by"] == user_id(api, "clinician")
    assert api.get("admin", case_url(case_id))["prescription"]["refills"] == 1
    assert on_hand(api, case_id) == 3  # not on hand until received

    # Received the next day: on hand from then.
    api.clock.advance(days=1)
    receipt = case_url(case_id, f"/dispenses/{refill['id']}/receipt")
    received_at = api.ago(hours=2)
    received = api.post("coordinator", receipt, {"received_at": received_at}, expect=200)
    assert datetime.fromisoformat(received["received_at"]) == datetime.fromisoformat(received_at)
    assert received["received_by"] == user_id(api, "coordinator")
    assert on_hand(api, case_id) == 11

    # A count finds 9 of the 11: the 2 missing are recorded once, as a loss, and the case is
    # held for substance misuse.
    count = api.post("coordinator", case_url(case_id, "/medication-counts"), counted(api, 9))
    assert (count["units_counted"], count["expected_units"], count["shortfall"]) == (9, 11, 2)
    loss = listed(api, case_id, "/medication-returns")[-1]
    assert (loss["kind"], loss["units"], loss["witness"], loss["count_id"]) == (
        "lost",
        2,
        "count",
        count["id"],
    )
    case = api.get("clinician", case_url(case_id))
    assert (case["state"], case["held_from"], case["units_on_hand"]) == ("on_hold", "monitoring", 9)
    assert on_hand(api, case_id) == 9
    (misuse,) = listed(api, case_id, "/adverse-events")
    assert (misuse["kind"], misuse["severity"], misuse["recorded_by_system"]) == (
        "substance_misuse",
        "moderate",
        True,
    )
    # The same 9 counted again: nothing more is missing, nothing more is flagged.
    again = api.post("coordinator", case_url(case_id, "/medication-counts"), counted(api, 9))
    assert (again["expected_units"], again["shortfall"]) == (9, 0)
    assert len(listed(api, case_id, "/medication-returns")) == 2
    assert len(listed(api, case_id, "/adverse-events")) == 1
    assert on_hand(api, case_id) == 9

    # Resumed once a clinician has resolved the event.
    options = {o["trigger"]: o for o in api.get("clinician", case_url(case_id, "/transitions"))}
    assert [u["code"] for u in options["resume"]["unmet"]] == ["adverse_events.resolved"]
    before = unchanged(api, case_id)
    blocked = post(api, "clinician", case_id, "/transitions/resume", None)
    assert [u["code"] for u in unmet_of(blocked)] == ["adverse_events.resolved"]
    assert unchanged(api, case_id) == before
    resolve = case_url(case_id, f"/adverse-events/{misuse['id']}/resolve")
    api.post("clinician", resolve, {"note": "Two troches dropped and discarded."}, expect=200)
    resumed = api.fire("clinician", case_id, "resume")
    assert (resumed["state"], resumed["units_on_hand"]) == ("monitoring", 9)

    # No discharge while units are at home; the message names them.
    before = unchanged(api, case_id)
    (unmet,) = unmet_of(post(api, "clinician", case_id, "/transitions/discharge", None))
    assert unmet["code"] == "medication.reconciled" and "9 units" in unmet["message"]
    assert unchanged(api, case_id) == before

    disposed = api.post(
        "coordinator", case_url(case_id, "/medication-returns"), returned(5, "disposed")
    )
    assert (disposed["kind"], disposed["witness"]) == ("disposed", WITNESS)
    assert on_hand(api, case_id) == 4
    (unmet,) = unmet_of(post(api, "clinician", case_id, "/transitions/discharge", None))
    assert unmet["code"] == "medication.reconciled" and "4 units" in unmet["message"]

    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(4))
    assert on_hand(api, case_id) == 0
    discharged = api.fire("clinician", case_id, "discharge")
    assert (discharged["state"], discharged["units_on_hand"]) == ("discharged", 0)
    entries = [(r["kind"], r["units"]) for r in listed(api, case_id, "/medication-returns")]
    assert entries == [("returned", 4), ("lost", 2), ("disposed", 5), ("returned", 4)]
    assert [d["kind"] for d in listed(api, case_id, "/dispenses")] == ["first", "refill"]


# -- bad input changes nothing ---------------------------------------------------------------


def test_bad_units_quantities_times_and_witnesses_are_422_and_change_nothing(api: Api):
    case_id = refillable(api)  # 3 units on hand
    lot = {"lot": "LOT-2026-B2"}
    bad = [
        ("coordinator", "/medication-returns", returned(0), "units"),
        ("coordinator", "/medication-returns", returned(-1), "units"),
        ("coordinator", "/medication-returns", returned(-1, "lost"), "units"),
        ("coordinator", "/medication-returns", returned(4), "units"),  # more than on hand
        ("coordinator", "/medication-returns", returned(4, "lost"), "units"),
        ("coordinator", "/medication-returns", returned(1, witness=None), "witness"),
        ("coordinator", "/medication-returns", returned(1, "disposed", None), "witness"),
        ("clinician", "/dispenses", {"quantity_units": 0, **lot}, "quantity_units"),
        ("clinician", "/dispenses", {"quantity_units": -8, **lot}, "quantity_units"),
        # units_per_dose 1 x max_doses_per_dispense 8
        ("clinician", "/dispenses", {"quantity_units": 9, **lot}, "quantity_units"),
        ("clinician", "/dispenses", {"quantity_units": 8}, "lot"),
        ("coordinator", "/medication-counts", counted(api, -1), "units_counted"),
        ("coordinator", "/medication-counts", counted(api, 3, minutes=-10), "counted_at"),
    ]
    before = unchanged(api, case_id)
    for role, suffix, body, field in bad:
        response = post(api, role, case_id, suffix, body)
        assert field in fields_named(response), (suffix, body, response.text)
    assert unchanged(api, case_id) == before
    assert on_hand(api, case_id) == 3


def test_ship_requires_quantity_and_lot_within_the_dispense_limit(api: Api):
    case_id = open_case(api)
    approve(api, case_id)
    api.fire("clinician", case_id, "prescribe", **(PRESCRIPTION | {"units_per_dose": 2}))
    before = unchanged(api, case_id)
    for body, field in (
        ({"lot": "LOT-2026-A1"}, "quantity_units"),
        ({"quantity_units": 8}, "lot"),
        ({"quantity_units": 0, "lot": "LOT-2026-A1"}, "quantity_units"),
        ({"quantity_units": 17, "lot": "LOT-2026-A1"}, "quantity_units"),  # 2 x 8
    ):
        response = post(api, "coordinator", case_id, "/transitions/ship", body)
        assert field in fields_named(response), (body, response.text)
    assert unchanged(api, case_id) == before
    shipped = api.fire("coordinator", case_id, "ship", quantity_units=16, lot="LOT-2026-A1")
    assert (shipped["state"], shipped["units_on_hand"]) == ("delivery.shipped", 0)
    assert [d["quantity_units"] for d in listed(api, case_id, "/dispenses")] == [16]
    delivered = api.fire("coordinator", case_id, "confirm_delivery")
    assert delivered["units_on_hand"] == 16 == on_hand(api, case_id)


def test_refills_refused_by_role_state_units_on_hand_and_receipt(api: Api):
    case_id = refillable(api)

    before = unchanged(api, case_id)
    assert_problem(post(api, "coordinator", case_id, "/dispenses", REFILL), 403, "forbidden")
    assert_problem(post(api, "admin", case_id, "/dispenses", REFILL), 403, "forbidden")
    assert unchanged(api, case_id) == before
    # An unresolved adverse event blocks it like ship (409 with unmet).
    event = {"kind": "nausea", "severity": "mild", "description": "After the dose."}
    recorded = api.post("coordinator", case_url(case_id, "/adverse-events"), event)
    before = unchanged(api, case_id)
    blocked = post(api, "clinician", case_id, "/dispenses", REFILL)
    assert [u["code"] for u in unmet_of(blocked)] == ["adverse_events.resolved"]
    assert unchanged(api, case_id) == before
    resolve = case_url(case_id, f"/adverse-events/{recorded['id']}/resolve")
    api.post("clinician", resolve, {"note": "Passed."}, expect=200)

    dispense = api.post("clinician", case_url(case_id, "/dispenses"), REFILL)
    # A second refill while the first is on its way, then a receipt twice: conflicts.
    before = unchanged(api, case_id)
    assert_problem(post(api, "clinician", case_id, "/dispenses", REFILL), 409, "conflict")
    assert unchanged(api, case_id) == before
    receipt = f"/dispenses/{dispense['id']}/receipt"
    early = post(api, "coordinator", case_id, receipt, {"received_at": api.ago(days=1)})
    assert "received_at" in fields_named(early)  # before the dispense was recorded
    future = post(api, "coordinator", case_id, receipt, {"received_at": api.ago(minutes=-10)})
    assert "received_at" in fields_named(future)
    assert unchanged(api, case_id) == before
    api.post("coordinator", case_url(case_id, receipt), {"received_at": api.ago()}, expect=200)
    assert on_hand(api, case_id) == 11
    before = unchanged(api, case_id)
    twice = post(api, "coordinator", case_id, receipt, {"received_at": api.ago()})
    assert_problem(twice, 409, "conflict")
    # 11 units on hand: more than 1 + 2.
    too_many = post(api, "clinician", case_id, "/dispenses", REFILL)
    assert "11 units are on hand" in assert_problem(too_many, 409, "conflict")["detail"]
    assert unchanged(api, case_id) == before

    # Held, with 3 units left: refills are for integration and monitoring only.
    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(8))
    api.fire("coordinator", case_id, "hold", reason="Travelling.")
    before = unchanged(api, case_id)
    assert_problem(post(api, "clinician", case_id, "/dispenses", REFILL), 409, "conflict")
    assert unchanged(api, case_id) == before
    # Closed: withdrawn with its 3 units at home.
    api.fire("coordinator", case_id, "withdraw", reason="Moved away.")
    before = unchanged(api, case_id)
    assert_problem(post(api, "clinician", case_id, "/dispenses", REFILL), 409, "conflict")
    assert unchanged(api, case_id) == before
    assert on_hand(api, case_id) == 3


def test_five_refills_spend_a_prescription_and_a_new_one_starts_again(api: Api):
    case_id = refillable(api)
    for n in range(1, 6):
        refill_received(api, case_id, quantity_units=1)
        api.post("coordinator", case_url(case_id, "/medication-returns"), returned(1))
        assert api.get("admin", case_url(case_id))["prescription"]["refills"] == n
    assert on_hand(api, case_id) == 3
    before = unchanged(api, case_id)
    sixth = post(api, "clinician", case_id, "/dispenses", REFILL)
    assert "5 refills" in assert_problem(sixth, 409, "conflict")["detail"]
    assert unchanged(api, case_id) == before

    # adjust_dose writes a new prescription: its refills start again.
    adjusted = api.fire("clinician", case_id, "adjust_dose", dose_mg=80, rationale="Sedation.")
    assert adjusted["prescription"]["refills"] == 0 and adjusted["units_on_hand"] == 3
    assert refill_received(api, case_id)["kind"] == "refill"
    assert on_hand(api, case_id) == 11


def test_no_refill_of_a_prescription_older_than_180_days(api: Api):
    case_id = refillable(api)
    written = datetime.fromisoformat(
        api.get("admin", case_url(case_id))["prescription"]["prescribed_at"]
    )
    api.clock.now = written + timedelta(days=180, minutes=1)
    before = unchanged(api, case_id)
    stale = post(api, "clinician", case_id, "/dispenses", REFILL)
    assert "180 days old" in assert_problem(stale, 409, "conflict")["detail"]
    assert unchanged(api, case_id) == before

    # A new prescription may be refilled once its other requirements are met again.
    api.fire("clinician", case_id, "adjust_dose", dose_mg=80, rationale="Lower is enough.")
    blocked = post(api, "clinician", case_id, "/dispenses", REFILL)
    assert [u["code"] for u in unmet_of(blocked)] == ["screening.interactions"]
    api.post("clinician", case_url(case_id, "/interaction-screenings"), {})
    assert refill_received(api, case_id)["quantity_units"] == 8
    assert on_hand(api, case_id) == 11


# -- doses and clearances meet the units on hand ---------------------------------------------


def test_a_dose_takes_at_most_the_units_on_hand_and_none_is_cleared_without_them(api: Api):
    case_id = case_in(api, "integration")
    sessions = case_url(case_id, "/sessions")
    api.post("coordinator", sessions, {"kind": "preparation", "completed_at": api.ago(hours=1)})
    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(7))
    assert on_hand(api, case_id) == 1

    cleared = clearance(api, case_id)
    assert cleared["granted"], cleared
    too_many = dose_record(api, case_id, cleared, units_taken=2)
    before = unchanged(api, case_id)
    response = api.call("coordinator", "POST", sessions, json=too_many)
    assert fields_named(response) == ["units_taken"]
    assert unchanged(api, case_id) == before
    assert listed(api, case_id, "/dose-clearances")[-1]["open"] is True

    api.post("coordinator", sessions, too_many | {"units_taken": 1})
    assert on_hand(api, case_id) == 0

    # 73 hours on, the interval is kept, but no unit is left to take.
    api.clock.advance(hours=73)
    refused = clearance(api, case_id)
    assert refused["granted"] is False
    assert [u["code"] for u in refused["unmet"]] == ["units.on_hand"]
    assert "0 units are on hand" in refused["unmet"][0]["message"]


# -- closed cases -----------------------------------------------------------------------------


def test_withdrawn_with_units_at_home_then_counted_returned_and_lost(api: Api):
    case_id = case_in(api, "integration")
    withdrawn = api.fire("coordinator", case_id, "withdraw", reason="Moved away.")
    assert (withdrawn["state"], withdrawn["units_on_hand"]) == ("withdrawn", 8)
    (event,) = listed(api, case_id, "/adverse-events")
    assert (event["kind"], event["severity"], event["recorded_by_system"]) == (
        "other",
        "moderate",
        True,
    )
    assert event["description"] == "withdrawn with 8 units at home"

    # Other facts are refused on the closed case.
    before = unchanged(api, case_id)
    refused = [
        ("clinician", "/dispenses", REFILL),
        ("coordinator", "/vitals", {"systolic": 120, "diastolic": 80, "taken_at": api.ago()}),
        ("coordinator", "/sessions", {"kind": "preparation", "completed_at": api.ago()}),
    ]
    for role, suffix, body in refused:
        assert_problem(post(api, role, case_id, suffix, body), 409, "conflict")
    assert unchanged(api, case_id) == before

    # Counts, returns, disposals and losses are still recorded; a short count holds nothing.
    # Counted as it is entered: the delivery was received just now.
    count = api.post(
        "coordinator", case_url(case_id, "/medication-counts"), counted(api, 7, minutes=0)
    )
    assert (count["expected_units"], count["shortfall"]) == (8, 1)
    assert on_hand(api, case_id) == 7
    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(4))
    api.post("clinician", case_url(case_id, "/medication-returns"), returned(2, "disposed"))
    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(1, "lost", None))
    assert on_hand(api, case_id) == 0
    events = [(e["kind"], e["severity"]) for e in listed(api, case_id, "/adverse-events")]
    assert events == [
        ("other", "moderate"),
        ("substance_misuse", "moderate"),
        ("other", "moderate"),
    ]
    assert "1 units reported lost" in listed(api, case_id, "/adverse-events")[-1]["description"]
    entries = [
        (r["kind"], r["units"], r["witness"]) for r in listed(api, case_id, "/medication-returns")
    ]
    assert entries == [
        ("lost", 1, "count"),
        ("returned", 4, WITNESS),
        ("disposed", 2, WITNESS),
        ("lost", 1, None),
    ]
    assert api.get("admin", case_url(case_id))["state"] == "withdrawn"


def test_withdrawn_with_no_units_at_home_records_no_event(api: Api):
    case_id = case_in(api, "integration")
    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(8))
    withdrawn = api.fire("coordinator", case_id, "withdraw", reason="Changed their mind.")
    assert (withdrawn["state"], withdrawn["units_on_hand"]) == ("withdrawn", 0)
    assert listed(api, case_id, "/adverse-events") == []


def test_a_discharged_case_takes_counts_but_no_refill_and_no_unit_it_has_not(api: Api):
    case_id = case_in(api, "monitoring")
    api.post("coordinator", case_url(case_id, "/medication-returns"), returned(7))
    discharged = api.fire("clinician", case_id, "discharge")
    assert (discharged["state"], discharged["units_on_hand"]) == ("discharged", 0)

    before = unchanged(api, case_id)
    for role, suffix, body in (
        ("clinician", "/dispenses", REFILL),
        ("coordinator", "/vitals", {"systolic": 120, "diastolic": 80, "taken_at": api.ago()}),
    ):
        assert_problem(post(api, role, case_id, suffix, body), 409, "conflict")
    assert fields_named(post(api, "coordinator", case_id, "/medication-returns", returned(1))) == [
        "units"
    ]
    assert unchanged(api, case_id) == before

    count = api.post("coordinator", case_url(case_id, "/medication-counts"), counted(api, 0))
    assert (count["expected_units"], count["shortfall"]) == (0, 0)
    assert api.get("admin", case_url(case_id))["state"] == "discharged"
    assert on_hand(api, case_id) == 0
