"""The service's own safety rules (SPEC.md section 4).

- A severe adverse event, or any respiratory depression or suicidal ideation,
  puts an active case on hold at once, with actor ``system``.
- A PHQ-9 whose item 9 (self-harm) is 1 or more records suicidal ideation.
- An ISI after the first dose, 6 or more points above the baseline ISI,
  records worsened insomnia.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models.facts import AdverseEvent, Assessment
from models.schemas import TransitionBody
from models.settings import Settings, settings
from models.tables import Case
from workflow import hooks
from workflow.audit import append_event, record_id, save_case
from workflow.casefacts import CaseFacts
from workflow.cases import apply_trigger
from workflow.definition import ACTIVE_STATES, SYSTEM_ACTOR, TRIGGER_BY_NAME
from workflow.guards import first_dosing_at

ALWAYS_HOLD = frozenset({"respiratory_depression", "suicidal_ideation"})


def needs_hold(event: AdverseEvent) -> bool:
    """Whether ``event`` must put the case on hold."""
    return event.severity == "severe" or event.kind in ALWAYS_HOLD


def hold_if_needed(session: Session, case: Case, event: AdverseEvent, now: datetime) -> None:
    """Put an active case on hold, as the system, when ``event`` calls for it."""
    if not needs_hold(event) or case.state not in ACTIVE_STATES:
        return
    reason = f"Adverse event #{event.id} ({event.kind}, {event.severity}) needs clinical review."
    apply_trigger(
        session, case, TRIGGER_BY_NAME["hold"], SYSTEM_ACTOR, now, TransitionBody(reason=reason)
    )


def record_system_event(
    session: Session, case: Case, *, kind: str, severity: str, description: str, now: datetime
) -> AdverseEvent:
    """Record an adverse event the service itself found, and act on it."""
    event = AdverseEvent(
        case_id=record_id(case),
        kind=kind,
        severity=severity,
        description=description,
        recorded_by_system=True,
        created_at=now,
    )
    session.add(event)
    session.flush()
    save_case(session, case, now)
    append_event(
        session,
        case,
        SYSTEM_ACTOR,
        now,
        kind="fact",
        data={"fact": "adverse_event", "id": event.id, "record": event.model_dump(mode="json")},
    )
    hooks.fact(session, case, fact="adverse_event", record=event, now=now)
    hold_if_needed(session, case, event, now)
    return event


def after_assessment(
    session: Session, case: Case, assessment: Assessment, now: datetime, rules: Settings = settings
) -> None:
    """Apply the PHQ-9 item 9 and worsened-insomnia rules to a new assessment."""
    if assessment.instrument == "phq9" and (assessment.item9 or 0) >= rules.phq9_item9_min:
        record_system_event(
            session,
            case,
            kind="suicidal_ideation",
            severity="severe",
            description=f"PHQ-9 #{assessment.id} item 9 scored {assessment.item9}.",
            now=now,
        )
    if assessment.instrument == "isi":
        _check_isi(session, case, assessment, now, rules)


def _check_isi(
    session: Session, case: Case, isi: Assessment, now: datetime, rules: Settings
) -> None:
    facts = CaseFacts(case=case, now=now, session=session)
    first_dose = first_dosing_at(facts)
    if first_dose is None or isi.taken_at <= first_dose:
        return
    before = [a for a in facts.assessments if a.instrument == "isi" and a.taken_at <= first_dose]
    baseline = max(before, key=lambda a: (a.taken_at, a.id), default=None)
    if baseline is None or isi.score < baseline.score + rules.isi_worsening_points:
        return
    record_system_event(
        session,
        case,
        kind="worsened_insomnia",
        severity="moderate",
        description=(
            f"ISI #{isi.id} scored {isi.score}, "
            f"{isi.score - baseline.score} above the baseline of {baseline.score}."
        ),
        now=now,
    )
