"""The worklist: every case that needs something from staff, most urgent first (SPEC.md 9).

Order: an open ``safety_review`` or ``escalation``; then open reminders by
how long overdue (earliest due first, so due ones follow overdue ones); then
open cases with no open reminder, longest in their state first. Each case's
place is kept in ``work_items`` by ``workflow.places.refresh`` whenever its
reminders or its state change, so a page is one index walk and its cost grows with the page,
not with the number of cases. What blocks each trigger comes from
``workflow.cases.list_triggers``: the same guards as ``/transitions``.

Also here: acknowledging a reminder, which is what a person does from the
worklist.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, exists, or_, tuple_
from sqlmodel import Session, col, select

from models.reminders import (
    ACKNOWLEDGED,
    OPEN_STATUSES,
    Reminder,
    WorkItem,
)
from models.tables import Case
from workflow.audit import append_event, lock_case, save_case
from workflow.cases import TriggerOption, list_triggers
from workflow.definition import CLINICIAN, Actor
from workflow.errors import Conflict, Forbidden, NotFound, ValidationFailed
from workflow.places import WAITING, end_escalations, refresh

# -- reading a page ---------------------------------------------------------------


@dataclass(frozen=True)
class CaseSummary:
    """The case as the worklist shows it."""

    id: int
    patient_ref: str
    state: str
    phase: str
    assigned_clinician_id: int | None
    assigned_coordinator_id: int | None


@dataclass(frozen=True)
class OpenReminder:
    """An open reminder of the case, and how long past its due time it is (0 if not yet)."""

    reminder: Reminder
    overdue_by_seconds: int


@dataclass(frozen=True)
class Item:
    """One case on the worklist."""

    case: CaseSummary
    reminders: list[OpenReminder]
    blocked: list[TriggerOption]
    in_state_since: datetime


def worklist(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    assignee: int | None = None,
    role: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[Item], str | None]:
    """A page of the worklist, and the cursor of the next page (None on the last).

    ``assignee``: only cases whose assigned clinician or coordinator is this
    user, or with an open reminder addressed to them. ``role``: only cases with
    an open reminder for this role, or with none at all (a stuck case is
    everyone's). ``kind``: only cases with an open reminder of this kind.
    ``after``: a cursor this function gave.
    """
    query = (
        select(WorkItem, Case)
        .join(Case, col(Case.id) == col(WorkItem.case_id))
        .where(col(WorkItem.rank).is_not(None))
        .order_by(col(WorkItem.rank), col(WorkItem.sort_at), col(WorkItem.case_id))
        .limit(limit + 1)
    )
    for condition in _filters(assignee, role, kind):
        query = query.where(condition)
    if after is not None:
        key = tuple_(col(WorkItem.rank), col(WorkItem.sort_at), col(WorkItem.case_id))
        query = query.where(key > tuple_(*parse_cursor(after)))
    rows = list(session.exec(query).all())
    page = rows[:limit]
    next_cursor = cursor_for(page[-1][0]) if len(rows) > limit else None
    reminders = _open_reminders(session, [case.id for _, case in page if case.id is not None])
    items = [
        _item(session, item, case, reminders.get(case.id or 0, []), actor, now)
        for item, case in page
    ]
    return items, next_cursor


def _has_open(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """An open reminder of the row's case matching ``condition`` exists."""
    return exists().where(
        col(Reminder.case_id) == col(WorkItem.case_id),
        col(Reminder.status).in_(OPEN_STATUSES),
        condition,
    )


def _filters(assignee: int | None, role: str | None, kind: str | None) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if assignee is not None:
        mine = or_(
            col(Case.assigned_clinician_id) == assignee,
            col(Case.assigned_coordinator_id) == assignee,
        )
        filters.append(or_(mine, _has_open(col(Reminder.recipient_id) == assignee)))
    if role is not None:
        filters.append(
            or_(col(WorkItem.rank) == WAITING, _has_open(col(Reminder.recipient_role) == role))
        )
    if kind is not None:
        filters.append(_has_open(col(Reminder.kind) == kind))
    return filters


def _open_reminders(session: Session, case_ids: list[int]) -> dict[int, list[Reminder]]:
    """The open reminders of these cases, by case, earliest due first."""
    if not case_ids:
        return {}
    query = (
        select(Reminder)
        .where(col(Reminder.case_id).in_(case_ids), col(Reminder.status).in_(OPEN_STATUSES))
        .order_by(col(Reminder.due_at), col(Reminder.id))
    )
    found: dict[int, list[Reminder]] = {}
    for reminder in session.exec(query):
        found.setdefault(reminder.case_id, []).append(reminder)
    return found


def _item(
    session: Session,
    item: WorkItem,
    case: Case,
    reminders: list[Reminder],
    actor: Actor,
    now: datetime,
) -> Item:
    assert case.id is not None
    summary = CaseSummary(
        id=case.id,
        patient_ref=case.patient_ref,
        state=case.state,
        phase=case.phase,
        assigned_clinician_id=case.assigned_clinician_id,
        assigned_coordinator_id=case.assigned_coordinator_id,
    )
    open_reminders = [
        OpenReminder(r, max(0, int((now - r.due_at).total_seconds()))) for r in reminders
    ]
    blocked = list_triggers(session, case_id=case.id, actor=actor, now=now)
    # state_since was written with the case's last transition event, at the same moment.
    return Item(summary, open_reminders, blocked, item.state_since)


# -- cursors ----------------------------------------------------------------------

CURSOR_NAME = "worklist"


def cursor_for(item: WorkItem) -> str:
    """The opaque cursor that continues after ``item``."""
    assert item.sort_at is not None  # every ranked item has a sort time
    micros = int(item.sort_at.timestamp() * 1_000_000)
    raw = f"{CURSOR_NAME}:{item.rank}:{micros}:{item.case_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_cursor(cursor: str) -> tuple[int, datetime, int]:
    """The (rank, sort time, case id) a cursor continues after; a 422 for anything else."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        name, rank, micros, case_id = raw.decode("ascii").split(":")
        if name != CURSOR_NAME:
            raise ValueError(name)
        at = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
        return int(rank), at, int(case_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError) as exc:
        raise ValidationFailed(
            "The cursor is not one this list gave.",
            [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}],
        ) from exc


# -- acknowledging ----------------------------------------------------------------


def may_acknowledge(role: str, reminder: Reminder) -> bool:
    """A user of the reminder's role may acknowledge it, and a clinician any reminder."""
    return role == CLINICIAN or role == reminder.recipient_role


def acknowledge(session: Session, *, reminder_id: int, actor: Actor, now: datetime) -> Reminder:
    """Acknowledge an open reminder: its repeats stop, and its escalation ends."""
    reminder = session.get(Reminder, reminder_id)
    if reminder is None:
        raise NotFound(f"Reminder {reminder_id} does not exist.")
    if not may_acknowledge(actor.role, reminder):
        raise Forbidden(
            f"A {actor.role} may not acknowledge a reminder for a {reminder.recipient_role}."
        )
    case = lock_case(session, reminder.case_id)
    session.refresh(reminder)  # as it is now the case is locked
    if reminder.status not in OPEN_STATUSES:
        raise Conflict(f"Reminder {reminder_id} is {reminder.status}, not open.")
    reminder.status, reminder.next_attempt_at, reminder.updated_at = ACKNOWLEDGED, None, now
    reminder.acknowledged_at, reminder.acknowledged_by = now, actor.id
    session.add(reminder)
    end_escalations(session, reminder, now)
    append_event(
        session,
        case,
        actor,
        now,
        kind="fact",
        data={"fact": "reminder_acknowledge", "id": reminder_id, "kind": reminder.kind},
    )
    save_case(session, case, now, audit_hash=case.audit_hash)
    refresh(session, case, now)
    return reminder
