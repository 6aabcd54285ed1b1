"""The controlled-substance record (SPEC.md 4.5): dispensed, received, taken, counted, returned.

Every number here is read back from the records: ``units_on_hand`` is the sum
of received dispenses less the units taken and the units returned, disposed of
or lost, and each refusal leaves the case and its records as they were.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from models.facts import AdverseEvent, CareSession, Dispense, MedicationCount, MedicationReturn
from models.schemas import CountCreate, DispenseCreate, SessionCreate
from models.settings import Settings
from tests.workflow.conftest import Clinic, body_for
from workflow import dosing, substance
from workflow.errors import Conflict, Forbidden, TransitionBlocked, ValidationFailed


def by_records(clinic: Clinic, case_id: int) -> int:
    """The units on hand, summed here from the rows themselves."""
    received = sum(
        d.quantity_units for d in clinic.rows(Dispense, case_id) if d.received_at is not None
    )
    taken = sum(s.units_taken or 0 for s in clinic.rows(CareSession, case_id) if s.kind == "dosing")
    left = sum(r.units for r in clinic.rows(MedicationReturn, case_id))
    return received - taken - left


def on_hand(clinic: Clinic, case_id: int) -> int:
    """The service's units on hand, checked against the records and never negative."""
    units = clinic.units(case_id)
    assert units == by_records(clinic, case_id) >= 0
    assert clinic.facts(case_id).units_on_hand == units
    return units


def refused(clinic: Clinic, case_id: int, error: type[Exception], action: Any) -> Any:
    """``action()`` is refused with ``error`` and changes nothing."""
    before = clinic.snapshot(case_id)
    with pytest.raises(error) as caught:
        action()
    assert clinic.snapshot(case_id) == before
    return caught.value


def events(clinic: Clinic, case_id: int, kind: str) -> list[AdverseEvent]:
    return [e for e in clinic.rows(AdverseEvent, case_id) if e.kind == kind]


def refill(clinic: Clinic, case_id: int, quantity_units: int = 8, **kwargs: Any) -> Dispense:
    data = DispenseCreate(quantity_units=quantity_units, lot="LOT-2026-B2")
    kwargs.setdefault("actor", clinic.clinician)
    return clinic.call(substance.record_dispense, case_id=case_id, data=data, **kwargs)


def down_to(clinic: Clinic, case_id: int, units: int) -> None:
    """Dispose of what is on hand beyond ``units``."""
    extra = clinic.units(case_id) - units
    if extra:
        clinic.give_back(case_id, extra, kind="disposed")


# -- the first dispense: ship and confirm_delivery ---------------------------------------------


def test_ship_dispenses_and_confirm_delivery_puts_the_units_on_hand(clinic, case_in):
    case_id = case_in("delivery.prescribed")
    clinic.fire(case_id, "ship", body=body_for("ship", quantity_units=6, carrier="UPS"))
    (dispense,) = clinic.rows(Dispense, case_id)
    assert (dispense.kind, dispense.quantity_units, dispense.lot) == ("first", 6, "LOT-2026-A1")
    assert (dispense.carrier, dispense.dispensed_by) == ("UPS", clinic.clinician.id)
    assert dispense.received_at is None
    assert on_hand(clinic, case_id) == 0  # on its way, not yet at home

    clinic.tick(days=2)
    clinic.fire(case_id, "confirm_delivery", actor=clinic.coordinator)
    (dispense,) = clinic.rows(Dispense, case_id)
    assert (dispense.received_at, dispense.received_by) == (clinic.now, clinic.coordinator.id)
    assert on_hand(clinic, case_id) == 6
    last = [(e.kind, e.trigger or e.data.get("fact")) for e in clinic.events(case_id)[-2:]]
    assert last == [("transition", "confirm_delivery"), ("fact", "dispense_receipt")]


def test_ship_needs_a_quantity_and_a_lot(clinic, case_in):
    case_id = case_in("delivery.prescribed")
    error = refused(
        clinic,
        case_id,
        ValidationFailed,
        lambda: clinic.fire(
            case_id, "ship", body=body_for("ship").model_copy(update={"lot": None})
        ),
    )
    assert [e["loc"] for e in error.errors] == [["body", "lot"]]


def test_a_shipment_holds_at_most_eight_doses(clinic, case_in):
    case_id = case_in("delivery.prescribed")  # units_per_dose 1
    error = refused(
        clinic,
        case_id,
        ValidationFailed,
        lambda: clinic.fire(case_id, "ship", body=body_for("ship", quantity_units=9)),
    )
    assert error.errors[0]["loc"] == ["body", "quantity_units"]
    assert "max_doses_per_dispense 8" in error.detail
    clinic.fire(case_id, "ship", body=body_for("ship", quantity_units=8))


