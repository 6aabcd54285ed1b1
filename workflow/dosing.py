"""The dosing cycle (SPEC.md 3.3, 4.4): the dose clearance, its cancellation, and sessions.

A clearance is judged by every requirement of ``CLEARANCE_REQUIREMENTS`` and
stored either way; a granted one is open until a dosing session uses it, it is
cancelled, or it is void (``workflow.voiding``). A dosing session is the
record of a dose: a malformed one is a 422 and stores nothing, but a dose that
was taken outside the rules is still recorded, with its ``deviations``, and an
adverse event for a clinician's review.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models.facts import CareSession, DoseClearance
from models.schemas import ClearanceCancel, ClearanceCreate, SessionCreate
from models.settings import Settings
from workflow import safety
from workflow.casefacts import DoseRequest
from workflow.definition import DOSING_STATES
from workflow.dose_guards import below_limit, is_crisis, judge
from workflow.errors import Conflict, NotFound, ValidationFailed
from workflow.records import get_record, not_future
from workflow.unit import CaseWrite, writes

DOSING_FIELDS = (
    "dosed_at",
    "dose_mg",
    "units_taken",
    "monitor_id",
    "clearance_id",
    "post_systolic",
    "post_diastolic",
    "post_taken_at",
    "recheck_systolic",
    "recheck_diastolic",
    "recheck_taken_at",
)
DOSING_REQUIRED = ("dosed_at", "dose_mg", "units_taken", "monitor_id")
READINGS = {
    "post": ("post_systolic", "post_diastolic", "post_taken_at"),
    "recheck": ("recheck_systolic", "recheck_diastolic", "recheck_taken_at"),
}
TIMES = ("completed_at", "dosed_at", "post_taken_at", "recheck_taken_at")


# -- the clearance ------------------------------------------------------------------------


@writes("dose_clearance")
def request_clearance(write: CaseWrite, *, data: ClearanceCreate) -> DoseClearance:
    """Judge a dose clearance; stored granted, or refused with every unmet requirement.

    A pre-dose reading at or above the crisis limit records a severe
    ``blood_pressure_increase``, which holds the case.
    """
    rules, now = write.rules, write.now
    unmet = judge(write.facts, DoseRequest(data.systolic, data.diastolic, data.monitor_id))
    granted = not unmet
    clearance = DoseClearance(
        case_id=write.case_id,
        granted=granted,
        open=granted,
        unmet=[u.as_dict() for u in unmet],
        expires_at=now + timedelta(minutes=rules.clearance_valid_minutes) if granted else None,
        recorded_by=write.actor.id,
        created_at=now,
        **data.model_dump(),
    )
    write.record("dose_clearance", clearance)
    if is_crisis(data.systolic, data.diastolic, rules):
        safety.record_system_event(
            write,
            kind="blood_pressure_increase",
            severity="severe",
            description=(
                f"Pre-dose blood pressure {data.systolic}/{data.diastolic} at or above the "
                f"crisis limit (dose clearance #{clearance.id})."
            ),
        )
    return clearance


@writes("dose_clearance_cancel")
def cancel_clearance(
    write: CaseWrite, *, clearance_id: int, data: ClearanceCancel
) -> DoseClearance:
    """Cancel an open clearance whose dose was not taken: it no longer counts as a dose."""
    clearance = get_record(write.session, write.case_id, DoseClearance, clearance_id)
    if not clearance.open:
        raise Conflict(f"Dose clearance {clearance_id} is not open: {_why_closed(clearance)}.")
    clearance.open = False
    clearance.cancelled_at, clearance.cancelled_by = write.now, write.actor.id
    clearance.cancel_reason = data.reason
    write.record("dose_clearance_cancel", clearance)
    return clearance


def _why_closed(clearance: DoseClearance) -> str:
    if not clearance.granted:
        return "it was not granted"
    if clearance.void:
        return f"it is void ({clearance.void_reason})"
    if clearance.cancelled_at is not None:
        return "it was cancelled"
    return "a dosing session used it"


# -- sessions -----------------------------------------------------------------------------


@writes("session")
def record_session(write: CaseWrite, *, data: SessionCreate) -> CareSession:
    """Record a session; a dosing one is the dose record, kept with its deviations."""
    case = write.case
    if case.state == "on_hold" and case.held_from not in DOSING_STATES:
        raise Conflict(
            f"A session is not recorded on a case held from {case.held_from}; only on one "
            "held from integration or monitoring."
        )
    check_fields(data)
    for name in TIMES:
        if (value := getattr(data, name)) is not None:
            not_future(value, write.now, name, write.case)
    care_session = CareSession(case_id=write.case_id, created_at=write.now, **data.model_dump())
    if data.kind != "dosing":
        write.record("session", care_session)
        return care_session
    clearance = _named_clearance(write, data)
    if write.facts.monitor(data.monitor_id or 0) is None:
        raise ValidationFailed.field(("monitor_id",), "No such treatment monitor on this case.")
    check_units_on_hand(write, data)
    care_session.deviations = deviations(write, data, clearance)
    if clearance is not None and "clearance.used" not in care_session.deviations:
        _use(clearance, data)
    write.record("session", care_session)
    _review(write, care_session, clearance)
    safety.after_session(write, care_session)
    return care_session


def check_fields(data: SessionCreate) -> None:
    """A 422 naming each field a session of its kind lacks, or may not take."""
    given = data.model_dump(exclude_none=True)
    if data.kind != "dosing":
        errors = [
            _error(n, f"only a dosing session takes {n}") for n in DOSING_FIELDS if n in given
        ]
    else:
        errors = _dosing_errors(data, given)
    if errors:
        detail = f"The {data.kind} session cannot be recorded: {errors[0]['msg']}."
        raise ValidationFailed(detail, errors)


def _dosing_errors(data: SessionCreate, given: dict[str, object]) -> list[dict[str, object]]:
    errors = [_error(n, "Field required", "missing") for n in DOSING_REQUIRED if n not in given]
    for reading, names in READINGS.items():
        if 0 < sum(n in given for n in names) < len(names):
            needs = f"the {reading} reading needs {', '.join(names)}"
            errors += [_error(n, needs) for n in names if n not in given]
    if "recheck_taken_at" in given and "post_taken_at" not in given:
        errors.append(_error("post_taken_at", "a recheck follows a post-dose reading"))
    if data.dosed_at is not None and data.completed_at < data.dosed_at:
        errors.append(_error("completed_at", "completed_at may not be before dosed_at"))
    return errors


def _error(name: str, msg: str, kind: str = "value_error") -> dict[str, object]:
    return {"loc": ["body", name], "msg": msg, "type": kind}


def _named_clearance(write: CaseWrite, data: SessionCreate) -> DoseClearance | None:
    """The clearance the dose names: one of this case's, or a 422."""
    if data.clearance_id is None:
        return None
    try:
        return get_record(write.session, write.case_id, DoseClearance, data.clearance_id)
    except NotFound as exc:
        raise ValidationFailed.field(
            ("clearance_id",), "No such dose clearance on this case."
        ) from exc


