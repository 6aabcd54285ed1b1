"""Each reminder of SPEC.md section 7: created by the right event, due at the right time, for the
right role, cancelled when done or when the case leaves the state, and never duplicated."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from models.db import session_scope
from models.facts import AdverseEvent, Taper
from models.reminders import CANCELLED, PENDING, SENT, Reminder, WorkItem
from models.schemas import CaseAssignment
from models.settings import Settings
from schedules import policies
from schedules.policies import POLICIES, POLICY_BY_KIND
from schedules.rules import Left
from tests.conftest import add_user
from tests.workflow.conftest import Clinic
from tests.workflow.test_casefacts import loads_during
from workflow import cases, hooks, places, worklist

DAY = timedelta(days=1)

HOUR = timedelta(hours=1)

# SPEC.md section 7's table, copied by hand so a change to the policies fails here:
# kind: (to, repeat_after, escalate_after, escalate_to).
SPEC_TABLE = {
    "evaluation_overdue": ("coordinator", DAY, 3 * DAY, "clinician"),
    "taper_checkin": ("clinician", DAY, 3 * DAY, "clinician"),
    "prescription_pending": ("clinician", DAY, 2 * DAY, "clinician"),
    "shipment_pending": ("coordinator", DAY, 2 * DAY, "clinician"),
    "delivery_overdue": ("coordinator", DAY, 2 * DAY, "clinician"),
    "preparation_due": ("coordinator", DAY, 3 * DAY, "clinician"),
    "integration_followup": ("coordinator", DAY, 2 * DAY, "clinician"),
    "checkin_due": ("coordinator", DAY, 3 * DAY, "clinician"),
    "screening_due": ("clinician", DAY, 3 * DAY, "clinician"),
    "count_due": ("coordinator", DAY, 3 * DAY, "clinician"),
    "hold_review": ("clinician", 4 * HOUR, 24 * HOUR, "clinician"),
    "safety_review": ("clinician", HOUR / 4, HOUR, "clinician"),
    "event_review": ("clinician", DAY, 2 * DAY, "clinician"),
    "escalation": ("clinician", HOUR, None, None),
}


def test_the_table_declares_every_kind_of_the_spec_once_for_its_role():
    declared = {p.kind: (p.to, p.repeat_after, p.escalate_after, p.escalate_to) for p in POLICIES}
    assert declared == SPEC_TABLE
    assert len(POLICIES) == len(SPEC_TABLE)


def test_install_registers_the_listener_once():
    policies.install()
    policies.install()
    assert hooks.LISTENERS.count(policies.LISTENER) == 1


def test_without_the_listener_the_workflow_writes_no_reminders(clinic, reminders):
    policies.uninstall()
    case_id = clinic.open_case()
    assert reminders.rows(case_id) == []


# -- evaluation_overdue -----------------------------------------------------------


def test_a_new_case_is_due_for_evaluation_in_seven_days(clinic, reminders, now):
    case_id = clinic.open_case()
    (reminder,) = reminders.rows(case_id)
    assert (reminder.kind, reminder.status) == ("evaluation_overdue", PENDING)
    assert reminder.due_at == now + 7 * DAY
    assert reminder.recipient_role == "coordinator"
    assert reminder.attempts == 0 and reminder.sent_at is None


def test_approval_cancels_evaluation_overdue_and_asks_the_clinician_to_prescribe(clinic, reminders):
    case_id = clinic.case_in("evaluation")
    approved_at = clinic.tick(days=2)
    clinic.fire(case_id, "approve")
    assert reminders.rows(case_id, kind="evaluation_overdue")[0].status == CANCELLED
    pending = reminders.pending(case_id)
    assert set(pending) == {"prescription_pending"}
    assert pending["prescription_pending"].due_at == approved_at + 3 * DAY
    assert pending["prescription_pending"].recipient_role == "clinician"


@pytest.mark.parametrize("trigger", ["decline", "withdraw"])
def test_closing_in_evaluation_cancels_every_reminder(clinic, reminders, trigger):
    case_id = clinic.case_in("evaluation")
    clinic.fire(case_id, trigger)
    assert {r.status for r in reminders.rows(case_id)} == {CANCELLED}


# -- the delivery states ------------------------------------------------------------


def test_each_delivery_state_has_its_reminder_cancelled_on_leaving_it(clinic, reminders):
    case_id = clinic.case_in("delivery.awaiting_prescription")
    # confirm_delivery also receives the first dispense: its count is due in 14 days.
    expected = [
        ("prescribe", {"shipment_pending": ("coordinator", 2)}),
        ("ship", {"delivery_overdue": ("coordinator", 5)}),
        (
            "confirm_delivery",
            {"preparation_due": ("coordinator", 3), "count_due": ("coordinator", 14)},
        ),
    ]
    left_behind = "prescription_pending"
    for trigger, kinds in expected:
        at = clinic.tick(hours=5)
        clinic.fire(case_id, trigger)
        assert reminders.rows(case_id, kind=left_behind)[-1].status == CANCELLED
        pending = reminders.pending(case_id)
        assert set(pending) == set(kinds), trigger
        for kind, (role, days) in kinds.items():
            assert (pending[kind].recipient_role, pending[kind].due_at) == (role, at + days * DAY)
        left_behind = next(iter(kinds))


# -- taper_checkin -----------------------------------------------------------------


def test_each_taper_plan_asks_the_clinician_weekly_and_ends_with_its_confirmation(
    clinic, reminders, now
):
    case_id = clinic.open_case()
    xanax, ambien = clinic.add_med(case_id, "Xanax"), clinic.add_med(case_id, "Ambien")
    first = clinic.plan_taper(case_id, xanax.id)
    clinic.tick(days=1)
    second = clinic.plan_taper(case_id, ambien.id)
    checkins = reminders.rows(case_id, kind="taper_checkin")
    assert [(r.taper_id, r.due_at, r.recipient_role) for r in checkins] == [
        (first.id, now + 7 * DAY, "clinician"),
        (second.id, now + 8 * DAY, "clinician"),
    ]

    clinic.confirm_taper(case_id, first.id)
    assert reminders.get(checkins[0].id).status == CANCELLED
    assert reminders.get(checkins[1].id).status == PENDING
    clinic.confirm_taper(case_id, second.id)
    assert reminders.get(checkins[1].id).status == CANCELLED


def test_a_taper_ended_by_its_medication_made_active_again_ends_its_checkin(clinic, reminders):
    case_id = clinic.open_case()
    xanax = clinic.add_med(case_id, "Xanax")
    clinic.set_med_status(case_id, xanax.id, "stopped", actor=clinic.clinician)
    clinic.plan_taper(case_id, xanax.id)
    (checkin,) = reminders.rows(case_id, kind="taper_checkin")
    clinic.set_med_status(case_id, xanax.id, "active")
    assert reminders.get(checkin.id).status == CANCELLED


def test_a_sent_checkin_of_one_taper_leaves_the_other_taper_s_alone(clinic, reminders, now):
    case_id = clinic.open_case()
    first = clinic.plan_taper(case_id, clinic.add_med(case_id, "Xanax").id)
    clinic.tick(days=2)
    second = clinic.plan_taper(case_id, clinic.add_med(case_id, "Ambien").id)
    reminders.dispatch(now + 7 * DAY)  # the first taper's check-in only
    reminders.dispatch(now + 9 * DAY)  # the second's, and no repeat of the first yet
    reminders.dispatch(now + 14 * DAY)  # the first's next check-in: it supersedes its own only
    rows = reminders.rows(case_id, kind="taper_checkin")
    by_taper = {t: [(r.due_at, r.status) for r in rows if r.taper_id == t] for t in (1, 2)}
    assert by_taper[first.id] == [
        (now + 7 * DAY, CANCELLED),
        (now + 14 * DAY, SENT),
        (now + 21 * DAY, PENDING),
    ]
    assert by_taper[second.id] == [(now + 9 * DAY, SENT), (now + 16 * DAY, PENDING)]


def test_a_sent_taper_checkin_is_followed_by_the_next_while_the_taper_is_open(
    clinic, reminders, now
):
    case_id = clinic.open_case()
    taper = clinic.plan_taper(case_id, clinic.add_med(case_id, "Xanax").id)
    reminders.dispatch(now + 7 * DAY)
    first, second = reminders.rows(case_id, kind="taper_checkin")
    assert (first.status, second.status) == (SENT, PENDING)
    assert second.due_at == now + 14 * DAY

    # A scheduler that was down for three weeks sends one reminder, then resumes the cadence.
    reminders.dispatch(now + 35 * DAY)
    third = reminders.pending(case_id)["taper_checkin"]
    assert third.due_at == now + 42 * DAY
    firsts = [d for d in reminders.recorder.deliveries if d.kind == "taper_checkin"]
    assert len([d for d in firsts if not d.repeat]) == 2

    clinic.tick(days=36)
    clinic.confirm_taper(case_id, taper.id)
    assert reminders.get(third.id).status == CANCELLED


# -- prescription_pending and tapers -------------------------------------------------


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def test_prescription_pending_waits_for_the_last_taper_then_for_its_washout(clinic, reminders):
    case_id = clinic.case_in(
        "delivery.awaiting_prescription", prepared=False, meds=("Xanax", "Ativan")
    )
    assert "prescription_pending" not in reminders.pending(case_id)  # two tapers wait
    first, second = clinic.rows(Taper, case_id)

    clinic.tick(days=2)
    clinic.confirm_taper(case_id, first.id, last_dose_on=clinic.now.date())
    assert "prescription_pending" not in reminders.pending(case_id)  # one still waits

    clinic.tick(days=1)
    last_dose = clinic.now.date()
    clinic.confirm_taper(case_id, second.id, last_dose_on=last_dose)
    pending = reminders.pending(case_id)["prescription_pending"]
    # Both are benzodiazepines with a 7-day washout; the later one ends last.
    assert pending.due_at == midnight(last_dose + timedelta(days=7)) + 3 * DAY
    assert pending.recipient_role == "clinician"


def test_a_washout_already_over_leaves_the_usual_three_days(clinic, reminders):
    case_id = clinic.case_in("delivery.awaiting_prescription", prepared=False, meds=("Xanax",))
    (taper,) = clinic.rows(Taper, case_id)
    planned_on = clinic.now.date()
    at = clinic.tick(days=20)
    clinic.confirm_taper(case_id, taper.id, last_dose_on=planned_on)  # washout over on day 7
    assert reminders.pending(case_id)["prescription_pending"].due_at == at + 3 * DAY


def test_entering_awaiting_prescription_after_a_taper_waits_for_its_washout(clinic, reminders):
    case_id = clinic.case_in("evaluation", meds=("Klonopin",))  # long-acting: 14 days
    (taper,) = clinic.rows(Taper, case_id)
    clinic.tick(days=1)
    clinic.confirm_taper(case_id, taper.id, last_dose_on=clinic.now.date())
    clinic.screen(case_id)
    clinic.fire(case_id, "approve")
    pending = reminders.pending(case_id)["prescription_pending"]
    assert pending.due_at == midnight(clinic.now.date() + timedelta(days=14)) + 3 * DAY


def test_a_taper_planned_while_awaiting_prescription_holds_the_reminder_back(clinic, reminders):
    case_id = clinic.case_in("delivery.awaiting_prescription", prepared=False)
    first = reminders.pending(case_id)["prescription_pending"]
    clinic.tick(hours=2)
    taper = clinic.plan_taper(case_id, clinic.add_med(case_id, "Ambien").id)
    assert reminders.get(first.id).status == CANCELLED
    # A Z-drug added on an approved case also records hypnotic_restarted: its event_review.
    assert set(reminders.pending(case_id)) == {"taper_checkin", "event_review"}

    clinic.tick(days=8)
    clinic.confirm_taper(case_id, taper.id)
    assert set(reminders.pending(case_id)) == {"prescription_pending", "event_review"}


# -- who a reminder is for --------------------------------------------------------------


def assign(clinic: Clinic, case_id: int, **ids: int) -> None:
    clinic.call(
        cases.assign_case, case_id=case_id, data=CaseAssignment(**ids), actor=clinic.coordinator
    )


def test_an_open_reminder_follows_the_case_s_assignment(clinic, reminders):
    case_id = clinic.open_case()
    (evaluation,) = reminders.rows(case_id)
    assert evaluation.recipient_id is None  # nobody assigned yet: for the role

    assign(clinic, case_id, coordinator_id=clinic.coordinator.id)
    assert reminders.get(evaluation.id).recipient_id == clinic.coordinator.id
    other = add_user(clinic.engine, "coordinator-2", "coordinator")
    assign(clinic, case_id, coordinator_id=other.id)
    assert reminders.get(evaluation.id).recipient_id == other.id

    # A clinician's reminder made now is for the assigned clinician at once.
    assign(clinic, case_id, clinician_id=clinic.clinician.id)
    clinic.plan_taper(case_id, clinic.add_med(case_id, "Xanax").id)
    checkin = reminders.pending(case_id)["taper_checkin"]
    assert checkin.recipient_id == clinic.clinician.id


def test_a_reminder_no_longer_open_keeps_the_user_it_was_for(clinic, reminders):
    case_id = clinic.open_case()
    assign(clinic, case_id, coordinator_id=clinic.coordinator.id)
    (evaluation,) = reminders.rows(case_id)
    clinic.call(worklist.acknowledge, reminder_id=evaluation.id, actor=clinic.coordinator)
    other = add_user(clinic.engine, "coordinator-2", "coordinator")
    assign(clinic, case_id, coordinator_id=other.id)
    assert reminders.get(evaluation.id).recipient_id == clinic.coordinator.id


def test_approval_s_reminder_goes_to_the_assigned_clinician_not_the_approver(clinic, reminders):
    case_id = clinic.case_in("evaluation")
    other = add_user(clinic.engine, "clinician-2", "clinician", ("CA",))
    assign(clinic, case_id, clinician_id=other.id)
    clinic.fire(case_id, "approve")  # by clinic.clinician
    assert reminders.pending(case_id)["prescription_pending"].recipient_id == other.id

    unassigned = clinic.case_in("evaluation")
    clinic.fire(unassigned, "approve")
    assert reminders.pending(unassigned)["prescription_pending"].recipient_id == clinic.clinician.id


def test_a_delivery_goes_to_the_assigned_coordinator(clinic, reminders, now):
    case_id = clinic.open_case()
    assign(clinic, case_id, coordinator_id=clinic.coordinator.id)
    reminders.dispatch(now + 7 * DAY)
    (delivery,) = reminders.recorder.deliveries
    assert (delivery.kind, delivery.recipient_ids) == (
        "evaluation_overdue",
        (clinic.coordinator.id,),
    )


# -- preparation_due ---------------------------------------------------------------


def test_a_preparation_session_cancels_preparation_due(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    assert "preparation_due" in reminders.pending(case_id)
    clinic.session(case_id, "preparation")
    assert "preparation_due" not in reminders.pending(case_id)
    assert reminders.rows(case_id, kind="preparation_due")[0].status == CANCELLED


def test_resuming_into_integration_after_preparation_asks_for_nothing(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    clinic.fire(case_id, "hold")
    assert "preparation_due" not in reminders.pending(case_id)
    resumed_at = clinic.tick(days=1)
    clinic.fire(case_id, "resume")
    assert reminders.pending(case_id)["preparation_due"].due_at == resumed_at + 3 * DAY

    clinic.session(case_id, "preparation")
    clinic.fire(case_id, "hold")
    clinic.fire(case_id, "resume")
    assert "preparation_due" not in reminders.pending(case_id)


# -- integration_followup ----------------------------------------------------------


def dosable(clinic) -> int:
    """A case in integration, prepared for its first dose, with no dose yet."""
    case_id = clinic.case_in("integration", prepared=False)
    clinic.session(case_id, "preparation")
    return case_id


AGAIN = Settings(min_hours_between_doses=0, max_doses_per_window=10)
"""Relaxed dose limits, for a second dose sooner than the clinical interval allows."""


def test_a_dosing_session_asks_for_integration_within_72_hours(clinic, reminders):
    case_id = dosable(clinic)
    dose = clinic.dose(case_id)
    followup = reminders.pending(case_id)["integration_followup"]
    assert followup.due_at == dose.completed_at + timedelta(hours=72)
    assert followup.recipient_role == "coordinator"

    clinic.tick(hours=5)
    clinic.dose(case_id, rules=AGAIN)  # a second dose keeps the earlier, sooner reminder
    assert reminders.pending(case_id)["integration_followup"].id == followup.id

    clinic.tick(hours=20)
    clinic.session(case_id, "integration")
    assert reminders.get(followup.id).status == CANCELLED
    assert "integration_followup" not in reminders.pending(case_id)


def test_an_integration_session_before_the_latest_dose_does_not_cancel_its_followup(
    clinic, reminders
):
    case_id = dosable(clinic)
    dose = clinic.dose(case_id)
    clinic.tick(hours=1)
    clinic.session(case_id, "integration", completed_at=dose.completed_at - timedelta(hours=1))
    assert "integration_followup" in reminders.pending(case_id)


# -- checkin_due -------------------------------------------------------------------


def test_the_first_dose_schedules_a_checkin_a_week_later(clinic, reminders):
    case_id = dosable(clinic)
    first = clinic.dose(case_id)
    checkin = reminders.pending(case_id)["checkin_due"]
    assert (checkin.due_at, checkin.recipient_role) == (first.completed_at + 7 * DAY, "coordinator")
    clinic.tick(days=1)
    clinic.dose(case_id, rules=AGAIN)
    assert reminders.pending(case_id)["checkin_due"].id == checkin.id


def test_a_checkin_needs_both_a_phq9_and_an_isi_after_the_first_dose(clinic, reminders):
    case_id = dosable(clinic)
    clinic.assess(case_id, "isi", 18)  # before the first dose: not a check-in
    first = clinic.dose(case_id)
    checkin = reminders.pending(case_id)["checkin_due"]

    clinic.tick(days=3)
    clinic.assess(case_id, "phq9", 12)
    assert reminders.pending(case_id)["checkin_due"].id == checkin.id
    isi_at = clinic.tick(hours=1)
    clinic.assess(case_id, "isi", 15)
    assert reminders.get(checkin.id).status == CANCELLED
    assert reminders.pending(case_id)["checkin_due"].due_at == isi_at + 7 * DAY
    clinic.tick(days=1)
    clinic.assess(case_id, "isi", 13)  # half of the next check-in: nothing moves
    assert reminders.pending(case_id)["checkin_due"].due_at == isi_at + 7 * DAY

    # After the first four weeks, a check-in is due every 12 days.
    late = first.completed_at + 30 * DAY
    clinic.now = late
    clinic.assess(case_id, "isi", 14)
    clinic.assess(case_id, "phq9", 9)
    assert reminders.pending(case_id)["checkin_due"].due_at == late + 12 * DAY


def test_a_checkin_ends_an_escalated_checkin_reminder_and_its_escalation(clinic, reminders):
    """A check-in restarts ``checkin_due``: the escalated reminders it replaces end with their
    escalations, and the case leaves the top of the worklist."""
    case_id = dosable(clinic)
    clinic.dose(case_id)
    clinic.tick(hours=1)
    clinic.session(case_id, "integration")  # the dose's follow-up is done
    checkin = reminders.pending(case_id)["checkin_due"]
    reminders.dispatch(checkin.due_at)
    assert reminders.dispatch(checkin.due_at + 3 * DAY).escalated == 1
    (escalation,) = reminders.rows(case_id, kind="escalation")
    assert escalation.escalates == checkin.id
    with session_scope(clinic.engine) as session:
        assert session.get_one(WorkItem, case_id).rank == places.URGENT

    clinic.now = checkin.due_at + 3 * DAY + HOUR
    clinic.assess(case_id, "phq9", 10)
    clinic.assess(case_id, "isi", 12)
    assert reminders.get(checkin.id).status == CANCELLED
    assert reminders.get(escalation.id).status == CANCELLED
    assert reminders.pending(case_id)["checkin_due"].due_at == clinic.now + 7 * DAY
    with session_scope(clinic.engine) as session:
        assert session.get_one(WorkItem, case_id).rank == places.REMINDED


def test_a_sent_checkin_is_followed_weekly_then_every_12_days(clinic, reminders):
    case_id = dosable(clinic)
    first = clinic.dose(case_id).completed_at
    dues = []
    for week in (7, 14, 21, 28, 56):
        reminders.dispatch(first + week * DAY)
        dues.append(reminders.pending(case_id)["checkin_due"].due_at - first)
    # The one due at 40 days is sent late, at 56: the next skips the missed 52 for 64.
    assert dues == [14 * DAY, 21 * DAY, 28 * DAY, 40 * DAY, 64 * DAY]


def test_a_fact_moves_the_worklist_only_when_it_makes_or_ends_a_reminder(clinic, reminders):
    """A case's place is its open reminders' (and its state's): a fact that changes none of
    them does not read or write ``work_items``; one that does moves the case."""
    case_id = dosable(clinic)
    touched: list[str] = []

    def on_work_items(conn, cursor, statement, *args) -> None:
        if "work_items" in statement:
            touched.append(statement.split()[0])

    event.listen(clinic.engine, "before_cursor_execute", on_work_items)
    try:
        clinic.vital(case_id)  # no reminder wants a vital
        assert touched == []
        clinic.assess(case_id, "gad7", 9)  # nor a GAD-7: the check-ins are a PHQ-9 and an ISI
        assert touched == []
        clinic.dose(case_id)  # asks for its integration follow-up
        assert "integration_followup" in reminders.pending(case_id)
        assert touched
    finally:
        event.remove(clinic.engine, "before_cursor_execute", on_work_items)
    with session_scope(clinic.engine) as session:
        assert session.get_one(WorkItem, case_id).rank == places.REMINDED


# -- hold_review -------------------------------------------------------------------


def test_hold_swaps_the_state_reminder_for_a_hold_review_and_resume_swaps_back(clinic, reminders):
    case_id = clinic.case_in("delivery.prescribed")
    shipment = reminders.pending(case_id)["shipment_pending"]
    held_at = clinic.tick(hours=3)
    clinic.fire(case_id, "hold")
    assert reminders.get(shipment.id).status == CANCELLED
    pending = reminders.pending(case_id)
    assert set(pending) == {"hold_review"}
    assert (pending["hold_review"].due_at, pending["hold_review"].recipient_role) == (
        held_at + timedelta(hours=24),
        "clinician",
    )

    resumed_at = clinic.tick(days=2)
    clinic.fire(case_id, "resume")
    assert reminders.get(pending["hold_review"].id).status == CANCELLED
    assert reminders.pending(case_id)["shipment_pending"].due_at == resumed_at + 2 * DAY


def test_hold_cancels_an_escalated_reminder_and_ends_its_escalation(clinic, reminders):
    case_id = clinic.case_in("delivery.prescribed")
    shipment = reminders.pending(case_id)["shipment_pending"]
    reminders.dispatch(shipment.due_at)
    assert reminders.dispatch(shipment.due_at + 2 * DAY).escalated == 1
    (escalation,) = reminders.rows(case_id, kind="escalation")
    with session_scope(clinic.engine) as session:
        assert session.get_one(WorkItem, case_id).rank == places.URGENT

    clinic.now = shipment.due_at + 3 * DAY
    clinic.fire(case_id, "hold")
    assert reminders.get(shipment.id).status == CANCELLED
    assert reminders.get(escalation.id).status == CANCELLED
    assert reminders.get(escalation.id).updated_at == clinic.now
    assert set(reminders.pending(case_id)) == {"hold_review"}
    with session_scope(clinic.engine) as session:
        item = session.get_one(WorkItem, case_id)
        assert (item.rank, item.state_since) == (places.REMINDED, clinic.now)


def test_resuming_into_evaluation_restarts_its_seven_days(clinic, reminders):
    case_id = clinic.open_case()
    clinic.fire(case_id, "hold")
    resumed_at = clinic.tick(days=4)
    clinic.fire(case_id, "resume")
    overdue = reminders.rows(case_id, kind="evaluation_overdue")
    assert [r.status for r in overdue] == [CANCELLED, PENDING]
    assert overdue[-1].due_at == resumed_at + 7 * DAY


def test_withdrawing_a_held_case_cancels_its_hold_review(clinic, reminders):
    case_id = clinic.case_in("on_hold", held_from="delivery.prescribed")
    clinic.fire(case_id, "withdraw")
    assert reminders.pending(case_id) == {}
    assert reminders.rows(case_id, kind="hold_review")[0].status == CANCELLED


def test_withdrawing_with_a_shipment_on_its_way_leaves_its_review_open(clinic, reminders):
    """The units shipped are not at home yet, but they will be: a clinician follows them up."""
    case_id = clinic.case_in("on_hold", held_from="delivery.shipped")
    clinic.fire(case_id, "withdraw")
    assert set(reminders.pending(case_id)) == {"event_review"}
    assert reminders.rows(case_id, kind="hold_review")[0].status == CANCELLED
    (event,) = clinic.rows(AdverseEvent, case_id)
    assert event.description.startswith("withdrawn with 0 units at home; dispense #")
    assert event.description.endswith("(8 units) not yet received")


# -- safety_review -----------------------------------------------------------------


def test_an_adverse_event_the_service_records_asks_a_clinician_at_once(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    at = clinic.tick(hours=1)
    clinic.assess(case_id, "phq9", 14, item9=2)  # the service records suicidal ideation
    pending = reminders.pending(case_id)
    assert (pending["safety_review"].due_at, pending["safety_review"].recipient_role) == (
        at,
        "clinician",
    )
    assert "hold_review" in pending  # the same event put the case on hold

    (event,) = [e for e in clinic.rows(AdverseEvent, case_id) if e.recorded_by_system]
    clinic.resolve(case_id, event.id)
    assert "safety_review" not in reminders.pending(case_id)


def test_an_event_staff_record_that_holds_opens_a_safety_review_a_mild_one_nothing(
    clinic, reminders
):
    case_id = clinic.case_in("integration", prepared=False)
    clinic.adverse_event(case_id, "nausea", "mild")
    assert {"safety_review", "event_review"}.isdisjoint(reminders.pending(case_id))
    at = clinic.tick(minutes=5)
    clinic.adverse_event(case_id, "dizziness", "severe")
    review = reminders.pending(case_id)["safety_review"]
    assert (review.due_at, review.recipient_role) == (at, "clinician")


def test_a_review_waits_for_events_recorded_while_it_is_open(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    first = clinic.adverse_event(case_id, "dizziness", "severe")
    clinic.tick(minutes=5)
    later = clinic.adverse_event(case_id, "nausea", "mild")  # recorded while the review is open
    clinic.resolve(case_id, first.id)
    assert "safety_review" in reminders.pending(case_id)
    clinic.resolve(case_id, later.id)
    assert "safety_review" not in reminders.pending(case_id)


def test_another_event_the_service_records_opens_an_event_review_a_day_later(clinic, reminders):
    case_id = dosable(clinic)
    clinic.dose(case_id)
    at = clinic.tick(days=1)
    clinic.assess(case_id, "isi", 28)  # far above the baseline: worsened insomnia, moderate
    pending = reminders.pending(case_id)
    assert "safety_review" not in pending
    assert (pending["event_review"].due_at, pending["event_review"].recipient_role) == (
        at + DAY,
        "clinician",
    )
    (event,) = [e for e in clinic.rows(AdverseEvent, case_id) if e.recorded_by_system]
    clinic.resolve(case_id, event.id)
    assert "event_review" not in reminders.pending(case_id)


# -- screening_due -----------------------------------------------------------------


def test_a_screening_on_an_approved_case_asks_for_the_next_before_it_lapses(clinic, reminders):
    case_id = clinic.case_in("evaluation")  # eligible, and screened
    assert "screening_due" not in reminders.pending(case_id)  # not approved yet
    clinic.fire(case_id, "approve")
    at = clinic.tick(days=2)
    clinic.screen(case_id)
    first = reminders.pending(case_id)["screening_due"]
    assert (first.due_at, first.recipient_role) == (at + 27 * DAY, "clinician")
    clinic.tick(days=10)
    clinic.screen(case_id)
    assert reminders.get(first.id).status == CANCELLED
    assert reminders.pending(case_id)["screening_due"].due_at == clinic.now + 27 * DAY


# -- count_due ---------------------------------------------------------------------


def refill_received(clinic: Clinic, case_id: int, told_after: timedelta = DAY) -> datetime:
    """All but one unit returned and a refill dispensed; the patient receives it an hour
    later, and the coordinator records the receipt ``told_after`` that. Returns when it was
    received."""
    clinic.give_back(case_id, clinic.units(case_id) - 1)
    dispense = clinic.refill(case_id)
    received = clinic.tick(hours=1)
    clinic.tick(seconds=told_after.total_seconds())
    clinic.receive(case_id, dispense.id, at=received)
    return received


def test_the_first_dispense_s_receipt_asks_the_coordinator_for_a_count_in_14_days(
    clinic, reminders
):
    case_id = clinic.case_in("delivery.shipped")
    assert "count_due" not in reminders.pending(case_id)  # shipped, not yet received
    received_at = clinic.tick(days=2)
    clinic.fire(case_id, "confirm_delivery", actor=clinic.coordinator)
    count = reminders.pending(case_id)["count_due"]
    assert (count.due_at, count.recipient_role) == (received_at + 14 * DAY, "coordinator")
    assert len(reminders.rows(case_id, kind="count_due")) == 1


def test_a_count_after_the_reminder_ends_it(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    count = reminders.pending(case_id)["count_due"]
    clinic.tick(days=10)
    clinic.count(case_id, clinic.units(case_id))
    assert reminders.get(count.id).status == CANCELLED
    assert "count_due" not in reminders.pending(case_id)


def test_a_short_count_ends_it_too(clinic, reminders):
    """A count that finds units missing still is the count; the shortfall is a safety review."""
    case_id = clinic.case_in("integration", prepared=False)
    count = reminders.pending(case_id)["count_due"]
    clinic.tick(days=3)
    clinic.count(case_id, clinic.units(case_id) - 2)
    assert reminders.get(count.id).status == CANCELLED
    assert set(reminders.pending(case_id)) >= {"safety_review", "hold_review"}


def test_other_facts_leave_count_due_open(clinic, reminders):
    """Returns, doses and refills are not counts: the reminder waits."""
    case_id = clinic.case_in("integration", prepared=False)
    count = reminders.pending(case_id)["count_due"]
    clinic.tick(days=1)
    clinic.give_back(case_id, 2)
    clinic.session(case_id, "preparation")
    clinic.tick(minutes=10)
    clinic.dose(case_id)
    clinic.give_back(case_id, clinic.units(case_id) - 1, kind="disposed")
    clinic.refill(case_id)  # dispensed, not yet received
    assert reminders.get(count.id).status == PENDING


def test_a_refill_s_receipt_restarts_the_14_days(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    first = reminders.pending(case_id)["count_due"]
    clinic.tick(days=5)
    # Received yesterday, told today: due 14 days after it was received.
    received_at = refill_received(clinic, case_id, told_after=DAY)
    assert clinic.now == received_at + DAY

    assert reminders.get(first.id).status == CANCELLED
    count = reminders.pending(case_id)["count_due"]
    assert (count.due_at, count.recipient_role) == (received_at + 14 * DAY, "coordinator")
    assert [r.status for r in reminders.rows(case_id, kind="count_due")] == [CANCELLED, PENDING]


def test_a_count_before_the_refill_s_receipt_does_not_end_the_new_reminder(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    clinic.tick(days=5)
    clinic.count(case_id, clinic.units(case_id))
    assert "count_due" not in reminders.pending(case_id)
    clinic.tick(hours=1)
    received_at = refill_received(clinic, case_id, told_after=timedelta(0))

    assert reminders.pending(case_id)["count_due"].due_at == received_at + 14 * DAY
    clinic.tick(days=14)
    clinic.count(case_id, clinic.units(case_id))
    assert "count_due" not in reminders.pending(case_id)


def test_a_hold_keeps_count_due(clinic, reminders):
    """The units stay at home while the case is held: SPEC.md 7 ends count_due with a count."""
    case_id = clinic.case_in("integration", prepared=False)
    count = reminders.pending(case_id)["count_due"]
    clinic.fire(case_id, "hold")
    assert reminders.pending(case_id)["count_due"].id == count.id
    clinic.tick(days=1)
    clinic.count(case_id, clinic.units(case_id))
    assert reminders.get(count.id).status == CANCELLED


def test_a_sent_count_due_repeats_daily_and_escalates_after_three_days(clinic, reminders):
    case_id = clinic.case_in("integration", prepared=False)
    count = reminders.pending(case_id)["count_due"]
    reminders.dispatch(count.due_at)
    reminders.dispatch(count.due_at + DAY)
    assert reminders.recorder.kinds().count("count_due") == 2
    assert reminders.get(count.id).status == SENT
    assert reminders.rows(case_id, escalates=count.id) == []  # not 3 days past due yet
    reminders.dispatch(count.due_at + 3 * DAY)
    (escalation,) = reminders.rows(case_id, escalates=count.id)
    assert (escalation.kind, escalation.recipient_role) == ("escalation", "clinician")

    clinic.now = count.due_at + 3 * DAY
    clinic.count(case_id, clinic.units(case_id))
    assert reminders.get(count.id).status == CANCELLED
    assert reminders.get(escalation.id).status == CANCELLED


def test_a_count_taken_before_the_refill_arrived_does_not_end_its_count_due(clinic, reminders):
    """SPEC.md 7: due "if no medication count since" the receipt; a count taken before the
    refill arrived, but entered after, did not count the refill's units."""
    case_id = clinic.case_in("integration", prepared=False)
    clinic.give_back(case_id, clinic.units(case_id) - 1)
    counted_at = clinic.now  # 1 unit at home
    refill = clinic.refill(case_id)
    clinic.tick(hours=1)
    clinic.receive(case_id, refill.id)
    count_due = reminders.pending(case_id)["count_due"]
    assert count_due.due_at == clinic.now + 14 * DAY
    clinic.tick(hours=1)

    clinic.count(case_id, 1, at=counted_at)

    assert reminders.get(count_due.id).status == PENDING


@pytest.mark.parametrize("trigger", ["withdraw", "discharge"])
def test_closing_the_case_cancels_count_due(clinic, reminders, trigger):
    case_id = clinic.case_in("on_hold", held_from="monitoring")
    count = reminders.pending(case_id)["count_due"]
    clinic.reconcile(case_id)  # nothing left at home: no event on withdraw either
    assert reminders.get(count.id).status == PENDING
    clinic.fire(case_id, trigger)
    assert reminders.get(count.id).status == CANCELLED
    assert reminders.pending(case_id) == {}

    # A count on the closed case makes no reminder of its own.
    clinic.tick(days=1)
    clinic.count(case_id, 0)
    assert reminders.pending(case_id) == {}


# -- closing, and never duplicated ---------------------------------------------------


@pytest.mark.parametrize("trigger", ["withdraw", "discharge"])
def test_closing_a_case_cancels_all_its_pending_reminders(clinic, reminders, trigger):
    case_id = clinic.case_in("monitoring", meds=("Xanax",))
    clinic.tick(hours=72)
    clinic.dose(case_id)
    clinic.assess(case_id, "phq9", 8)
    clinic.assess(case_id, "isi", 9)
    assert {"integration_followup", "checkin_due", "count_due"} <= set(reminders.pending(case_id))
    if trigger == "discharge":
        clinic.reconcile(case_id)  # medication.reconciled: returns do not end count_due
        assert "count_due" in reminders.pending(case_id)
    clinic.fire(case_id, trigger)
    if trigger == "withdraw":
        # SPEC.md 2: the 6 units still at home are an event the service records; its review
        # outlives the close (SPEC.md 4.6), and is the only reminder left.
        (event,) = clinic.rows(AdverseEvent, case_id)
        assert (event.kind, event.severity, event.description) == (
            "other",
            "moderate",
            "withdrawn with 6 units at home",
        )
        assert set(reminders.pending(case_id)) == {"event_review"}
        clinic.resolve(case_id, event.id)
    assert reminders.pending(case_id) == {}
    assert {r.status for r in reminders.rows(case_id)} <= {CANCELLED, SENT}


def test_the_database_refuses_a_second_pending_reminder_of_a_kind(clinic, reminders, now):
    case_id = clinic.open_case()
    with pytest.raises(IntegrityError), session_scope(clinic.engine) as session:
        session.add(
            Reminder(
                case_id=case_id,
                kind="evaluation_overdue",
                due_at=now,
                recipient_role="coordinator",
            )
        )


def test_the_database_refuses_a_second_pending_checkin_of_one_taper(clinic, reminders, now):
    case_id = clinic.open_case()
    first = clinic.plan_taper(case_id, clinic.add_med(case_id, "Xanax").id)
    second = clinic.plan_taper(case_id, clinic.add_med(case_id, "Ambien").id)
    assert len(reminders.rows(case_id, kind="taper_checkin", status=PENDING)) == 2

    def checkin(taper_id: int) -> Reminder:
        return Reminder(
            case_id=case_id,
            kind="taper_checkin",
            due_at=now,
            recipient_role="clinician",
            taper_id=taper_id,
        )

    for taper in (first, second):
        with pytest.raises(IntegrityError), session_scope(clinic.engine) as session:
            assert taper.id is not None
            session.add(checkin(taper.id))


def test_a_whole_course_of_care_never_holds_two_pending_reminders_of_a_kind(clinic, reminders):
    case_id = clinic.case_in("monitoring", meds=("Xanax", "Ambien"))
    for _ in range(3):
        clinic.fire(case_id, "hold")
        clinic.fire(case_id, "resume")
        clinic.tick(days=4)  # past the 72-hour interval, one dose in each week's window
        clinic.dose(case_id)
        clinic.assess(case_id, "phq9", 8)
        clinic.assess(case_id, "isi", 9)
        reminders.dispatch(clinic.now + 10 * DAY)
        reminders.pending(case_id)  # asserts no kind is pending twice
    assert set(POLICY_BY_KIND) >= {r.kind for r in reminders.rows(case_id)}


def test_a_policy_ended_by_what_a_fact_records_names_the_facts_that_end_it():
    """A ``done`` or an ``until`` other than leaving a state reads facts: the policy names the
    facts whose recording can end it, or a fact's write would never cancel its reminders."""
    for policy in POLICIES:
        reads_facts = policy.done is not None or any(
            not isinstance(condition, Left) for condition in policy.until
        )
        assert bool(policy.ended_by) == reads_facts, policy.kind


def test_ended_by_names_only_declared_facts():
    with pytest.raises(ValueError, match="ended_by names no fact"):
        replace(POLICY_BY_KIND["count_due"], ended_by=frozenset({"medication_counted"}))


def test_a_fact_no_policy_names_leaves_the_reminders_unread(clinic, reminders):
    """Only a fact that can make, end or readdress a reminder reads the case's reminders."""
    case_id = dosable(clinic)
    read: list[str] = []

    def on_reminders(conn, cursor, statement, *args) -> None:
        if "FROM reminders" in statement:
            read.append(statement)

    assert "vital" not in policies.LISTENER.concerns
    assert {"session", "assessment", "assignment", "medication_count"} <= policies.LISTENER.concerns
    event.listen(clinic.engine, "before_cursor_execute", on_reminders)
    try:
        clinic.vital(case_id)
        assert read == []
        clinic.session(case_id, "integration")
        assert read
    finally:
        event.remove(clinic.engine, "before_cursor_execute", on_reminders)


def test_a_transition_s_reminders_read_no_fact_again_that_its_guards_read(
    clinic, reminders, monkeypatch
):
    """The guards' reads stay good after the transition (it writes only the case's row and its
    audit event): the reminders it updates read each fact once, with the guards."""
    case_id = clinic.case_in("delivery.awaiting_prescription")
    clinic.screen(case_id)  # screened once approved: screening_due waits for the next one
    assert {"screening_due", "prescription_pending"} <= set(reminders.pending(case_id))
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "prescribe"))
    assert "latest_screening" in loaded  # a guard's, and screening_due's
    assert len(loaded) == len(set(loaded)), loaded
    assert "prescription_pending" not in reminders.pending(case_id)