# -- doses take units ---------------------------------------------------------------------------


def test_a_dose_takes_its_units_from_those_on_hand(clinic, case_in):
    case_id = case_in("integration")  # 8 received, one dose of 1 taken
    assert on_hand(clinic, case_id) == 7
    clinic.tick(days=4)
    clinic.dose(case_id, units_taken=1)
    assert on_hand(clinic, case_id) == 6


def test_a_dose_cannot_take_more_units_than_are_on_hand(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 1)
    clinic.tick(days=4)
    clearance = clinic.clearance(case_id)
    assert clearance.granted
    fields = clinic.dosing_fields(case_id, clearance.created_at, units_taken=2)
    clinic.now = fields["completed_at"]
    data = SessionCreate(kind="dosing", clearance_id=clearance.id, **fields)
    error = refused(
        clinic,
        case_id,
        ValidationFailed,
        lambda: clinic.call(
            dosing.record_session, case_id=case_id, data=data, actor=clinic.coordinator
        ),
    )
    assert error.errors[0]["loc"] == ["body", "units_taken"]
    assert "1 units on hand" in error.detail


# -- refills ------------------------------------------------------------------------------------


def test_a_refill_waits_until_few_units_remain(clinic, case_in):
    case_id = case_in("integration")  # 7 on hand, 1 per dose, grace 2: at most 3
    error = refused(clinic, case_id, Conflict, lambda: refill(clinic, case_id))
    assert "7 units are on hand" in error.detail
    down_to(clinic, case_id, 3)
    dispense = refill(clinic, case_id)
    assert (dispense.kind, dispense.received_at) == ("refill", None)
    assert clinic.case(case_id).prescription["refills"] == 1
    assert on_hand(clinic, case_id) == 3  # not at home until received

    error = refused(clinic, case_id, Conflict, lambda: refill(clinic, case_id))
    assert f"Dispense #{dispense.id} has not been received" in error.detail
    clinic.tick(days=1)
    received = clinic.receive(case_id, dispense.id)
    assert (received.received_at, received.received_by) == (clinic.now, clinic.coordinator.id)
    assert on_hand(clinic, case_id) == 11
    refused(clinic, case_id, Conflict, lambda: clinic.receive(case_id, dispense.id))


def test_a_receipt_may_not_be_in_the_future_or_before_the_dispense(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 0)
    dispense = refill(clinic, case_id)
    for at in (clinic.now + timedelta(hours=1), clinic.now - timedelta(days=1)):
        error = refused(
            clinic,
            case_id,
            ValidationFailed,
            lambda at=at: clinic.receive(case_id, dispense.id, at),
        )
        assert error.errors[0]["loc"] == ["body", "received_at"]


def test_only_a_clinician_dispenses_a_refill(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 0)
    refused(clinic, case_id, Forbidden, lambda: refill(clinic, case_id, actor=clinic.coordinator))


def test_a_refill_is_guarded_like_ship_plus_the_licence(clinic, case_in):
    case_id = case_in("integration")  # in CA
    down_to(clinic, case_id, 0)
    clinic.adverse_event(case_id, "nausea", "mild")
    outsider = clinic.clinician_licensed_only_in("NY")
    error = refused(
        clinic, case_id, TransitionBlocked, lambda: refill(clinic, case_id, actor=outsider)
    )
    assert [u.code for u in error.unmet] == ["clinician.licensed", "adverse_events.resolved"]


def test_a_refill_is_only_for_the_dosing_states(clinic, case_in):
    case_id = case_in("on_hold", held_from="integration")
    down_to(clinic, case_id, 0)
    refused(clinic, case_id, Conflict, lambda: refill(clinic, case_id))


def test_a_prescription_allows_five_refills(clinic, case_in):
    case_id = case_in("integration")
    for _ in range(5):
        down_to(clinic, case_id, 0)
        dispense = refill(clinic, case_id)
        clinic.receive(case_id, dispense.id)
    down_to(clinic, case_id, 0)
    error = refused(clinic, case_id, Conflict, lambda: refill(clinic, case_id))
    assert "5 refills" in error.detail
    # A new prescription (adjust_dose) starts its refills again.
    dose_mg = clinic.case(case_id).prescription["dose_mg"]
    clinic.fire(case_id, "adjust_dose", body=body_for("adjust_dose", dose_mg=dose_mg - 10))
    assert refill(clinic, case_id).kind == "refill"


def test_a_prescription_older_than_180_days_is_not_refilled(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 0)
    prescribed = clinic.case(case_id).prescription["prescribed_at"]
    clinic.tick(days=181)
    error = refused(clinic, case_id, Conflict, lambda: refill(clinic, case_id))
    assert "180 days" in error.detail and prescribed[:10] in error.detail


