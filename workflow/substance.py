"""The controlled-substance record (SPEC.md 4.5): what was dispensed, taken, counted, returned.

Ketamine is a Schedule III drug and sits in the patient's home between doses,
so every unit is accounted for by records, never by a counter:

- a **dispense** per shipment (``ship``'s body makes the first) and per refill
  (``POST dispenses``); its units count as on hand from its **receipt**
  (``confirm_delivery`` for the first, ``POST dispenses/{id}/receipt``);
- a dosing session's ``units_taken`` (``workflow.dosing``);
- **returns**, **disposals** and **losses**: a ``medication_return`` of kind
  ``returned``, ``disposed`` or ``lost``.

``units_on_hand`` is received - taken - returned - disposed - lost, summed
from those records in one statement (``CaseFacts.units_on_hand``). A
**count** short of it by more than ``count_tolerance_units`` records
``substance_misuse`` (moderate, a hold) and the shortfall, once, as a loss.
``medication.reconciled`` keeps a case from discharge while units remain;
``withdraw`` with units at home records an event so that a review follows them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from models.facts import Dispense, MedicationCount, MedicationReturn
from models.schemas import CountCreate, DispenseCreate, ReceiptCreate, ReturnCreate, TransitionBody
from workflow import safety
from workflow.definition import REFILL_REQUIREMENTS, SYSTEM_ACTOR, TRIGGERS
from workflow.errors import Conflict, TransitionBlocked, ValidationFailed
from workflow.guards import evaluate
from workflow.prescribing import check_dispense
from workflow.records import get_record, not_future
from workflow.unit import CaseWrite, writes

WITNESSED = ("returned", "disposed")
"""Kinds of return that need the name of the adult who saw them."""
COUNT_WITNESS = "count"
"""The witness of a loss that a short count recorded."""


# -- what ship, confirm_delivery and withdraw record (TriggerDef.then) ---------------------


def record_first_dispense(write: CaseWrite, body: TransitionBody) -> None:
    """``ship``: its body is the first dispense, on its way to the patient."""
    assert body.quantity_units is not None and body.lot is not None  # the trigger's body
    dispense = Dispense(
        case_id=write.case_id,
        kind="first",
        quantity_units=body.quantity_units,
        lot=body.lot,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        dispensed_by=write.actor.id,
        created_at=write.now,
    )
    write.record("dispense", dispense, actor=SYSTEM_ACTOR)  # made by the service (SPEC.md 6)


def receive_first_dispense(write: CaseWrite, body: TransitionBody) -> None:
    """``confirm_delivery``: the dispense on its way has arrived, and its units are on hand."""
    dispense = write.facts.unreceived_dispense
    if dispense is not None:
        _receive(write, dispense, write.now, by_service=True)


def flag_units_at_home(write: CaseWrite, body: TransitionBody) -> None:
    """``withdraw``: units left at home, or still on their way there, are an event a
    clinician reviews, so that their return, disposal or loss is followed up on the
    closed case."""
    units, on_its_way = write.facts.units_on_hand, write.facts.unreceived_dispense
    if units <= 0 and on_its_way is None:
        return
    description = f"withdrawn with {units} units at home"
    if on_its_way is not None:
        description += (
            f"; dispense #{on_its_way.id} ({on_its_way.quantity_units} units) not yet received"
        )
    safety.record_system_event(write, kind="other", severity="moderate", description=description)


THEN: dict[str, Callable[[CaseWrite, TransitionBody], None]] = {
    "record_first_dispense": record_first_dispense,
    "receive_first_dispense": receive_first_dispense,
    "flag_units_at_home": flag_units_at_home,
}
_unknown = {name for t in TRIGGERS for name in t.then} - set(THEN)
assert not _unknown, f"TriggerDef.then names no record of workflow.substance: {_unknown}"


# -- refills and receipts --------------------------------------------------------------


@writes("dispense")
def record_dispense(write: CaseWrite, *, data: DispenseCreate) -> Dispense:
    """A refill (clinician, integration or monitoring): guarded like ``ship`` plus the
    clinician's licence, and within the Schedule III limits of the prescription."""
    prescription = write.case.prescription
    if not prescription:
        raise Conflict("The case has no prescription to refill.")
    check_dispense(write.case, data, write.rules)
    _check_refill(write, prescription)
    unmet = evaluate(REFILL_REQUIREMENTS, write.facts)
    if unmet:
        raise TransitionBlocked("The refill is blocked.", unmet)
    dispense = Dispense(
        case_id=write.case_id,
        kind="refill",
        dispensed_by=write.actor.id,
        created_at=write.now,
        **data.model_dump(),
    )
    refilled = {**prescription, "refills": int(prescription.get("refills") or 0) + 1}
    write.record("dispense", dispense, {"prescription": refilled})
    return dispense


