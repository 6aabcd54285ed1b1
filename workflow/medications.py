"""The medication list, interaction screenings and tapers (SPEC.md 4.3).

Any change to the list bumps the case's ``medication_list_version``, which
makes every earlier screening stale (``screening.interactions``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from models.facts import InteractionScreening, Medication, Taper
from models.schemas import (
    MedicationCreate,
    MedicationUpdate,
    ScreeningCreate,
    TaperConfirm,
    TaperCreate,
)
from models.settings import Settings, settings
from workflow import drugs, guards, safety
from workflow.casefacts import CaseFacts
from workflow.definition import CLINICIAN, Actor
from workflow.errors import Conflict, Forbidden, ValidationFailed
from workflow.records import get_record
from workflow.unit import CaseWrite, writes


def _today(now: datetime) -> date:
    return now.date()


def _not_future(day: date, now: datetime, field: str) -> date:
    if day > _today(now):
        raise ValidationFailed.field((field,), f"{field} is in the future.")
    return day


def _classify(medication: Medication) -> None:
    found = drugs.classes_of(medication, drugs.current_table(settings))
    medication.drug_classes, medication.drug_class = list(found.drug_classes), found.drug_class


@writes("medication")
def add_medication(write: CaseWrite, *, data: MedicationCreate) -> Medication:
    """Add a medication, classified from the drug table; ``stopped`` if already stopped."""
    case, case_id, now = write.case, write.case_id, write.now
    stopped_on = None
    if data.status == "stopped":
        stopped_on = _not_future(data.stopped_on or _today(now), now, "stopped_on")
    found = drugs.classify_name(data.name, drugs.current_table(settings))
    medication = Medication(
        case_id=case_id,
        drug_class=found.drug_class,
        drug_classes=list(found.drug_classes),
        created_at=now,
        updated_at=now,
        **data.model_dump(exclude={"stopped_on"}),
        stopped_on=stopped_on,
    )
    changes = {"medication_list_version": case.medication_list_version + 1}
    write.record("medication", medication, changes)
    safety.after_medication(write, medication, was_active=False)
    return medication


def _guarded_classes(medication: Medication) -> list[str]:
    table = drugs.current_table(settings)
    found = drugs.classes_of(medication, table)
    return [c for c in found.drug_classes if c in drugs.TAPER_CLASSES or table.is_watched(c)]


@writes("medication_update")
def update_medication(
    write: CaseWrite, *, medication_id: int, data: MedicationUpdate
) -> Medication:
    """Mark a medication active or stopped; a clinician may classify an unknown name."""
    session, case, case_id = write.session, write.case, write.case_id
    actor, now = write.actor, write.now
    medication = get_record(session, case_id, Medication, medication_id)
    before = (medication.status, medication.stopped_on, list(medication.drug_classes))
    if data.drug_class is not None:
        _set_class(medication, data, actor)
    if data.status == "stopped" and medication.status != "stopped":
        _only_a_clinician_stops(medication, actor, "stop")
        medication.stopped_on = _not_future(data.stopped_on or _today(now), now, "stopped_on")
        medication.status = "stopped"
    elif data.status == "active" and medication.status != "active":
        medication.status, medication.stopped_on = "active", None
        _end_tapers(session, medication, now)
    elif data.status == "stopped" and data.stopped_on not in (None, medication.stopped_on):
        # The stop date starts the washout: moving it is stopping again.
        _only_a_clinician_stops(medication, actor, "change the stop date of")
        medication.stopped_on = _not_future(data.stopped_on, now, "stopped_on")
    _classify(medication)
    changes = {}
    if (medication.status, medication.stopped_on, medication.drug_classes) != before:
        medication.updated_at = now
        changes["medication_list_version"] = case.medication_list_version + 1
    write.record("medication_update", medication, changes)
    safety.after_medication(write, medication, was_active=before[0] == "active")
    return medication


def _only_a_clinician_stops(medication: Medication, actor: Actor, action: str) -> None:
    """Refuse anyone but a clinician who would stop a taper-required or blocking medication,
    or move the day it was stopped (SPEC.md 4.3)."""
    guarded = _guarded_classes(medication)
    if guarded and actor.role != CLINICIAN:
        raise Forbidden(
            f"Only a clinician may {action} {medication.name} ({', '.join(guarded)}): "
            "a taper-required or blocking medication."
        )


def _set_class(medication: Medication, data: MedicationUpdate, actor: Actor) -> None:
    if actor.role != CLINICIAN:
        raise Forbidden("Only a clinician may classify a medication.")
    table = drugs.current_table(settings)
    if data.drug_class not in table.interactions or data.drug_class == drugs.UNKNOWN:
        known = ", ".join(c for c in table.interactions if c != drugs.UNKNOWN)
        raise ValidationFailed.field(("drug_class",), f"drug_class must be one of: {known}.")
    found = drugs.classify_name(medication.name, table)
    if drugs.UNKNOWN not in found.drug_classes:
        raise Conflict(
            f"The drug table already classifies {medication.name!r} as "
            f"{', '.join(found.drug_classes)}; a clinician classifies only unknown names."
        )
    table_classes = [c for c in found.drug_classes if c != drugs.UNKNOWN]
    medication.drug_classes = list(dict.fromkeys([*table_classes, data.drug_class]))
    medication.class_reason, medication.class_set_by = data.class_reason, actor.id


def _end_tapers(session: Session, medication: Medication, now: datetime) -> None:
    query = select(Taper).where(Taper.medication_id == medication.id, col(Taper.ended_at).is_(None))
    for taper in session.exec(query).all():
        taper.ended_at = now
        session.add(taper)


def last_taken(medications: list[Medication], tapers: list[Taper]) -> dict[int, date]:
    """Each stopped medication's last dose: the later of ``stopped_on`` and its taper's."""
    result: dict[int, date] = {}
    for medication in medications:
        days = [medication.stopped_on] + [
            t.last_dose_on
            for t in tapers
            if t.medication_id == medication.id and t.confirmed_at and t.ended_at is None
        ]
        known = [d for d in days if d is not None]
        if known and medication.id is not None:
            result[medication.id] = max(known)
    return result


@writes("interaction_screening")
def screen_interactions(write: CaseWrite, *, data: ScreeningCreate) -> InteractionScreening:
    """A clinician screens the medication list against the current drug table.

    Every medication is classified again first, so a name the table has since
    learnt is no longer ``unknown``.
    """
    session, case, case_id = write.session, write.case, write.case_id
    actor, now = write.actor, write.now
    facts = write.facts
    table = drugs.current_table(settings)
    for medication in facts.medications:
        _classify(medication)
        session.add(medication)
    findings, result = drugs.screen(
        facts.medications,
        today=_today(now),
        last_taken=last_taken(facts.medications, facts.tapers),
        table=table,
    )
    screening = InteractionScreening(
        case_id=case_id,
        clinician_id=actor.id,
        medication_list_version=case.medication_list_version,
        result=str(result),
        findings=findings,
        notes=data.notes,
        drug_table_version=table.version,
        created_at=now,
    )
    write.record("interaction_screening", screening)
    return screening


@writes("taper")
def plan_taper(write: CaseWrite, *, data: TaperCreate) -> Taper:
    """A clinician plans the taper of a medication on the case's list."""
    session, case_id = write.session, write.case_id
    actor, now = write.actor, write.now
    medication = session.get(Medication, data.medication_id)
    if medication is None or medication.case_id != case_id:
        raise ValidationFailed.field(("medication_id",), "No such medication on this case.")
    if "antiseizure_benzodiazepine" in medication.drug_classes:
        raise Conflict(
            f"{medication.name} is taken for seizures: refer the patient, do not taper it."
        )
    open_tapers = write.facts.tapers
    if any(
        t.medication_id == medication.id and t.confirmed_at is None and t.ended_at is None
        for t in open_tapers
    ):
        raise Conflict(f"Medication {medication.id} already has a taper in progress.")
    taper = Taper(
        case_id=case_id,
        planned_by=actor.id,
        active_when_planned=medication.status == "active",
        created_at=now,
        **data.model_dump(),
    )
    write.record("taper", taper)
    return taper


