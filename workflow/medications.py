"""The medication list, interaction screenings and tapers.

Any change to the list bumps the case's ``medication_list_version``, which
makes every earlier screening stale (``screening.interactions``).
"""

from __future__ import annotations

from typing import Any

from models.facts import InteractionScreening, Medication, Taper
from models.schemas import (
    MedicationCreate,
    MedicationUpdate,
    ScreeningCreate,
    TaperConfirm,
    TaperCreate,
)
from workflow import drugs
from workflow.errors import Conflict, ValidationFailed
from workflow.records import get_record
from workflow.unit import CaseWrite, writes


@writes("medication")
def add_medication(write: CaseWrite, *, data: MedicationCreate) -> Medication:
    """Add a medication, classified from the drug table."""
    medication = Medication(
        case_id=write.case_id,
        drug_class=drugs.classify(data.name),
        created_at=write.now,
        updated_at=write.now,
        **data.model_dump(),
    )
    changes: dict[str, Any] = {"medication_list_version": write.case.medication_list_version + 1}
    write.record("medication", medication, **changes)
    return medication


@writes("medication_update")
def update_medication(
    write: CaseWrite, *, medication_id: int, data: MedicationUpdate
) -> Medication:
    """Mark a medication active or stopped."""
    medication = get_record(write.session, write.case_id, Medication, medication_id)
    changes: dict[str, Any] = {}
    if medication.status != data.status:
        medication.status, medication.updated_at = data.status, write.now
        changes["medication_list_version"] = write.case.medication_list_version + 1
    write.record("medication_update", medication, **changes)
    return medication


@writes("interaction_screening")
def screen_interactions(write: CaseWrite, *, data: ScreeningCreate) -> InteractionScreening:
    """A clinician screens the active medication list against the interaction table."""
    findings, result = drugs.screen(write.facts.medications)
    screening = InteractionScreening(
        case_id=write.case_id,
        clinician_id=write.actor.id,
        medication_list_version=write.case.medication_list_version,
        result=str(result),
        findings=findings,
        notes=data.notes,
        created_at=write.now,
    )
    write.record("interaction_screening", screening)
    return screening


@writes("taper")
def plan_taper(write: CaseWrite, *, data: TaperCreate) -> Taper:
    """A clinician plans the taper of a medication on the case's list."""
    medication = write.session.get(Medication, data.medication_id)
    if medication is None or medication.case_id != write.case_id:
        raise ValidationFailed.field(("medication_id",), "No such medication on this case.")
    if medication.status != "active":
        raise Conflict(f"Medication {medication.id} is already stopped.")
    open_tapers = write.facts.tapers
    if any(t.medication_id == medication.id and t.confirmed_at is None for t in open_tapers):
        raise Conflict(f"Medication {medication.id} already has a taper in progress.")
    taper = Taper(
        case_id=write.case_id, planned_by=write.actor.id, created_at=write.now, **data.model_dump()
    )
    write.record("taper", taper)
    return taper


@writes("taper_confirm")
def confirm_taper(write: CaseWrite, *, taper_id: int, data: TaperConfirm) -> Taper:
    """A clinician confirms a taper complete; the medication is stopped."""
    now = write.now
    taper = get_record(write.session, write.case_id, Taper, taper_id)
    if taper.confirmed_at is not None:
        raise Conflict(f"Taper {taper_id} is already confirmed.")
    if data.last_dose_on > now.date():
        raise ValidationFailed.field(("last_dose_on",), "last_dose_on is in the future.")
    taper.confirmed_at, taper.confirmed_by = now, write.actor.id
    taper.last_dose_on = data.last_dose_on
    medication = get_record(write.session, write.case_id, Medication, taper.medication_id)
    changes: dict[str, Any] = {}
    if medication.status != "stopped":
        medication.status, medication.updated_at = "stopped", now
        changes["medication_list_version"] = write.case.medication_list_version + 1
    write.record("taper_confirm", taper, **changes)
    return taper