def check_units_on_hand(write: CaseWrite, data: SessionCreate) -> None:
    """A dose may not take more units than are on hand (SPEC.md 4.5): a 422, nothing stored."""
    on_hand = write.facts.units_on_hand
    if data.units_taken is not None and data.units_taken > on_hand:
        raise ValidationFailed.field(
            ("units_taken",),
            f"units_taken {data.units_taken} is more than the {on_hand} units on hand: record "
            "the receipt of the dispense first.",
        )


def deviations(write: CaseWrite, data: SessionCreate, clearance: DoseClearance | None) -> list[str]:
    """The rules of SPEC.md 4.4 a dose did not keep, as codes, in the spec's order."""
    assert data.dosed_at is not None and data.dose_mg is not None
    rules, found = write.rules, []
    if clearance is None or not clearance.granted:
        found.append("clearance.absent")
    else:
        found += _clearance_deviations(write, data, clearance)
    current = (write.case.prescription or {}).get("dose_mg")
    if current is None or data.dose_mg > current:
        found.append("dose.above_prescription")
    found += _post_dose_deviations(data, rules)
    if data.completed_at < data.dosed_at + timedelta(minutes=rules.observation_minutes):
        found.append("observation.short")
    return found


def _clearance_deviations(
    write: CaseWrite, data: SessionCreate, clearance: DoseClearance
) -> list[str]:
    assert data.dosed_at is not None and clearance.expires_at is not None
    found = []
    if write.facts.clearance_used(clearance.id or 0):
        found.append("clearance.used")
    if _void_at(clearance, data.dosed_at) or clearance.cancelled_at is not None:
        found.append("clearance.void")
    if not clearance.created_at <= data.dosed_at <= clearance.expires_at:
        found.append("clearance.not_valid_at_dose")
    if clearance.monitor_id != data.monitor_id:
        found.append("monitor.mismatch")
    return found