def _check_last_dose(
    taper: Taper, medication: Medication, day: date, rules: Settings, now: datetime
) -> date:
    """``last_dose_on`` within SPEC.md 4.3's limits, or a 422 naming it.

    Never in the future; for a medication active when the taper was planned, not
    before the plan's date; for one already stopped then, on or before its
    ``stopped_on`` (the clinician attests a last dose that was already past).
    """
    field = ("last_dose_on",)
    if day > rules.today(now):
        raise ValidationFailed.field(field, "last_dose_on is in the future.")
    planned_on = rules.today(taper.created_at)
    if taper.active_when_planned and day < planned_on:
        raise ValidationFailed.field(
            field,
            f"last_dose_on is before the taper was planned on {planned_on}, "
            f"when {medication.name} was still taken.",
        )
    stopped_on = medication.stopped_on
    if not taper.active_when_planned and stopped_on is not None and day > stopped_on:
        raise ValidationFailed.field(
            field, f"last_dose_on is after {medication.name} was stopped on {stopped_on}."
        )
    return day


@writes("taper_confirm")
def confirm_taper(write: CaseWrite, *, taper_id: int, data: TaperConfirm) -> Taper:
    """A clinician confirms a taper complete; the medication is stopped."""
    session, case, case_id = write.session, write.case, write.case_id
    actor, now = write.actor, write.now
    taper = get_record(session, case_id, Taper, taper_id)
    if taper.confirmed_at is not None:
        raise Conflict(f"Taper {taper_id} is already confirmed.")
    if taper.ended_at is not None:
        raise Conflict(f"Taper {taper_id} ended when its medication was made active again.")
    medication = get_record(session, case_id, Medication, taper.medication_id)
    last_dose_on = _check_last_dose(taper, medication, data.last_dose_on, write.rules, now)
    taper.confirmed_at, taper.confirmed_by, taper.last_dose_on = now, actor.id, last_dose_on
    before = (medication.status, medication.stopped_on)
    medication.status = "stopped"
    # The last dose is the stop date, unless an earlier one is recorded.
    if medication.stopped_on is None or medication.stopped_on > last_dose_on:
        medication.stopped_on = last_dose_on
    changes = {}
    if (medication.status, medication.stopped_on) != before:  # the list changed
        medication.updated_at = now
        changes["medication_list_version"] = case.medication_list_version + 1
    write.record("taper_confirm", taper, changes)
    return taper


def washout_ends(facts: CaseFacts, medication: Medication) -> date | None:
    """The day a stopped medication's washout is over (SPEC.md 4.3 and ``taper.washout``):
    its last dose (``guards.last_taken``) plus its ``washout_days`` from the drug table.
    None while it is active or has no stop date."""
    if medication.status == "active":
        return None
    last = guards.last_taken(facts, medication)
    if last is None:
        return None
    return last + timedelta(days=drugs.washout_days(medication, drugs.current_table(facts.rules)))