def test_a_stricter_program_sets_fewer_refills(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 0)
    error = refused(
        clinic,
        case_id,
        Conflict,
        lambda: refill(clinic, case_id, rules=Settings(refill_max_count=0)),
    )
    assert "refill_max_count 0" in error.detail
    with pytest.raises(ValueError):
        Settings(refill_max_count=6)  # never looser than Schedule III


def test_a_refill_holds_at_most_eight_doses(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 0)
    error = refused(clinic, case_id, ValidationFailed, lambda: refill(clinic, case_id, 9))
    assert error.errors[0]["loc"] == ["body", "quantity_units"]


# -- counts -------------------------------------------------------------------------------------


def test_an_exact_count_records_only_the_count(clinic, case_in):
    case_id = case_in("integration")
    count = clinic.count(case_id, 7)
    assert (count.expected_units, count.shortfall) == (7, 0)
    assert clinic.rows(MedicationReturn, case_id) == []
    assert clinic.rows(AdverseEvent, case_id) == []
    assert clinic.case(case_id).state == "integration"


def test_a_short_count_holds_the_case_and_records_the_shortfall_once(clinic, case_in):
    case_id = case_in("integration")
    counted_at = clinic.now - timedelta(hours=2)
    count = clinic.count(case_id, 4, at=counted_at)
    assert (count.expected_units, count.shortfall) == (7, 3)
    (loss,) = clinic.rows(MedicationReturn, case_id)
    assert (loss.kind, loss.units, loss.witness, loss.count_id) == ("lost", 3, "count", count.id)
    (misuse,) = events(clinic, case_id, "substance_misuse")
    assert (misuse.severity, misuse.onset_at, misuse.recorded_by_system) == (
        "moderate",
        counted_at,
        True,
    )
    assert "4 units counted, 7 expected (3 missing)" in misuse.description
    case = clinic.case(case_id)
    assert (case.state, case.held_from) == ("on_hold", "integration")
    assert on_hand(clinic, case_id) == 4

    clinic.tick(hours=1)
    again = clinic.count(case_id, 4)  # the same shortfall is not flagged twice
    assert again.shortfall == 0
    assert len(events(clinic, case_id, "substance_misuse")) == 1
    assert len(clinic.rows(MedicationReturn, case_id)) == 1


def test_a_shortfall_within_the_tolerance_is_not_a_finding(clinic, case_in):
    case_id = case_in("integration")
    count = clinic.call(
        substance.record_count,
        case_id=case_id,
        data=CountCreate(units_counted=6, counted_at=clinic.now),
        actor=clinic.coordinator,
        rules=Settings(count_tolerance_units=1),
    )
    assert (count.expected_units, count.shortfall) == (7, 0)
    assert clinic.rows(AdverseEvent, case_id) == []
    assert on_hand(clinic, case_id) == 7


def test_a_count_may_not_be_in_the_future(clinic, case_in):
    case_id = case_in("integration")
    error = refused(
        clinic,
        case_id,
        ValidationFailed,
        lambda: clinic.count(case_id, 7, at=clinic.now + timedelta(minutes=5)),
    )
    assert error.errors[0]["loc"] == ["body", "counted_at"]


# -- returns, disposals, losses -----------------------------------------------------------------


def test_returns_and_disposals_need_a_witness(clinic, case_in):
    case_id = case_in("integration")
    for kind in ("returned", "disposed"):
        error = refused(
            clinic,
            case_id,
            ValidationFailed,
            lambda kind=kind: clinic.give_back(case_id, 1, kind=kind, witness=None),
        )
        assert error.errors[0]["loc"] == ["body", "witness"]
    clinic.give_back(case_id, 2, kind="disposed")
    clinic.give_back(case_id, 1, kind="returned")
    assert on_hand(clinic, case_id) == 4
    assert clinic.rows(AdverseEvent, case_id) == []


def test_no_more_units_leave_than_are_on_hand(clinic, case_in):
    case_id = case_in("integration")
    error = refused(clinic, case_id, ValidationFailed, lambda: clinic.give_back(case_id, 8))
    assert error.errors[0]["loc"] == ["body", "units"]
    assert "7 units on hand" in error.detail


def test_a_loss_staff_report_is_reviewed(clinic, case_in):
    case_id = case_in("integration")
    loss = clinic.give_back(case_id, 2, kind="lost", witness=None)
    (event,) = events(clinic, case_id, "other")
    assert (event.severity, event.recorded_by_system) == ("moderate", True)
    assert event.description == f"2 units reported lost (return #{loss.id})"
    assert clinic.case(case_id).state == "integration"  # a moderate "other" does not hold
    assert on_hand(clinic, case_id) == 5