def _void_at(clearance: DoseClearance, dosed_at: datetime) -> bool:
    """Whether the clearance was void when the dose was taken: nothing after a dose voids it."""
    return clearance.void and clearance.voided_at is not None and clearance.voided_at <= dosed_at


def _post_dose_deviations(data: SessionCreate, rules: Settings) -> list[str]:
    assert data.dosed_at is not None
    if data.post_taken_at is None:
        return ["post_dose.missing"]
    found = []
    earliest = data.dosed_at + timedelta(minutes=rules.post_dose_bp_min_minutes)
    latest = data.dosed_at + timedelta(minutes=rules.post_dose_bp_max_minutes)
    if not earliest <= data.post_taken_at <= latest:
        found.append("post_dose.window")
    assert data.post_systolic is not None and data.post_diastolic is not None
    limit = (rules.bp_limit_systolic, rules.bp_limit_diastolic)
    if not below_limit(data.post_systolic, data.post_diastolic, limit):
        recheck = data.recheck_taken_at
        if recheck is None or not data.post_taken_at < recheck <= data.completed_at:
            found.append("recheck.missing")
    return found


def _use(clearance: DoseClearance, data: SessionCreate) -> None:
    """The dose uses the clearance: it is no longer open. A void that came only after the
    dose was taken never applied to it (its ``voided_at`` and reason stay on record)."""
    assert data.dosed_at is not None
    if clearance.void and not _void_at(clearance, data.dosed_at):
        clearance.void = False
    clearance.open = False


def _review(write: CaseWrite, dose: CareSession, clearance: DoseClearance | None) -> None:
    """The adverse events a dose record calls for: its deviations, and a blood-pressure rise."""
    if dose.deviations:
        safety.record_system_event(
            write,
            kind="other",
            severity="moderate",
            description=f"dosing deviation: {', '.join(dose.deviations)} (session #{dose.id})",
        )
    severity = post_dose_rise(dose, clearance, write.rules)
    if severity is not None:
        safety.record_system_event(
            write,
            kind="blood_pressure_increase",
            severity=severity,
            description=f"Post-dose blood pressure rise after session #{dose.id}.",
        )


def post_dose_rise(
    dose: CareSession, clearance: DoseClearance | None, rules: Settings
) -> str | None:
    """``severe`` for a post-dose reading at or above the crisis limit, ``moderate`` for a rise
    of ``bp_rise_*`` over the clearance's reading, else None (the recheck counts too)."""
    readings = [
        (dose.post_systolic, dose.post_diastolic),
        (dose.recheck_systolic, dose.recheck_diastolic),
    ]
    found = None
    for systolic, diastolic in readings:
        if systolic is None or diastolic is None:
            continue
        if is_crisis(systolic, diastolic, rules):
            return "severe"
        if clearance is not None and (
            systolic - clearance.systolic >= rules.bp_rise_systolic
            or diastolic - clearance.diastolic >= rules.bp_rise_diastolic
        ):
            found = "moderate"
    return found
