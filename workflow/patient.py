"""The patient's record: clinical history, profile and consent (SPEC.md 4.1).

History and profile are one record each, replaced by ``PUT``. A write that
changes a value bumps the case's ``clinical_version`` (a rewrite of the same
values changes nothing), which is what a dose clearance granted earlier is
checked against. Once the case is approved only a clinician writes them (the
fact table's ``approved_roles``), and a change that newly fails a
``contraindication.*`` code records a severe adverse event, which holds the
case.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models.facts import Consent, History, Profile
from models.schemas import ConsentCreate, HistoryIn, ProfileIn
from workflow import safety
from workflow.cases import get_case
from workflow.definition import CLINICIAN, CONTRAINDICATIONS
from workflow.errors import Forbidden, NotFound, ValidationFailed
from workflow.guards import found_unmet
from workflow.records import not_future
from workflow.unit import CaseWrite, writes


def get_history(session: Session, *, case_id: int) -> History:
    """The case's clinical history, or NotFound."""
    return _one(session, History, case_id, "history")


def get_profile(session: Session, *, case_id: int) -> Profile:
    """The case's patient profile, or NotFound."""
    return _one(session, Profile, case_id, "profile")


def _one(session: Session, model: Any, case_id: int, what: str) -> Any:
    get_case(session, case_id)
    record = session.exec(select(model).where(model.case_id == case_id)).first()
    if record is None:
        raise NotFound(f"No {what} has been recorded on case {case_id}.")
    return record


@writes("history")
def put_history(write: CaseWrite, *, data: HistoryIn) -> History:
    """Record or replace the clinical history."""
    values = data.model_dump(exclude={"insomnia_mood_driven"})
    values["insomnia_mood_driven"] = _mood_driven(write, data, write.facts.history)
    return _put(write, "history", History, write.facts.history, values)


@writes("profile")
def put_profile(write: CaseWrite, *, data: ProfileIn) -> Profile:
    """Record or replace the patient profile: date of birth, pregnancy, breastfeeding."""
    if data.date_of_birth > write.rules.today(write.now):
        raise ValidationFailed.field(("date_of_birth",), "date_of_birth is in the future.")
    return _put(write, "profile", Profile, write.facts.profile, data.model_dump())


@writes("consent")
def record_consent(write: CaseWrite, *, data: ConsentCreate) -> Consent:
    """Record the patient's signed consent to one version of the consent form."""
    not_future(data.signed_at, write.now, "signed_at")
    consent = Consent(
        case_id=write.case_id, recorded_by=write.actor.id, created_at=write.now, **data.model_dump()
    )
    write.record("consent", consent)
    return consent


def _mood_driven(write: CaseWrite, data: HistoryIn, history: History | None) -> bool:
    """``insomnia_mood_driven`` as it will be stored: left out, the recorded value stays.

    It is a clinician's judgement (SPEC.md 4.1): another role may leave it
    false, or keep a clinician's true, but not set it true.
    """
    recorded = history.insomnia_mood_driven if history is not None else False
    wanted = data.insomnia_mood_driven
    if wanted is None:
        return recorded
    if wanted and not recorded and write.actor.role != CLINICIAN:
        raise Forbidden(
            "Only a clinician may judge that the insomnia follows the mood disorder "
            "(insomnia_mood_driven)."
        )
    return wanted


def _put(write: CaseWrite, fact: str, model: type[Any], record: Any, values: dict[str, Any]) -> Any:
    """Store ``values`` as the case's one ``fact`` record, and act on what changed."""
    before = _contraindicated(write)
    if record is None:
        record = model(case_id=write.case_id, created_at=write.now, **values)
        changed = True
    else:
        changed = any(getattr(record, name) != value for name, value in values.items())
        for name, value in values.items():
            setattr(record, name, value)
    changes: dict[str, Any] = {}
    if changed:
        record.updated_at = write.now
        changes["clinical_version"] = write.case.clinical_version + 1
    write.record(fact, record, changes)
    if changed and before is not None:
        _record_new_contraindications(write, before)
    return record


def _contraindicated(write: CaseWrite) -> set[str] | None:
    """The contraindications found on an approved case (None when it is not approved)."""
    if not write.facts.approved:
        return None
    return set(found_unmet(CONTRAINDICATIONS, write.facts))


def _record_new_contraindications(write: CaseWrite, before: set[str]) -> None:
    """A severe adverse event, which holds the case, per contraindication found since."""
    for code in found_unmet(CONTRAINDICATIONS, write.facts):
        if code not in before:
            safety.record_system_event(
                write, kind="other", severity="severe", description=f"new contraindication: {code}"
            )