# -- closing the case ---------------------------------------------------------------------------


def test_discharge_waits_until_every_unit_is_accounted_for(clinic, case_in):
    case_id = case_in("monitoring")
    units = on_hand(clinic, case_id)
    assert units > 0
    error = refused(clinic, case_id, TransitionBlocked, lambda: clinic.fire(case_id, "discharge"))
    (unmet,) = [u for u in error.unmet if u.code == "medication.reconciled"]
    assert f"{units} units are still at the patient's home" in unmet.message
    clinic.give_back(case_id, units - 1, kind="disposed")
    clinic.give_back(case_id, 1, kind="lost", witness=None)
    (lost,) = events(clinic, case_id, "other")
    clinic.resolve(case_id, lost.id)
    assert clinic.fire(case_id, "discharge").state == "discharged"
    assert on_hand(clinic, case_id) == 0


def test_a_withdrawal_with_units_at_home_is_followed_up(clinic, case_in):
    case_id = case_in("integration")
    clinic.fire(case_id, "withdraw", actor=clinic.coordinator)
    (event,) = events(clinic, case_id, "other")
    assert (event.severity, event.description) == ("moderate", "withdrawn with 7 units at home")
    # The closed case still records where the units went.
    clinic.count(case_id, 7)
    clinic.give_back(case_id, 7, kind="returned")
    assert on_hand(clinic, case_id) == 0
    refused(clinic, case_id, Conflict, lambda: refill(clinic, case_id))
    refused(clinic, case_id, Conflict, lambda: clinic.vital(case_id))


def test_a_withdrawal_with_nothing_at_home_records_no_event(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 0)
    clinic.fire(case_id, "withdraw", actor=clinic.coordinator)
    assert events(clinic, case_id, "other") == []


def test_a_short_count_on_a_closed_case_is_recorded_without_a_hold(clinic, case_in):
    case_id = case_in("integration")
    clinic.fire(case_id, "withdraw", actor=clinic.coordinator)
    clinic.count(case_id, 5)
    (misuse,) = events(clinic, case_id, "substance_misuse")
    assert misuse.severity == "moderate"
    assert clinic.case(case_id).state == "withdrawn"
    assert on_hand(clinic, case_id) == 5


def test_every_record_is_audited_as_its_fact(clinic, case_in):
    case_id = case_in("integration")
    down_to(clinic, case_id, 0)
    dispense = refill(clinic, case_id)
    clinic.receive(case_id, dispense.id)
    clinic.count(case_id, 8)
    clinic.give_back(case_id, 1)
    audited = [e.data["fact"] for e in clinic.events(case_id) if e.kind == "fact"][-5:]
    assert audited == [
        "medication_return",
        "dispense",
        "dispense_receipt",
        "medication_count",
        "medication_return",
    ]


def test_the_units_on_hand_of_many_cases_are_read_in_one_statement(clinic, case_in, engine):
    from sqlalchemy import event

    from workflow import cases

    first, second = case_in("integration"), case_in("delivery.prescribed")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        units = clinic.read(lambda s: cases.units_on_hand(s, [first, second]))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert units == {first: 7, second: 0}
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert clinic.read(lambda s: s.exec(select(MedicationCount)).all()) == []


def test_discharge_waits_for_a_refill_on_its_way(clinic, case_in):
    """Every dispensed unit is accounted for: one still in transit is not yet."""
    case_id = case_in("monitoring")
    down_to(clinic, case_id, 0)
    dispense = refill(clinic, case_id, 4)
    error = refused(clinic, case_id, TransitionBlocked, lambda: clinic.fire(case_id, "discharge"))
    (unmet,) = [u for u in error.unmet if u.code == "medication.reconciled"]
    assert f"Dispense #{dispense.id} (4 units) has not been received" in unmet.message
    clinic.receive(case_id, dispense.id)
    clinic.give_back(case_id, 4)
    assert clinic.fire(case_id, "discharge").state == "discharged"


def test_a_count_entered_late_is_checked_against_what_was_at_home_then(clinic, case_in):
    """Counted before a refill arrived, entered after: not a shortfall of the refill."""
    case_id = case_in("integration")
    down_to(clinic, case_id, 1)
    counted_at = clinic.tick(hours=1)
    dispense = refill(clinic, case_id)
    clinic.tick(hours=2)
    clinic.receive(case_id, dispense.id)
    count = clinic.count(case_id, 1, at=counted_at)
    assert (count.expected_units, count.shortfall) == (1, 0)
    assert on_hand(clinic, case_id) == 9
