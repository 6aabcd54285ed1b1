"""The words the policies are written in: events, delays, check-ins, and the next occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.facts import Assessment, CareSession
from models.reminders import PENDING
from models.tables import Case
from schedules.rules import EarlyThenLater, Entered, Policy, checkins, days
from schedules.scheduling import ReminderListener
from workflow import hooks
from workflow.casefacts import CaseFacts, SessionStats

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def facts_with(sessions=(), assessments=()) -> CaseFacts:
    """A case's facts from plain lists, no database.

    ``assessments`` stand for what ``CaseFacts.checkin_assessments`` reads: the
    PHQ-9 and ISI scores after the first dose (``test_casefacts`` checks that
    query against a database).
    """
    doses = [s.completed_at for s in sessions if s.kind == "dosing"]
    preloaded: dict = {"session_stats": {}}
    if doses:
        preloaded["session_stats"] = {"dosing": SessionStats(len(doses), min(doses), max(doses))}
        preloaded[f"checkin_assessments:{min(doses).isoformat()}"] = list(assessments)
    return CaseFacts(
        case=Case(
            id=1, patient_ref="p", patient_state="CA", state="monitoring", phase="monitoring"
        ),
        now=T0,
        preloaded=preloaded,
    )


def dose(at: datetime) -> CareSession:
    return CareSession(id=1, case_id=1, kind="dosing", completed_at=at, clearance_id=1)


def score(id: int, instrument: str, at: datetime) -> Assessment:
    return Assessment(id=id, case_id=1, instrument=instrument, score=10, taken_at=at)


def test_checkins_pair_a_phq9_and_an_isi_taken_after_the_first_dose():
    facts = facts_with(
        [dose(T0)],
        [
            score(2, "phq9", T0 + DAY),
            score(4, "isi", T0 + 3 * DAY),  # completes the first check-in
            score(5, "isi", T0 + 4 * DAY),
            score(6, "isi", T0 + 5 * DAY),
            score(7, "phq9", T0 + 6 * DAY),  # completes the second
            score(8, "phq9", T0 + 7 * DAY),  # half of a third
        ],
    )
    assert [a.id for a in checkins(facts)] == [4, 7]
    assert checkins(facts_with([], [score(1, "phq9", T0), score(2, "isi", T0)])) == []


def test_early_then_later_switches_at_the_end_of_the_window():
    cadence = EarlyThenLater(early=7 * DAY, window=28 * DAY, later=28 * DAY)
    facts = facts_with([dose(T0)])
    assert cadence.due(T0, facts) == T0 + 7 * DAY
    assert cadence.due(T0 + 27 * DAY, facts) == T0 + 34 * DAY
    assert cadence.due(T0 + 28 * DAY, facts) == T0 + 56 * DAY


def test_next_due_skips_the_occurrences_already_past():
    weekly = Policy(
        "weekly", to="clinician", created_by=(), due=days(7), repeat_after=DAY, recurs=True
    )
    facts = facts_with()
    assert weekly.next_due(T0, facts, now=T0) == T0 + 7 * DAY
    assert weekly.next_due(T0, facts, now=T0 + 20 * DAY) == T0 + 21 * DAY
    assert weekly.next_due(T0, facts, now=T0 + 21 * DAY) == T0 + 28 * DAY


def test_an_internal_transition_enters_no_state(clinic, reminders, monkeypatch):
    probe = Policy(
        "probe",
        to="clinician",
        created_by=(Entered("monitoring"),),
        due=days(1),
        repeat_after=DAY,
    )
    monkeypatch.setattr(hooks, "LISTENERS", [ReminderListener([probe])])
    case_id = clinic.case_in("monitoring")
    assert len(reminders.rows(case_id, kind="probe", status=PENDING)) == 1
    clinic.tick(days=2)
    reminders.dispatch(clinic.now)  # sent: a fresh entry would now schedule a new one
    clinic.assess(case_id, "phq9", 8)
    clinic.assess(case_id, "isi", 9)
    clinic.fire(case_id, "adjust_dose")  # monitoring -> monitoring
    assert reminders.rows(case_id, kind="probe", status=PENDING) == []
