"""The dispatcher: due reminders delivered once, retried with backoff, given up on, and never lost
across a crash, a restart, or a second dispatcher on the same database."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from models.db import make_engine, session_scope
from models.reminders import CANCELLED, FAILED, PENDING, SENT, Reminder
from models.settings import Settings
from schedules.dispatcher import Dispatcher, due_clause
from schedules.scheduling import cancel
from tests.conftest import ON_POSTGRES
from tests.schedules.conftest import Recorder, add_cases

SECOND = timedelta(seconds=1)


@pytest.fixture
def case_ids(engine, now) -> list[int]:
    return add_cases(engine, 3, now)


def test_a_reminder_is_delivered_once_when_due_and_marked_sent(reminders, case_ids, now):
    reminder = reminders.add(case_ids[0], "evaluation_overdue", now + 10 * SECOND)
    assert reminders.dispatch(now + 9 * SECOND).sent == 0
    assert reminders.dispatch(now + 10 * SECOND).sent == 1
    assert reminders.dispatch(now + 11 * SECOND).sent == 0

    (delivery,) = reminders.recorder.deliveries
    assert (delivery.id, delivery.case_id, delivery.kind) == (
        reminder.id,
        case_ids[0],
        "evaluation_overdue",
    )
    assert (delivery.attempt, delivery.state, delivery.phase) == (1, "evaluation", "evaluation")
    row = reminders.get(reminder.id)
    # Sent, and due again a day later (evaluation_overdue's repeat_after) unless acknowledged.
    assert (row.status, row.attempts, row.sent_at, row.next_attempt_at) == (
        SENT,
        1,
        now + 10 * SECOND,
        now + 10 * SECOND + timedelta(days=1),
    )


def test_cancelled_sent_and_failed_reminders_are_never_delivered(reminders, case_ids, now):
    for status, kind in ((CANCELLED, "a"), (SENT, "b"), (FAILED, "c")):
        reminders.add(case_ids[0], kind, now, status=status)
    assert reminders.dispatch(now + 5 * SECOND).sent == 0
    assert reminders.recorder.deliveries == []


def test_a_failed_attempt_backs_off_exponentially_then_gives_up(reminders, case_ids, now, caplog):
    reminder = reminders.add(case_ids[0], "hold_review", now)
    reminders.recorder.fail_ids.add(reminder.id)
    at, waits = now, []
    for attempt in range(1, 5):
        assert reminders.dispatch(at).retried == 1
        row = reminders.get(reminder.id)
        assert (row.status, row.attempts) == (PENDING, attempt)
        assert "receiver refused" in row.last_error
        waits.append(row.next_attempt_at - at)
        assert reminders.dispatch(row.next_attempt_at - SECOND).retried == 0  # not yet
        at = row.next_attempt_at
    assert waits == [timedelta(seconds=s) for s in (30, 60, 120, 240)]

    with caplog.at_level(logging.ERROR, logger="schedules.dispatcher"):
        assert reminders.dispatch(at).failed == 1
    row = reminders.get(reminder.id)
    assert (row.status, row.attempts, row.next_attempt_at) == (FAILED, 5, None)
    assert f"reminder {reminder.id}: delivery failed after 5 attempts" in caplog.text
    assert reminders.dispatch(at + timedelta(days=1)).failed == 0


def test_a_retry_that_succeeds_ends_sent(reminders, case_ids, now):
    reminder = reminders.add(case_ids[0], "hold_review", now)
    reminders.recorder.fail_ids.add(reminder.id)
    reminders.dispatch(now)
    reminders.recorder.fail_ids.clear()
    assert reminders.dispatch(now + 30 * SECOND).sent == 1
    row = reminders.get(reminder.id)
    assert (row.status, row.attempts, row.last_error) == (SENT, 2, None)


def test_one_failing_reminder_does_not_stop_the_others(reminders, case_ids, now):
    rows = [reminders.add(case_ids[0], f"kind-{i}", now) for i in range(5)]
    reminders.recorder.fail_ids.add(rows[2].id)
    result = reminders.dispatch(now)
    assert (result.sent, result.retried) == (4, 1)
    assert set(reminders.recorder.counts()) == {r.id for i, r in enumerate(rows) if i != 2}


def test_a_pass_works_through_every_batch(reminders, case_ids, now):
    rows = [reminders.add(case_ids[i % 3], f"kind-{i}", now - i * SECOND) for i in range(10)]
    result = reminders.dispatch(now, rules=Settings(webhook_url=None, dispatch_batch_size=3))
    assert result.sent == 10
    assert reminders.recorder.counts() == {r.id: 1 for r in rows}
    # Oldest due first.
    assert [d.id for d in reminders.recorder.deliveries] == [r.id for r in reversed(rows)]


def test_a_claim_whose_process_died_is_retried_once_its_lease_runs_out(reminders, case_ids, now):
    reminder = reminders.add(case_ids[0], "hold_review", now)
    crashed = reminders.dispatcher(now)
    assert crashed.claim(reminder.id).delivery.attempt == 1  # ... and the process dies here.

    assert reminders.dispatch(now + crashed.lease - SECOND).sent == 0
    assert reminders.dispatch(now + crashed.lease).sent == 1
    (delivery,) = reminders.recorder.deliveries
    assert (delivery.id, delivery.attempt) == (reminder.id, 2)
    assert reminders.get(reminder.id).status == SENT


def test_a_claim_dying_on_the_last_attempt_ends_failed_without_another_delivery(
    clinic, reminders, rules
):
    case_id = clinic.open_case()
    clinic.plan_taper(case_id, clinic.add_med(case_id, "Xanax").id)
    (checkin,) = reminders.rows(case_id, kind="taper_checkin")
    with session_scope(reminders.engine) as session:
        # As a process that died during the last attempt leaves it, once its lease ran out.
        session.get(Reminder, checkin.id).attempts = rules.delivery_max_attempts

    assert reminders.dispatch(checkin.due_at).failed == 1
    row = reminders.get(checkin.id)
    assert (row.status, row.attempts) == (FAILED, rules.delivery_max_attempts)
    assert row.last_error == "last attempt never finished"
    assert checkin.id not in reminders.recorder.counts()
    # The weekly series goes on.
    assert reminders.pending(case_id)["taper_checkin"].due_at == checkin.due_at + timedelta(days=7)


def test_a_reminder_cancelled_while_in_flight_stays_cancelled(reminders, case_ids, now, caplog):
    reminder = reminders.add(case_ids[0], "hold_review", now)
    dispatcher = reminders.dispatcher(now)
    delivery = dispatcher.claim(reminder.id).delivery
    with session_scope(reminders.engine) as session:
        cancel(session, session.get(Reminder, reminder.id), now)
    with caplog.at_level(logging.WARNING, logger="schedules.dispatcher"):
        dispatcher.record_sent(delivery)
    assert reminders.get(reminder.id).status == CANCELLED
    assert "left as it is" in caplog.text


def test_a_late_outcome_from_a_lost_lease_does_not_overwrite_the_new_claim(
    reminders, case_ids, now
):
    reminder = reminders.add(case_ids[0], "hold_review", now)
    slow = reminders.dispatcher(now)
    stale = slow.claim(reminder.id).delivery
    fresh = reminders.dispatcher(now + slow.lease).claim(reminder.id).delivery
    slow.record_failure(stale, "timed out long ago")
    row = reminders.get(reminder.id)
    assert (row.status, row.attempts, row.last_error) == (PENDING, 2, None)
    reminders.dispatcher(now + slow.lease).record_sent(fresh)
    assert reminders.get(reminder.id).status == SENT


def test_a_recurring_reminder_goes_on_after_its_delivery_failed(clinic, reminders, now):
    case_id = clinic.open_case()
    clinic.plan_taper(case_id, clinic.add_med(case_id, "Xanax").id)
    (checkin,) = reminders.rows(case_id, kind="taper_checkin")
    reminders.recorder.fail_ids.add(checkin.id)
    at = checkin.due_at
    for _ in range(5):
        reminders.dispatch(at)
        at = reminders.get(checkin.id).next_attempt_at or at
    assert reminders.get(checkin.id).status == FAILED
    assert reminders.pending(case_id)["taper_checkin"].due_at == checkin.due_at + timedelta(days=7)


def test_the_due_query_is_served_by_an_index_not_a_table_scan(engine, now):
    (case_id,) = add_cases(engine, 1, now)
    with session_scope(engine) as session:
        # A realistic table: a long history of sent reminders, a few pending ones.
        session.add_all(
            Reminder(case_id=case_id, kind=f"k{i}", due_at=now, recipient_role="x", status=SENT)
            for i in range(3000)
        )
        session.add_all(
            Reminder(case_id=case_id, kind=f"p{i}", due_at=now, recipient_role="x")
            for i in range(10)
        )
    query = Dispatcher(engine, notifiers=[], clock=lambda: now).due_query()
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with session_scope(engine) as session:
        if ON_POSTGRES:
            session.execute(text("ANALYZE reminders"))
            plan = session.execute(text(f"EXPLAIN {compiled}")).scalars().all()
            # PostgreSQL may prefer the smaller partial index of pending rows: also fine.
            assert not any("Seq Scan" in line for line in plan), plan
        else:
            plan = [row[-1] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
            assert any("ix_reminders_status_due_at" in line for line in plan), plan


# -- restarts and many dispatchers ---------------------------------------------------


def test_reminders_that_fell_due_while_nothing_ran_are_each_delivered_once_on_start(
    clinic, reminders, database_url, recorder, now
):
    cases = [clinic.case_in("delivery.prescribed") for _ in range(3)]
    later = now + timedelta(days=30)
    fresh = Dispatcher(make_engine(database_url), notifiers=[recorder], clock=lambda: later)
    fresh.run_pass()
    again = Dispatcher(make_engine(database_url), notifiers=[recorder], clock=lambda: later)
    again.run_pass()
    # A month late: each is past escalate_after too, so each also gets its one escalation.
    assert sorted(recorder.kinds()) == ["escalation"] * 3 + ["shipment_pending"] * 3
    assert set(recorder.counts().values()) == {1}
    assert {r.case_id for r in reminders.rows(status=SENT)} == set(cases)


@pytest.mark.slow
def test_two_dispatchers_deliver_a_thousand_due_reminders_exactly_once(engine, database_url, now):
    kinds = [f"kind-{k}" for k in range(10)]
    case_ids = add_cases(engine, 100, now)
    with session_scope(engine) as session:
        session.add_all(
            Reminder(case_id=c, kind=k, due_at=now, recipient_role="coordinator")
            for c in case_ids
            for k in kinds
        )
    recorder, engines = Recorder(), [make_engine(database_url) for _ in range(2)]
    rules = Settings(webhook_url=None, dispatch_batch_size=50)
    dispatchers = [
        Dispatcher(e, notifiers=[recorder], clock=lambda: now, rules=rules) for e in engines
    ]
    start = threading.Barrier(len(dispatchers))
    results = []

    def run(dispatcher: Dispatcher) -> None:
        start.wait()
        results.append(dispatcher.run_pass())

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for e in engines:
        e.dispose()

    counts = recorder.counts()
    assert len(counts) == 1000
    assert set(counts.values()) == {1}
    assert sum(r.sent for r in results) == 1000
    assert all(r.sent > 0 for r in results), results  # both really worked
    with session_scope(engine) as session:
        assert session.exec(select(Reminder.id).where(*due_clause(now))).all() == []
