"""Writing reminders: scheduled and cancelled inside the transaction of the change that causes them.

The workflow locks the case before it calls the hook, and the dispatcher locks
it before it schedules a recurring reminder's next occurrence, so checking for
a pending reminder before inserting one cannot race: the partial unique index
``uq_reminders_pending_case_kind`` is the database's backstop, never the path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, select

from models.reminders import CANCELLED, PENDING, Reminder
from models.tables import Case
from schedules.rules import Change, Policy
from workflow.casefacts import CaseFacts

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


PENDING_OF_CASE = select(Reminder).where(
    Reminder.case_id == bindparam("case_id"), Reminder.status == PENDING
)


def pending_reminders(session: Session, case_id: int | None) -> list[Reminder]:
    """The case's pending reminders."""
    return list(session.exec(PENDING_OF_CASE, params={"case_id": case_id}).all())


def cancel(session: Session, reminder: Reminder, now: datetime) -> None:
    """Cancel a pending reminder, at once, so a new one of its kind may be inserted."""
    reminder.status, reminder.next_attempt_at, reminder.updated_at = CANCELLED, None, now
    session.add(reminder)
    session.flush()


def schedule(
    session: Session,
    case: Case,
    policy: Policy,
    due_at: datetime,
    now: datetime,
    pending: list[Reminder] | None = None,
) -> Reminder:
    """The case's one pending reminder of ``policy``: the existing one, or a new one.

    ``pending``: the case's pending reminders, if the caller has read them
    already; kept up to date here.
    """
    if pending is None:
        pending = pending_reminders(session, case.id)
    existing = next((r for r in pending if r.kind == policy.kind), None)
    if existing is not None:
        if not policy.restarts:
            return existing
        cancel(session, existing, now)
        pending.remove(existing)
    assert case.id is not None  # a case the workflow has written
    reminder = Reminder(
        case_id=case.id,
        kind=policy.kind,
        due_at=due_at,
        recipient_role=policy.to,
        created_at=now,
        updated_at=now,
    )
    session.add(reminder)
    session.flush()
    pending.append(reminder)
    return reminder


def cancel_satisfied(
    session: Session, facts: CaseFacts, policies: dict[str, Policy], now: datetime
) -> list[Reminder]:
    """Cancel every pending reminder of the case whose policy no longer wants it.

    Returns the reminders still pending.
    """
    still_pending = []
    for reminder in pending_reminders(session, facts.case.id):
        policy = policies.get(reminder.kind)
        if policy is not None and policy.satisfied(facts):
            cancel(session, reminder, now)
        else:
            still_pending.append(reminder)
    return still_pending


def apply(session: Session, change: Change, policies: Iterable[Policy]) -> None:
    """Bring the case's reminders up to date with ``change``."""
    by_kind = {policy.kind: policy for policy in policies}
    pending = cancel_satisfied(session, change.facts, by_kind, change.now)
    for policy in by_kind.values():
        for event in policy.created_by:
            anchor = event.anchor(change)
            if anchor is not None and not policy.satisfied(change.facts):
                due_at = policy.due.due(anchor, change.facts)
                schedule(session, change.facts.case, policy, due_at, change.now, pending)


def schedule_next(
    session: Session, case: Case, policy: Policy, previous_due: datetime, now: datetime
) -> Reminder | None:
    """After a recurring reminder ends, schedule its next occurrence while it is still wanted."""
    facts = CaseFacts(case=case, now=now, session=session)
    if not policy.repeats or policy.satisfied(facts):
        return None
    return schedule(session, case, policy, policy.next_due(previous_due, facts, now), now)


class ReminderListener:
    """The workflow hook's listener: every transition and fact updates the case's reminders."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies = tuple(policies)

    def on_transition(
        self,
        session: Session,
        case: Case,
        *,
        trigger: str,
        from_state: str | None,
        now: datetime,
        facts: CaseFacts,
    ) -> None:
        entered = case.state if case.state != from_state else None
        apply(session, Change(facts=facts, now=now, entered=entered), self.policies)

    def on_fact(
        self,
        session: Session,
        case: Case,
        *,
        fact: str,
        record: Any,
        now: datetime,
        facts: CaseFacts,
    ) -> None:
        apply(session, Change(facts=facts, now=now, fact=fact, record=record), self.policies)
