"""Safety and event reviews (SPEC.md 4.6 and 7): which event opens which, on open and closed
cases alike, and what ends them.

Expectations are written out from the SPEC, not read from ``workflow.risk``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from models.facts import AdverseEvent
from models.reminders import CANCELLED, PENDING
from models.schemas import AdverseEventKind, Severity
from workflow import risk
from workflow.errors import TransitionBlocked

DAY = timedelta(days=1)
KINDS: tuple[str, ...] = get_args(AdverseEventKind)
SEVERITIES: tuple[str, ...] = get_args(Severity)


def spec_holds(kind: str, severity: str) -> bool:
    if severity == "severe" or kind in ("respiratory_depression", "suicidal_ideation"):
        return True
    return severity == "moderate" and kind in ("substance_misuse", "psychiatric_event")


def reviews(reminders, case_id: int) -> set[str]:
    return {"safety_review", "event_review"} & set(reminders.pending(case_id))


def withdrawal_event(clinic, case_id: int, units: int) -> AdverseEvent:
    """The event the service recorded on withdraw for the units left at home (SPEC.md 2)."""
    (event,) = [e for e in clinic.rows(AdverseEvent, case_id) if "units at home" in e.description]
    assert (event.kind, event.severity, event.description) == (
        "other",
        "moderate",
        f"withdrawn with {units} units at home",
    )
    assert event.recorded_by_system and event.resolved_at is None
    return event


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("severity", SEVERITIES)
def test_an_event_staff_record_opens_a_safety_review_when_it_holds_and_nothing_else(
    clinic, reminders, kind, severity
):
    case_id = clinic.open_case()
    at = clinic.tick(minutes=3)
    clinic.adverse_event(case_id, kind, severity)

    if not spec_holds(kind, severity):
        assert reviews(reminders, case_id) == set()
        return
    assert reviews(reminders, case_id) == {"safety_review"}
    review = reminders.pending(case_id)["safety_review"]
    assert (review.due_at, review.recipient_role) == (at, "clinician")  # due at once


def test_the_table_s_reviews_are_the_spec_s():
    """Each review row alone: a held event (by anyone) or another the service recorded."""

    def event(kind: str, severity: str, by_system: bool) -> AdverseEvent:
        return AdverseEvent(
            case_id=1,
            kind=kind,
            severity=severity,
            description="x",
            onset_at=datetime(2026, 11, 2, tzinfo=UTC),
            recorded_by_system=by_system,
        )

    for kind in KINDS:
        for severity in SEVERITIES:
            for by_system in (False, True):
                expected = (
                    "safety_review"
                    if spec_holds(kind, severity)
                    else ("event_review" if by_system else None)
                )
                assert risk.review_for(event(kind, severity, by_system)) == expected


@pytest.mark.parametrize("closed", ["discharged", "withdrawn", "ineligible"])
def test_suicidal_ideation_after_the_case_closed_reaches_a_clinician_at_once(
    clinic, reminders, closed
):
    case_id = clinic.case_in(closed)
    assert reviews(reminders, case_id) == set()
    at = clinic.tick(days=3)

    event = clinic.adverse_event(case_id, "suicidal_ideation", "moderate")

    review = reminders.pending(case_id)["safety_review"]
    assert (review.due_at, review.recipient_role, review.status) == (at, "clinician", PENDING)
    assert clinic.case(case_id).state == closed  # recorded, not held: the case is closed
    clinic.resolve(case_id, event.id)
    assert reminders.rows(case_id, kind="safety_review")[0].status == CANCELLED


def test_no_discharge_while_a_safety_review_s_event_is_unresolved(clinic, reminders):
    case_id = clinic.case_in("monitoring")
    clinic.reconcile(case_id)  # medication.reconciled met: every unit returned
    event = clinic.adverse_event(case_id, "dizziness", "severe")  # holds, opens a review
    review = reminders.pending(case_id)["safety_review"]
    before = clinic.snapshot(case_id)

    with pytest.raises(TransitionBlocked) as refused:
        clinic.fire(case_id, "discharge")  # from the hold that began in monitoring

    assert [u.code for u in refused.value.unmet] == ["adverse_events.resolved"]
    assert clinic.snapshot(case_id) == before
    assert reminders.get(review.id).status == PENDING
    clinic.resolve(case_id, event.id)
    assert reminders.get(review.id).status == CANCELLED
    assert clinic.fire(case_id, "discharge").state == "discharged"


def test_a_safety_review_on_a_discharged_case_is_delivered_and_stays_open(clinic, reminders):
    """Closing ended the case's other reminders; this one repeats until its event is resolved."""
    case_id = clinic.case_in("discharged")
    at = clinic.tick(days=2)
    event = clinic.adverse_event(case_id, "suicidal_ideation", "severe")
    review = reminders.pending(case_id)["safety_review"]
    assert review.due_at == at

    reminders.dispatch(at)
    reminders.dispatch(at + timedelta(minutes=20))  # past repeat_after (15 minutes)

    assert reminders.get(review.id).status == "sent"
    assert reminders.recorder.kinds().count("safety_review") == 2
    clinic.tick(hours=1)
    nausea = clinic.adverse_event(case_id, "nausea", "mild")  # recorded while it is open
    assert reminders.get(review.id).status == "sent"
    clinic.resolve(case_id, event.id)
    assert reminders.get(review.id).status == "sent"  # it waits for the nausea too
    clinic.resolve(case_id, nausea.id)
    assert reminders.get(review.id).status == CANCELLED


