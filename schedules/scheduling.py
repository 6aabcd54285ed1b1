"""Writing reminders: scheduled and cancelled inside the transaction of the change that causes them.

The workflow locks the case before it calls the hook, and the dispatcher locks
it before it writes a case's reminders, so checking for an open reminder before
inserting one cannot race: the partial unique index
``uq_reminders_pending_case_kind`` is the database's backstop, never the path.
Every change here ends with the case's place on the worklist brought up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, insert
from sqlmodel import Session, col, select

from models.reminders import ESCALATION, OPEN_STATUSES, PENDING, Reminder
from models.tables import Case
from schedules.rules import Change, Policy
from workflow import places
from workflow.casefacts import CaseFacts, one_of, rows
from workflow.definition import CLINICIAN, COORDINATOR

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

ASSIGNEE: dict[str, Callable[[Case], int | None]] = {
    CLINICIAN: lambda case: case.assigned_clinician_id,
    COORDINATOR: lambda case: case.assigned_coordinator_id,
}
"""The case's assigned user of each role: a reminder's ``recipient_id``."""


def assignee(case: Case, role: str) -> int | None:
    """The case's assigned user of ``role``, if any."""
    return ASSIGNEE.get(role, lambda _: None)(case)


OPEN_OF_CASE = (
    select(Reminder)
    .where(Reminder.case_id == bindparam("case_id"), one_of(Reminder.status, OPEN_STATUSES))
    .order_by(col(Reminder.id))
)
"""Built once: every write to a case reads its open reminders."""


def open_reminders(session: Session, case_id: int | None) -> list[Reminder]:
    """The case's open reminders (pending or sent), oldest first, as read-only rows: every
    write reads them, and ``cancel`` and ``readdress`` change them with one UPDATE each."""
    found = rows(session, OPEN_OF_CASE, {"case_id": case_id}).all()
    return cast("list[Reminder]", list(found))  # rows, read by Reminder's column names


INSERT_RETURNING = insert(places.REMINDERS).returning(*places.REMINDERS.c)
"""Built once: a new reminder, read back whole as a row like ``open_reminders``'s (its
defaults, ``status`` pending among them, filled in by the insert)."""


def cancel(session: Session, reminder: Reminder, now: datetime) -> set[int]:
    """Cancel an open reminder, and its escalation, at once (so a new one may be inserted);
    the ids of the reminders it ended."""
    return places.cancel(session, reminder, now)


def schedule(
    session: Session,
    case: Case,
    policy: Policy,
    due_at: datetime,
    now: datetime,
    existing: list[Reminder] | None = None,
    taper_id: int | None = None,
) -> Reminder:
    """The case's one open reminder of ``policy`` (of the taper ``taper_id``, for a policy
    ``per_taper``): the existing one, or a new one.

    ``existing``: the reminders that count as the case's current ones (its open
    reminders unless the caller says otherwise); kept up to date here.
    """
    if existing is None:
        existing = open_reminders(session, case.id)
    current = [r for r in existing if r.kind == policy.kind and r.taper_id == taper_id]
    if current and not policy.restarts:
        return current[0]
    ended: set[int] = set()
    for reminder in current:
        ended |= cancel(session, reminder, now)
    existing[:] = [r for r in existing if r.id not in ended]
    assert case.id is not None  # a case the workflow has written
    values = {
        "case_id": case.id,
        "kind": policy.kind,
        "due_at": due_at,
        "recipient_role": policy.to,
        "recipient_id": assignee(case, policy.to),
        "taper_id": taper_id,
        "created_at": now,
        "updated_at": now,
    }
    # A row, not an ORM object: nothing in the write changes a reminder it made (a
    # cancel or a readdress is an UPDATE of its own); a hold runs 4,107 -> 3,554 Python
    # calls for it (benchmarks/README.md).
    session.flush()  # what the session holds unwritten goes first (nothing, on the hot path)
    reminder = cast("Reminder", session.connection().execute(INSERT_RETURNING, values).one())
    existing.append(reminder)
    return reminder


