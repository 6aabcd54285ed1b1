"""The service's own safety rules (SPEC.md section 4).

- A severe adverse event, or any respiratory depression or suicidal ideation,
  puts an active case on hold at once, with actor ``system``.
- A PHQ-9 whose item 9 (self-harm) is 1 or more records suicidal ideation.
- An ISI after the first dose, 6 or more points above the baseline ISI,
  records worsened insomnia.
"""

from __future__ import annotations

from models.facts import AdverseEvent, Assessment
from models.schemas import TransitionBody
from workflow.definition import ACTIVE_STATES, SYSTEM_ACTOR, TRIGGER_BY_NAME
from workflow.guards import first_dosing_at
from workflow.unit import CaseWrite

ALWAYS_HOLD = frozenset({"respiratory_depression", "suicidal_ideation"})


def needs_hold(event: AdverseEvent) -> bool:
    """Whether ``event`` must put the case on hold."""
    return event.severity == "severe" or event.kind in ALWAYS_HOLD


def hold_if_needed(write: CaseWrite, event: AdverseEvent) -> None:
    """Put an active case on hold, as the system, when ``event`` calls for it."""
    if not needs_hold(event) or write.case.state not in ACTIVE_STATES:
        return
    reason = f"Adverse event #{event.id} ({event.kind}, {event.severity}) needs clinical review."
    write.fire(TRIGGER_BY_NAME["hold"], TransitionBody(reason=reason), actor=SYSTEM_ACTOR)


def record_system_event(
    write: CaseWrite, *, kind: str, severity: str, description: str
) -> AdverseEvent:
    """Record an adverse event the service itself found, and act on it."""
    event = AdverseEvent(
        case_id=write.case_id,
        kind=kind,
        severity=severity,
        description=description,
        recorded_by_system=True,
        created_at=write.now,
    )
    write.record("adverse_event", event, actor=SYSTEM_ACTOR)
    hold_if_needed(write, event)
    return event


def after_assessment(write: CaseWrite, assessment: Assessment) -> None:
    """Apply the PHQ-9 item 9 and worsened-insomnia rules to a new assessment."""
    rules = write.rules
    if assessment.instrument == "phq9" and (assessment.item9 or 0) >= rules.phq9_item9_min:
        record_system_event(
            write,
            kind="suicidal_ideation",
            severity="severe",
            description=f"PHQ-9 #{assessment.id} item 9 scored {assessment.item9}.",
        )
    if assessment.instrument == "isi":
        _check_isi(write, assessment)


def _check_isi(write: CaseWrite, isi: Assessment) -> None:
    first_dose = first_dosing_at(write.facts)
    if first_dose is None or isi.taken_at <= first_dose:
        return
    baseline = write.facts.latest_assessment_before("isi", first_dose)
    if baseline is None or isi.score < baseline.score + write.rules.isi_worsening_points:
        return
    record_system_event(
        write,
        kind="worsened_insomnia",
        severity="moderate",
        description=(
            f"ISI #{isi.id} scored {isi.score}, "
            f"{isi.score - baseline.score} above the baseline of {baseline.score}."
        ),
    )
