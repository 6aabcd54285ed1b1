"""The scheduler: APScheduler as the clock, a pass at once on start, a clean stop on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from models.reminders import SENT
from models.settings import Settings
from schedules.dispatcher import Dispatcher
from schedules.runner import JOB_ID, run_scheduler, start_scheduler
from tests.schedules.conftest import Recorder, add_cases

ROOT = Path(__file__).resolve().parents[2]
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
WAIT = 60  # seconds; a bound for a background thread, never a sleep


class Gate(Recorder):
    """A recorder whose deliveries wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.open, self.closed = threading.Event(), threading.Event(), False

    def notify(self, delivery) -> None:
        self.entered.set()
        assert self.open.wait(WAIT)
        super().notify(delivery)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def due_reminder(reminders, now):
    (case_id,) = add_cases(reminders.engine, 1, now)
    return reminders.add(case_id, "hold_review", LONG_AGO)


def test_start_scheduler_runs_a_pass_at_once_with_the_required_job_options(
    engine, due_reminder, reminders
):
    recorder = Gate()
    recorder.open.set()
    dispatcher = Dispatcher(engine, notifiers=[recorder], rules=Settings(webhook_url=None))
    scheduler = start_scheduler(dispatcher=dispatcher, rules=Settings(dispatch_seconds=3600))
    try:
        assert recorder.delivered.wait(WAIT)  # at once, not an hour from now
        job = scheduler.get_job(JOB_ID)
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval.total_seconds() == 3600
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
    finally:
        scheduler.shutdown()
    # Long overdue: delivered once, and escalated once.
    assert recorder.counts()[due_reminder.id] == 1
    assert sorted(recorder.kinds()) == ["escalation", "hold_review"]
    assert reminders.get(due_reminder.id).status == SENT
    assert recorder.closed  # the dispatcher's notifiers are closed on shutdown


def test_stopping_waits_for_the_running_pass_to_finish(engine, due_reminder, reminders):
    gate, stop = Gate(), threading.Event()
    dispatcher = Dispatcher(engine, notifiers=[gate], rules=Settings(webhook_url=None))
    runner = threading.Thread(target=run_scheduler, kwargs={"dispatcher": dispatcher, "stop": stop})
    runner.start()
    assert gate.entered.wait(WAIT)  # a pass is delivering
    stop.set()
    runner.join(timeout=1)
    assert runner.is_alive()  # still waiting for the pass
    gate.open.set()
    runner.join(timeout=WAIT)
    assert not runner.is_alive()
    assert reminders.get(due_reminder.id).status == SENT


@pytest.mark.slow
def test_the_scheduler_process_delivers_and_stops_cleanly_on_sigterm(
    database_url, due_reminder, reminders
):
    code = (
        "import logging, sys; from models.db import make_engine;"
        "from schedules.runner import run_scheduler;"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s');"
        "run_scheduler(make_engine(sys.argv[1]))"
    )
    env = {"PATH": "/usr/bin:/bin", "CAREPATH_WEBHOOK_URL": "", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", code, database_url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(WAIT, process.kill)
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if f"reminder due id={due_reminder.id}" in line:
                break
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=WAIT)
    finally:
        watchdog.cancel()
    assert process.returncode == 0, "".join(lines) + output
    assert "reminder scheduler stopped" in output
    assert reminders.get(due_reminder.id).status == SENT


class Down:
    """A dispatcher whose database is down."""

    def __init__(self) -> None:
        self.passes = 0

    def run_pass(self):
        self.passes += 1
        from sqlalchemy.exc import OperationalError

        raise OperationalError(
            "SELECT reminders.id ...", {}, ConnectionRefusedError("refused\nmore")
        )


def test_a_failing_pass_logs_one_line_and_backs_off(caplog):
    from schedules.runner import Backoff, dispatch_job

    ticks = iter(range(0, 10_000, 10))  # each call to the clock is 10 seconds later
    backoff, down = Backoff(10, clock=lambda: next(ticks)), Down()
    with caplog.at_level("WARNING", logger="schedules.runner"):
        for _ in range(12):
            dispatch_job(down, backoff)  # type: ignore[arg-type]
    assert down.passes < 6  # waits of 10, 20, 40, 80 s skip the passes in between
    assert len(caplog.records) == down.passes
    for record in caplog.records:
        assert record.exc_info is None and "\n" not in record.getMessage()
        assert "ConnectionRefusedError: refused" in record.getMessage()
        assert "SELECT" not in record.getMessage()
    assert backoff.failures == down.passes
