"""Helpers for the reminder tests: the workflow's ``Clinic`` with reminders on, and a recorder.

The clinic drives cases through the real workflow services with the clock
passed in; ``Reminders`` reads the rows back and runs dispatcher passes at a
given time. Nothing here sleeps.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models.db import session_scope
from models.reminders import PENDING, Reminder
from models.settings import Settings
from models.tables import Case
from schedules import policies
from schedules.dispatcher import Dispatcher, PassResult
from schedules.notifiers import Delivery
from tests.workflow.conftest import Clinic
from workflow import hooks


@pytest.fixture(autouse=True)
def reminders_installed() -> Iterator[None]:
    """The reminder listener, registered for the test and removed after it if it was not before."""
    was_installed = policies.LISTENER in hooks.LISTENERS
    policies.install()
    yield
    if not was_installed:
        policies.uninstall()


class Recorder:
    """A thread-safe notifier that counts deliveries per reminder id; may fail on purpose."""

    def __init__(self, fail_ids: set[int] | None = None) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self.fail_ids = fail_ids or set()
        self.delivered = threading.Event()

    def notify(self, delivery: Delivery) -> None:
        if delivery.id in self.fail_ids:
            raise RuntimeError(f"receiver refused {delivery.id}")
        with self.lock:
            self.deliveries.append(delivery)
        self.delivered.set()

    def counts(self) -> Counter[int]:
        with self.lock:
            return Counter(d.id for d in self.deliveries)

    def kinds(self) -> list[str]:
        with self.lock:
            return [d.kind for d in self.deliveries]


class Reminders:
    """Reads a test database's reminders and dispatches them at chosen times."""

    def __init__(self, engine: Engine, recorder: Recorder, rules: Settings) -> None:
        self.engine = engine
        self.recorder = recorder
        self.rules = rules

    def rows(self, case_id: int | None = None, **filters: Any) -> list[Reminder]:
        query = select(Reminder).order_by(col(Reminder.id))
        if case_id is not None:
            query = query.where(Reminder.case_id == case_id)
        for name, value in filters.items():
            query = query.where(getattr(Reminder, name) == value)
        with session_scope(self.engine) as session:
            return list(session.exec(query).all())

    def pending(self, case_id: int) -> dict[str, Reminder]:
        """The case's pending reminders by kind, never two of a kind (of one taper, for a
        taper's check-in: then the oldest pending check-in of the case)."""
        rows = self.rows(case_id, status=PENDING)
        keys = [(r.kind, r.taper_id) for r in rows]
        assert len(keys) == len(set(keys)), f"duplicate pending reminders: {keys}"
        found: dict[str, Reminder] = {}
        for reminder in rows:
            found.setdefault(reminder.kind, reminder)
        return found

    def get(self, reminder_id: int) -> Reminder:
        with session_scope(self.engine) as session:
            return session.get_one(Reminder, reminder_id)

    def dispatcher(self, at: datetime, **kwargs: Any) -> Dispatcher:
        kwargs.setdefault("notifiers", [self.recorder])
        kwargs.setdefault("rules", self.rules)
        return Dispatcher(self.engine, clock=lambda: at, **kwargs)

    def dispatch(self, at: datetime, **kwargs: Any) -> PassResult:
        """One dispatcher pass with the clock at ``at``."""
        return self.dispatcher(at, **kwargs).run_pass()

    def add(self, case_id: int, kind: str, due_at: datetime, **values: Any) -> Reminder:
        """Insert a reminder row directly (for dispatcher tests that need no workflow)."""
        reminder = Reminder(
            case_id=case_id, kind=kind, due_at=due_at, recipient_role="coordinator", **values
        )
        with session_scope(self.engine) as session:
            session.add(reminder)
        return reminder


def add_cases(engine: Engine, count: int, now: datetime) -> list[int]:
    """Insert bare case rows (no workflow, no reminders), for dispatcher tests."""
    rows = [
        Case(patient_ref=f"bulk-{i}", patient_state="CA", state="evaluation", phase="evaluation")
        for i in range(count)
    ]
    with session_scope(engine) as session:
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows if row.id is not None]


@pytest.fixture
def rules() -> Settings:
    """The default settings, without a webhook whatever the environment says."""
    return Settings(webhook_url=None, webhook_secret=None)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def reminders(engine, recorder, rules) -> Reminders:
    return Reminders(engine, recorder, rules)


@pytest.fixture
def clinic(engine, clinician, coordinator, now) -> Clinic:
    """Cases driven through the real workflow services, with the reminder listener installed."""
    return Clinic(engine=engine, clinician=clinician, coordinator=coordinator, now=now)