def test_a_safety_review_outlives_a_withdrawal_and_ends_with_its_events(clinic, reminders):
    """The 7 units left at home are an event the service records on withdraw (SPEC.md 2):
    recorded while the safety review is open, the review waits for it too."""
    case_id = clinic.case_in("integration")
    event = clinic.adverse_event(case_id, "respiratory_depression", "mild")
    review = reminders.pending(case_id)["safety_review"]

    clinic.fire(case_id, "withdraw")

    assert clinic.case(case_id).state == "withdrawn"
    assert reminders.get(review.id).status == PENDING
    assert "hold_review" not in reminders.pending(case_id)  # a state's reminder ends with it
    units_at_home = withdrawal_event(clinic, case_id, units=7)
    assert reviews(reminders, case_id) == {"safety_review", "event_review"}
    clinic.resolve(case_id, event.id)
    assert reminders.get(review.id).status == PENDING  # waits for the withdrawal's event
    clinic.resolve(case_id, units_at_home.id)
    assert reminders.get(review.id).status == CANCELLED
    assert reviews(reminders, case_id) == set()


def test_an_event_review_on_a_closed_case_waits_for_its_event(clinic, reminders):
    """The service records an interacting medication on a case that then closes."""
    case_id = clinic.case_in("monitoring")
    clinic.add_med(case_id, "oxycodone")
    (event,) = clinic.rows(AdverseEvent, case_id)
    review = reminders.pending(case_id)["event_review"]
    clinic.resolve(case_id, event.id)
    assert reminders.get(review.id).status == CANCELLED

    clinic.add_med(case_id, "tramadol")
    (_, second) = clinic.rows(AdverseEvent, case_id)
    open_review = reminders.pending(case_id)["event_review"]
    clinic.fire(case_id, "withdraw")
    # The 7 units left at home are another event for the same, still open, review.
    units_at_home = withdrawal_event(clinic, case_id, units=7)
    assert reminders.pending(case_id)["event_review"].id == open_review.id
    assert len(reminders.rows(case_id, kind="event_review")) == 2  # the first, and this one
    clinic.resolve(case_id, second.id)
    assert reminders.get(open_review.id).status == PENDING
    clinic.resolve(case_id, units_at_home.id)
    assert "event_review" not in reminders.pending(case_id)


def test_withdrawing_with_units_at_home_opens_an_event_review_that_outlives_the_close(
    clinic, reminders
):
    """SPEC.md 2 and 4.6: the units still at home are an `other` event (moderate, which does
    not hold), recorded by the service at the withdrawal: its review is due a day later and
    ends when a clinician resolves the event, after the close."""
    case_id = clinic.case_in("integration")
    assert reviews(reminders, case_id) == set()
    at = clinic.tick(hours=2)

    clinic.fire(case_id, "withdraw", actor=clinic.coordinator)

    event = withdrawal_event(clinic, case_id, units=7)
    assert event.onset_at == at
    assert reviews(reminders, case_id) == {"event_review"}
    review = reminders.pending(case_id)["event_review"]
    assert (review.due_at, review.recipient_role) == (at + DAY, "clinician")
    assert set(reminders.pending(case_id)) == {"event_review"}  # every other reminder ended

    clinic.tick(days=2)
    clinic.give_back(case_id, 7)  # the units returned on the closed case
    assert reminders.get(review.id).status == PENDING  # a clinician still reviews the event
    clinic.resolve(case_id, event.id)
    assert reminders.get(review.id).status == CANCELLED
    assert clinic.case(case_id).state == "withdrawn"


def test_withdrawing_with_every_unit_returned_records_no_event(clinic, reminders):
    case_id = clinic.case_in("integration")
    clinic.reconcile(case_id)
    clinic.fire(case_id, "withdraw")
    assert clinic.rows(AdverseEvent, case_id) == []
    assert reminders.pending(case_id) == {}


def test_one_open_review_per_case_and_kind_ending_when_all_its_events_are(clinic, reminders):
    case_id = clinic.case_in("discharged")
    first = clinic.adverse_event(case_id, "suicidal_ideation", "severe")
    clinic.tick(minutes=20)
    second = clinic.adverse_event(case_id, "respiratory_depression", "moderate")
    third = clinic.adverse_event(case_id, "nausea", "mild")  # recorded while it is open

    assert len(reminders.rows(case_id, kind="safety_review")) == 1
    for event in (first, second):
        clinic.resolve(case_id, event.id)
        assert "safety_review" in reminders.pending(case_id)
    clinic.resolve(case_id, third.id)
    assert "safety_review" not in reminders.pending(case_id)


def test_a_discharge_from_a_hold_keeps_the_review_of_an_event_recorded_after_it(clinic, reminders):
    """SPEC.md 2: discharge leaves a hold that began in monitoring once events are resolved
    and every unit is accounted for; an event after the discharge opens a review on the
    closed case."""
    case_id = clinic.case_in("monitoring")
    held = clinic.adverse_event(case_id, "psychiatric_event", "moderate")
    clinic.resolve(case_id, held.id)
    clinic.reconcile(case_id)
    assert clinic.fire(case_id, "discharge").state == "discharged"

    at = clinic.tick(days=10)
    clinic.adverse_event(case_id, "suicidal_ideation", "mild", onset_at=at - DAY)
    review = reminders.pending(case_id)["safety_review"]
    assert review.due_at == at  # due when recorded, whenever it began
