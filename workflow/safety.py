"""The service's own safety rules, applied (SPEC.md 4.6); the rules themselves are the tables
of ``workflow.risk``.

- An event that holds (``risk.holds``) puts an active case on hold at once, actor
  ``system``, whoever recorded it.
- Whenever an assessment, a dosing session or a medication change is recorded,
  late entries included, the service records what the rules find: suicidal
  ideation from a PHQ-9's item 9, worsened insomnia or depression against the
  baselines, a hypnotic restarted, an interacting medication added.
- An event found in an assessment names it (``assessment_id``): the database
  keeps one event of a kind per assessment, and a score once flagged is not
  read again.
"""

from __future__ import annotations

from datetime import datetime

from models.facts import AdverseEvent, Assessment, CareSession, Medication
from models.schemas import TransitionBody
from models.tables import CLOSED_PHASE
from workflow import drugs, risk
from workflow.definition import ACTIVE_STATES, SYSTEM_ACTOR, TRIGGER_BY_NAME
from workflow.guards import baseline_assessment, first_dosing_at
from workflow.unit import CaseWrite

NAMES = {"phq9": "PHQ-9", "gad7": "GAD-7", "isi": "ISI"}


def needs_hold(event: AdverseEvent) -> bool:
    """Whether ``event`` puts an active case on hold (``workflow.risk.EVENT_KINDS``)."""
    return risk.holds(event.kind, event.severity)


def hold_if_needed(write: CaseWrite, event: AdverseEvent) -> None:
    """Put an active case on hold, as the system, when ``event`` calls for it."""
    if not needs_hold(event) or write.case.state not in ACTIVE_STATES:
        return
    reason = f"Adverse event #{event.id} ({event.kind}, {event.severity}) needs clinical review."
    write.fire(TRIGGER_BY_NAME["hold"], TransitionBody(reason=reason), actor=SYSTEM_ACTOR)


def record_system_event(
    write: CaseWrite,
    *,
    kind: str,
    severity: str,
    description: str,
    onset_at: datetime | None = None,
    assessment: Assessment | None = None,
) -> AdverseEvent:
    """Record an adverse event the service itself found, and act on it.

    ``onset_at``: the time of the fact that caused it (default: now).
    """
    event = AdverseEvent(
        case_id=write.case_id,
        kind=kind,
        severity=severity,
        description=description,
        onset_at=onset_at or write.now,
        recorded_by_system=True,
        assessment_id=None if assessment is None else assessment.id,
        created_at=write.now,
    )
    write.record("adverse_event", event, actor=SYSTEM_ACTOR)
    hold_if_needed(write, event)
    return event


# -- when facts are recorded -------------------------------------------------------------------


def after_assessment(write: CaseWrite, assessment: Assessment) -> None:
    """A new assessment: its item 9, then every score against the baselines."""
    _suicide_item(write, assessment)
    check_scores(write)


def after_session(write: CaseWrite, care_session: CareSession) -> None:
    """A dosing session, even one entered late, may move the first dose: check every score."""
    if care_session.kind == "dosing":
        check_scores(write)


def after_medication(write: CaseWrite, medication: Medication, *, was_active: bool) -> None:
    """A medication added or changed: the medication rules, then every score."""
    if medication.status == "active" and not was_active:
        _medication_rules(write, medication)
    check_scores(write)


def _suicide_item(write: CaseWrite, phq9: Assessment) -> None:
    rule = risk.SUICIDE_ITEM
    if phq9.instrument != "phq9" or phq9.item9 is None or not rule.fires(phq9.item9, write.rules):
        return
    if phq9.id is None or write.facts.has_event_for(phq9.id, rule.kind):
        return
    record_system_event(
        write,
        kind=rule.kind,
        severity=rule.severity(phq9.item9),
        description=f"PHQ-9 #{phq9.id} item 9 scored {phq9.item9}.",
        onset_at=phq9.taken_at,
        assessment=phq9,
    )


def check_scores(write: CaseWrite) -> None:
    """Every score after the first dose against its baseline (``risk.WORSENING``).

    Reads only the scores at or above the threshold that no event names yet, so a
    late baseline or a late first dose is caught, and nothing is recorded twice.
    """
    first_dose = first_dosing_at(write.facts)
    if first_dose is None:
        return
    for rule in risk.WORSENING:
        baseline = baseline_assessment(write.facts, rule.instrument)
        if baseline is None:
            continue
        at_least = rule.threshold(baseline.score, write.rules)
        found = write.facts.unflagged_scores(
            rule.instrument, after=first_dose, at_least=at_least, kind=rule.kind
        )
        for score in list(found):
            name = NAMES[rule.instrument]
            record_system_event(
                write,
                kind=rule.kind,
                severity="moderate",
                description=(
                    f"{name} #{score.id} scored {score.score}, {score.score - baseline.score} "
                    f"above the baseline of {baseline.score} (#{baseline.id})."
                ),
                onset_at=score.taken_at,
                assessment=score,
            )


def _medication_rules(write: CaseWrite, medication: Medication) -> None:
    """``risk.MEDICATION_RULES``: each only on an approved case, some only on an open one."""
    if not write.facts.approved:
        return
    table = drugs.current_table(write.rules)
    closed = write.case.phase == CLOSED_PHASE
    for rule in risk.MEDICATION_RULES:
        found = [c for c in medication.drug_classes if c in rule.classes(table)]
        if not found or (rule.open_case_only and closed):
            continue
        record_system_event(
            write,
            kind=rule.kind,
            severity="moderate",
            description=rule.describe(medication.name, found),
        )