def _check_refill(write: CaseWrite, prescription: dict[str, Any]) -> None:
    """409 while units enough remain, one is on its way, or the prescription is spent."""
    rules = write.rules
    on_its_way = write.facts.unreceived_dispense
    if on_its_way is not None:
        raise Conflict(
            f"Dispense #{on_its_way.id} has not been received yet: record its receipt first."
        )
    per_dose = int(prescription.get("units_per_dose") or 0)
    on_hand, most = write.facts.units_on_hand, per_dose + rules.refill_grace_units
    if on_hand > most:
        raise Conflict(
            f"{on_hand} units are on hand: a refill is dispensed once at most {most} remain "
            f"(units_per_dose {per_dose} + refill_grace_units {rules.refill_grace_units})."
        )
    refills = int(prescription.get("refills") or 0)
    if refills >= rules.refill_max_count:
        raise Conflict(
            f"The prescription has had {refills} refills, the most allowed "
            f"(refill_max_count {rules.refill_max_count}): a clinician must prescribe anew."
        )
    written = datetime.fromisoformat(str(prescription["prescribed_at"]))
    if write.now - written > timedelta(days=rules.refill_max_days):
        raise Conflict(
            f"The prescription of {written:%Y-%m-%d} is more than {rules.refill_max_days:g} "
            "days old (refill_max_days): a clinician must prescribe anew."
        )


@writes("dispense_receipt")
def receive_dispense(write: CaseWrite, *, dispense_id: int, data: ReceiptCreate) -> Dispense:
    """The patient received a dispense: its units are on hand from ``received_at``."""
    dispense = get_record(write.session, write.case_id, Dispense, dispense_id)
    if dispense.received_at is not None:
        raise Conflict(f"Dispense {dispense_id} was received already.")
    not_future(data.received_at, write.now, "received_at", write.case)
    skew = timedelta(seconds=write.rules.clock_skew_seconds)
    if data.received_at < dispense.created_at - skew:
        raise ValidationFailed.field(
            ("received_at",), "received_at may not be before the dispense was recorded."
        )
    _receive(write, dispense, data.received_at)
    return dispense


def _receive(
    write: CaseWrite, dispense: Dispense, at: datetime, *, by_service: bool = False
) -> None:
    """Receive ``dispense`` at ``at``; ``by_service``: as what ``confirm_delivery`` records
    (audited as the system's, SPEC.md 6), else as the staff member's own fact."""
    dispense.received_at, dispense.received_by = at, write.actor.id
    write.record("dispense_receipt", dispense, actor=SYSTEM_ACTOR if by_service else None)


# -- counts, returns, disposals and losses -------------------------------------------------


@writes("medication_count")
def record_count(write: CaseWrite, *, data: CountCreate) -> MedicationCount:
    """A count of the units at home; a shortfall beyond the tolerance is recorded once, as a
    loss, and as ``substance_misuse`` (moderate: it holds an active case)."""
    not_future(data.counted_at, write.now, "counted_at", write.case)
    # What the record says was at home when the count was taken: a count entered late
    # is not compared with a refill received, or a dose taken, after it.
    expected = max(0, write.facts.units_on_hand_at(data.counted_at))
    missing = expected - data.units_counted
    shortfall = missing if missing > write.rules.count_tolerance_units else 0
    count = MedicationCount(
        case_id=write.case_id,
        expected_units=expected,
        shortfall=shortfall,
        recorded_by=write.actor.id,
        created_at=write.now,
        **data.model_dump(),
    )
    write.record("medication_count", count)
    if shortfall:
        loss = MedicationReturn(
            case_id=write.case_id,
            units=shortfall,
            kind="lost",
            witness=COUNT_WITNESS,
            count_id=count.id,
            recorded_by=write.actor.id,
            created_at=write.now,
        )
        write.record("medication_return", loss, actor=SYSTEM_ACTOR)
        safety.record_system_event(
            write,
            kind="substance_misuse",
            severity="moderate",
            description=(
                f"Medication count #{count.id}: {data.units_counted} units counted, "
                f"{expected} expected ({shortfall} missing)."
            ),
            onset_at=data.counted_at,
        )
    return count


@writes("medication_return")
def record_return(write: CaseWrite, *, data: ReturnCreate) -> MedicationReturn:
    """Units returned, disposed of (each seen by a witness) or lost; at most those on hand.

    A loss staff report is an event a clinician reviews.
    """
    if data.kind in WITNESSED and data.witness is None:
        raise ValidationFailed.field(
            ("witness",), f"A {data.kind} entry names the adult who saw it (witness)."
        )
    on_hand = write.facts.units_on_hand
    if data.units > on_hand:
        raise ValidationFailed.field(
            ("units",), f"units {data.units} is more than the {on_hand} units on hand."
        )
    entry = MedicationReturn(
        case_id=write.case_id, recorded_by=write.actor.id, created_at=write.now, **data.model_dump()
    )
    write.record("medication_return", entry)
    if data.kind == "lost":
        safety.record_system_event(
            write,
            kind="other",
            severity="moderate",
            description=f"{data.units} units reported lost (return #{entry.id})",
        )
    return entry
