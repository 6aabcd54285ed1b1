"""Restarts and crashes, with real processes on one database: nothing lost, nothing repeated."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from models.reminders import PENDING, SENT
from models.settings import Settings
from schedules.dispatcher import Dispatcher

ROOT = Path(__file__).resolve().parents[2]
DELIVERED = re.compile(r"reminder due id=(\d+) .* attempt=(\d+)")

pytestmark = pytest.mark.slow


def dispatch_in_a_new_process(url: str, at: datetime, mode: str = "") -> tuple[int, Counter]:
    """Run one pass in a fresh interpreter; its exit code, and deliveries per reminder id."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.schedules.dispatch_once", url, at.isoformat(), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, Counter(int(m[1]) for m in DELIVERED.finditer(done.stdout))


def test_a_restart_delivers_what_fell_due_while_down_exactly_once(
    clinic, reminders, database_url, now
):
    cases = [clinic.open_case() for _ in range(4)]
    down_until = now + timedelta(days=8)  # every evaluation_overdue fell due meanwhile

    code, first = dispatch_in_a_new_process(database_url, down_until)
    code_again, second = dispatch_in_a_new_process(database_url, down_until)

    assert (code, code_again) == (0, 0)
    assert first == {r.id: 1 for r in reminders.rows(kind="evaluation_overdue")}
    assert second == Counter()
    assert {r.case_id for r in reminders.rows(status=SENT)} == set(cases)


def test_a_process_killed_mid_delivery_is_retried_once_its_lease_runs_out(
    clinic, reminders, database_url, now
):
    case_id = clinic.open_case()
    (reminder,) = reminders.rows(case_id)
    at = reminder.due_at
    lease = Dispatcher(reminders.engine, notifiers=[], rules=Settings(webhook_url=None)).lease

    code, crashed = dispatch_in_a_new_process(database_url, at, "crash")
    assert (code, crashed) == (3, Counter({reminder.id: 1}))
    row = reminders.get(reminder.id)
    assert (row.status, row.attempts, row.next_attempt_at) == (PENDING, 1, at + lease)

    _, during_lease = dispatch_in_a_new_process(database_url, at + lease - timedelta(seconds=1))
    _, after_lease = dispatch_in_a_new_process(database_url, at + lease)
    assert during_lease == Counter()
    assert after_lease == {reminder.id: 1}
    row = reminders.get(reminder.id)
    assert (row.status, row.attempts) == (SENT, 2)
