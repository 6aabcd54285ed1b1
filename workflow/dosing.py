"""Pre-dose clearances and treatment sessions."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from models.facts import CareSession, DoseClearance
from models.schemas import ClearanceCreate, SessionCreate
from models.settings import Settings
from models.tables import Case
from workflow import safety
from workflow.casefacts import CaseFacts
from workflow.definition import DOSING_STATES
from workflow.errors import NotFound, ValidationFailed
from workflow.guards import Unmet, evaluate
from workflow.records import get_record, not_future
from workflow.unit import CaseWrite, writes


def clearance_unmet(
    case: Case, data: ClearanceCreate, facts: CaseFacts, rules: Settings
) -> list[Unmet]:
    """Every reason a dose may not be cleared now."""
    unmet = []
    if case.state not in DOSING_STATES:
        unmet.append(
            Unmet(
                "clearance.state",
                f"Doses are cleared only in integration or monitoring, not {case.state}.",
            )
        )
    if data.systolic >= rules.bp_limit_systolic or data.diastolic >= rules.bp_limit_diastolic:
        unmet.append(
            Unmet(
                "clearance.blood_pressure",
                f"Blood pressure {data.systolic}/{data.diastolic} must be below "
                f"{rules.bp_limit_systolic}/{rules.bp_limit_diastolic} to dose.",
            )
        )
    if not data.monitor_present:
        unmet.append(Unmet("clearance.monitor", "A treatment monitor must be with the patient."))
    return unmet + evaluate(("adverse_events.resolved", "screening.interactions"), facts)


@writes("dose_clearance")
def request_clearance(write: CaseWrite, *, data: ClearanceCreate) -> DoseClearance:
    """Check a pre-dose reading; a granted clearance is valid for a short window."""
    rules, now = write.rules, write.now
    unmet = clearance_unmet(write.case, data, write.facts, rules)
    clearance = DoseClearance(
        case_id=write.case_id,
        granted=not unmet,
        unmet=[u.as_dict() for u in unmet],
        expires_at=None if unmet else now + timedelta(minutes=rules.clearance_valid_minutes),
        recorded_by=write.actor.id,
        created_at=now,
        **data.model_dump(),
    )
    write.record("dose_clearance", clearance)
    return clearance


@writes("session")
def record_session(write: CaseWrite, *, data: SessionCreate) -> CareSession:
    """Record a completed session; a dosing one must use a granted, unexpired, unused clearance."""
    not_future(data.completed_at, write.now, "completed_at", write.case)
    if data.kind == "dosing":
        _check_clearance(write.session, write.case_id, data)
    care_session = CareSession(case_id=write.case_id, created_at=write.now, **data.model_dump())
    if data.kind != "dosing":
        care_session.clearance_id = None
    write.record("session", care_session)
    safety.after_session(write, care_session)
    return care_session


def _check_clearance(session: Session, case_id: int, data: SessionCreate) -> None:
    def refuse(msg: str) -> ValidationFailed:
        return ValidationFailed.field(("clearance_id",), msg)

    try:
        clearance = get_record(session, case_id, DoseClearance, data.clearance_id or 0)
    except NotFound as exc:
        raise refuse("No such dose clearance on this case.") from exc
    if not clearance.granted:
        raise refuse(f"Dose clearance {clearance.id} was not granted.")
    if not clearance.created_at <= data.completed_at <= clearance.expires_at:
        raise refuse(f"Dose clearance {clearance.id} was not valid at completed_at.")
    used = session.exec(
        select(CareSession.id).where(CareSession.clearance_id == clearance.id)
    ).first()
    if used is not None:
        raise refuse(f"Dose clearance {clearance.id} was already used by another dosing session.")