def cancel_satisfied(
    session: Session,
    facts: CaseFacts,
    policies: dict[str, Policy],
    now: datetime,
    reminders: list[Reminder],
    fact: str | None = None,
) -> list[Reminder]:
    """Cancel each of the case's open ``reminders`` whose policy no longer wants it; after
    ``fact`` was recorded, only those it may end.

    Returns the reminders still open.
    """
    still_open = []
    ended: set[int] = set()
    for reminder in reminders:
        if reminder.id in ended:  # an escalation ended with its original
            continue
        policy = policies.get(reminder.kind)
        if policy is not None and policy.may_end(fact) and policy.satisfied(facts, reminder):
            ended |= cancel(session, reminder, now)
        else:
            still_open.append(reminder)
    return still_open


@dataclass(frozen=True)
class Applied:
    """The case's open reminders after a change, and whether the change ended or made any."""

    still_open: list[Reminder]
    moved: bool


def apply(session: Session, change: Change, policies: Iterable[Policy]) -> Applied:
    """Bring the case's reminders up to date with ``change``."""
    by_kind = {policy.kind: policy for policy in policies}
    found = open_reminders(session, change.facts.case.id)
    still_open = cancel_satisfied(session, change.facts, by_kind, change.now, found, change.fact)
    for policy in by_kind.values():
        for event in policy.created_by:
            anchor = event.anchor(change)
            if anchor is not None and not policy.satisfied(change.facts):
                due_at = policy.due.due(anchor, change.facts)
                taper_id = change.record.id if policy.per_taper else None
                schedule(
                    session, change.facts.case, policy, due_at, change.now, still_open, taper_id
                )
    return Applied(still_open, moved=[r.id for r in still_open] != [r.id for r in found])


ASSIGNMENT_FACTS = frozenset({"assignment"})
"""The facts that change a case's assignees (as ``approve`` may): its open reminders follow."""


def readdress(session: Session, case: Case, reminders: list[Reminder], now: datetime) -> None:
    """Address each open reminder to the case's current assignee of its role.

    An open reminder asks the case's person to act: when the assignment changes
    (``POST /cases/{id}/assignment``, or ``approve`` assigning its clinician),
    its repeats go to the new assignee. Escalations go to a whole role and stay
    so; a reminder no longer open keeps the user it was for.
    """
    for reminder in reminders:
        if reminder.kind == ESCALATION or reminder.status not in OPEN_STATUSES:
            continue
        wanted = assignee(case, reminder.recipient_role)
        if reminder.recipient_id != wanted:
            places.readdress(session, reminder, wanted, now)


def schedule_next(
    session: Session, case: Case, policy: Policy, previous: Reminder, now: datetime
) -> Reminder | None:
    """After a recurring reminder (``previous``) is delivered, schedule its next occurrence,
    for the same taper if it is one's, while still wanted."""
    facts = CaseFacts(case=case, now=now, session=session)
    if not policy.recurs or policy.satisfied(facts, previous):
        return None
    pending = [r for r in open_reminders(session, case.id) if r.status == PENDING]
    due = policy.next_due(previous.due_at, facts, now)
    reminder = schedule(session, case, policy, due, now, pending, previous.taper_id)
    places.refresh(session, case, now)
    return reminder


class ReminderListener:
    """The workflow hook's listener: every transition and fact updates the case's reminders."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies = tuple(policies)
        self.concerns = ASSIGNMENT_FACTS.union(
            *(policy.ended_by for policy in self.policies),
            *(event.facts for policy in self.policies for event in policy.created_by),
        )
        """The facts whose recording may make, end or readdress a reminder; the write of any
        other fact leaves the case's reminders, and so its place on the worklist, alone."""

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
        applied = apply(session, Change(facts=facts, now=now, entered=entered), self.policies)
        readdress(session, case, applied.still_open, now)
        places.refresh(session, case, now, transitioned=True, open_reminders=applied.still_open)

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
        if fact not in self.concerns:
            return
        change = Change(facts=facts, now=now, fact=fact, record=record)
        applied = apply(session, change, self.policies)
        readdress(session, case, applied.still_open, now)
        # A fact moves a case on the worklist only through its reminders: its rank and sort
        # time are theirs, its phase and state_since change with a transition alone.
        if applied.moved:
            places.refresh(session, case, now, open_reminders=applied.still_open)
