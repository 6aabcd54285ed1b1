"""The medication list, interaction screenings and tapers.

Any change to the list bumps the case's ``medication_list_version``, which
makes every earlier screening stale (``screening.interactions``).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models.facts import InteractionScreening, Medication, Taper
from models.schemas import (
    MedicationCreate,
    MedicationUpdate,
    ScreeningCreate,
    TaperConfirm,
    TaperCreate,
)
from workflow import drugs
from workflow.casefacts import CaseFacts
from workflow.definition import Actor
from workflow.errors import Conflict, ValidationFailed
from workflow.records import finish_write, get_record, open_write


def add_medication(
    session: Session,
    *,
    case_id: int,
    data: MedicationCreate,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Medication:
    """Add a medication, classified from the drug table."""
    case = open_write(session, case_id, "medication", actor, expected_version)
    medication = Medication(
        case_id=case_id,
        drug_class=drugs.classify(data.name),
        created_at=now,
        updated_at=now,
        **data.model_dump(),
    )
    changes = {"medication_list_version": case.medication_list_version + 1}
    finish_write(session, case, actor, now, "medication", medication, **changes)
    return medication


def update_medication(
    session: Session,
    *,
    case_id: int,
    medication_id: int,
    data: MedicationUpdate,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Medication:
    """Mark a medication active or stopped."""
    case = open_write(session, case_id, "medication_update", actor, expected_version)
    medication = get_record(session, case_id, Medication, medication_id)
    changes = {}
    if medication.status != data.status:
        medication.status, medication.updated_at = data.status, now
        changes["medication_list_version"] = case.medication_list_version + 1
    finish_write(session, case, actor, now, "medication_update", medication, **changes)
    return medication


def screen_interactions(
    session: Session,
    *,
    case_id: int,
    data: ScreeningCreate,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> InteractionScreening:
    """A clinician screens the active medication list against the interaction table."""
    case = open_write(session, case_id, "interaction_screening", actor, expected_version)
    medications = CaseFacts(case=case, now=now, session=session).medications
    findings, result = drugs.screen(medications)
    screening = InteractionScreening(
        case_id=case_id,
        clinician_id=actor.id,
        medication_list_version=case.medication_list_version,
        result=str(result),
        findings=findings,
        notes=data.notes,
        created_at=now,
    )
    finish_write(session, case, actor, now, "interaction_screening", screening)
    return screening


def plan_taper(
    session: Session,
    *,
    case_id: int,
    data: TaperCreate,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Taper:
    """A clinician plans the taper of a medication on the case's list."""
    case = open_write(session, case_id, "taper", actor, expected_version)
    medication = session.get(Medication, data.medication_id)
    if medication is None or medication.case_id != case_id:
        raise ValidationFailed.field(("medication_id",), "No such medication on this case.")
    if medication.status != "active":
        raise Conflict(f"Medication {medication.id} is already stopped.")
    open_tapers = CaseFacts(case=case, now=now, session=session).tapers
    if any(t.medication_id == medication.id and t.confirmed_at is None for t in open_tapers):
        raise Conflict(f"Medication {medication.id} already has a taper in progress.")
    taper = Taper(case_id=case_id, planned_by=actor.id, created_at=now, **data.model_dump())
    finish_write(session, case, actor, now, "taper", taper)
    return taper


def confirm_taper(
    session: Session,
    *,
    case_id: int,
    taper_id: int,
    data: TaperConfirm,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Taper:
    """A clinician confirms a taper complete; the medication is stopped."""
    case = open_write(session, case_id, "taper_confirm", actor, expected_version)
    taper = get_record(session, case_id, Taper, taper_id)
    if taper.confirmed_at is not None:
        raise Conflict(f"Taper {taper_id} is already confirmed.")
    if data.last_dose_on > now.date():
        raise ValidationFailed.field(("last_dose_on",), "last_dose_on is in the future.")
    taper.confirmed_at, taper.confirmed_by, taper.last_dose_on = now, actor.id, data.last_dose_on
    medication = get_record(session, case_id, Medication, taper.medication_id)
    changes = {}
    if medication.status != "stopped":
        medication.status, medication.updated_at = "stopped", now
        changes["medication_list_version"] = case.medication_list_version + 1
    finish_write(session, case, actor, now, "taper_confirm", taper, **changes)
    return taper
