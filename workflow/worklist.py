"""The worklist: every case that needs something from staff, most urgent first (SPEC.md 9).

Order: an open ``safety_review`` or ``escalation``; then open reminders by
how long overdue (earliest due first, so due ones follow overdue ones); then
open cases with no open reminder, longest in their state first. Each case's
place is kept in ``work_items`` by ``refresh`` whenever its reminders or its
state change, so a page is one index walk and its cost grows with the page,
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
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, insert, or_, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from models.reminders import (
    ACKNOWLEDGED,
    CANCELLED,
    ESCALATION,
    OPEN_STATUSES,
    URGENT_KINDS,
    Reminder,
    WorkItem,
)
from models.tables import CLOSED_PHASE, AuditEvent, Case
from workflow.audit import append_event, core_table, lock_case, save_case
from workflow.cases import TriggerOption, list_triggers
from workflow.definition import CLINICIAN, Actor
from workflow.errors import Conflict, Forbidden, NotFound, ValidationFailed

URGENT, REMINDED, WAITING = 0, 1, 2
"""The worklist's ranks: urgent reminders, other open reminders, open cases with none."""


# -- keeping each case's place ----------------------------------------------------


def last_transition_at(session: Session, case_id: int) -> datetime | None:
    """When the case's last transition event happened: when it entered its state."""
    query = (
        select(AuditEvent.at)
        .where(AuditEvent.case_id == case_id, AuditEvent.kind == "transition")
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


WORK_ITEMS = core_table(WorkItem)
READ_PLACE = select(WORK_ITEMS.c.rank, WORK_ITEMS.c.sort_at, WORK_ITEMS.c.state_since).where(
    WORK_ITEMS.c.case_id == bindparam("b_case_id")
)
INSERT_PLACE = insert(WORK_ITEMS)
UPDATE_PLACE = update(WORK_ITEMS).where(WORK_ITEMS.c.case_id == bindparam("b_case_id"))
"""Built once, as the two above: the SET clause is the columns given."""


def _upsert(dialect_insert: Any) -> Any:
    statement = dialect_insert(WORK_ITEMS)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[WORK_ITEMS.c.case_id],
        set_={
            "rank": excluded.rank,
            "sort_at": excluded.sort_at,
            "state_since": excluded.state_since,
        },
    )


UPSERT_PLACE = {"sqlite": _upsert(sqlite.insert), "postgresql": _upsert(postgresql.insert)}
"""Built once, per database: a transition's place, written without reading the old one."""


def refresh(
    session: Session,
    case: Case,
    now: datetime,
    *,
    transitioned: bool = False,
    open_reminders: list[Reminder] | None = None,
) -> None:
    """Recompute the case's place on the worklist; ``transitioned``: it just made a transition.

    ``open_reminders``: the case's open reminders, if the caller has them already.
    """
    assert case.id is not None  # a stored case
    if open_reminders is not None:
        due = [(r.kind, r.due_at) for r in open_reminders if r.status in OPEN_STATUSES]
    else:
        due = list(
            session.exec(
                select(Reminder.kind, Reminder.due_at).where(
                    Reminder.case_id == case.id, col(Reminder.status).in_(OPEN_STATUSES)
                )
            ).all()
        )
    rank, sort_at = _place(case, due)
    connection = session.connection()
    upsert = UPSERT_PLACE.get(connection.dialect.name)
    if transitioned and upsert is not None:
        place: dict[str, Any] | None = _placed(case.id, rank, sort_at, since=now)
        connection.execute(upsert, place)
    else:
        place = _read_then_write(session, case.id, rank, sort_at, now, transitioned)
    loaded = session.identity_map.get(session.identity_key(WorkItem, case.id))
    if loaded is not None and place is not None:
        for name, value in place.items():
            set_committed_value(loaded, name, value)


def _read_then_write(
    session: Session,
    case_id: int,
    rank: int | None,
    sort_at: datetime | None,
    now: datetime,
    transitioned: bool,
) -> dict[str, Any] | None:
    """Insert the case's place, or update it if it changed; what was written, if anything."""
    connection = session.connection()
    row = connection.execute(READ_PLACE, {"b_case_id": case_id}).first()
    if row is None:
        since = now if transitioned else last_transition_at(session, case_id) or now
        place = _placed(case_id, rank, sort_at, since)
        connection.execute(INSERT_PLACE, place)
        return place
    place = _placed(case_id, rank, sort_at, now if transitioned else row.state_since)
    if (place["rank"], place["sort_at"], place["state_since"]) == tuple(row):
        return None
    changed = {name: value for name, value in place.items() if name != "case_id"}
    connection.execute(UPDATE_PLACE, {"b_case_id": case_id, **changed})
    return place


def _place(case: Case, due: list[tuple[str, datetime]]) -> tuple[int | None, datetime | None]:
    """The case's rank and sort time, given its open reminders' kinds and due times; the sort
    time of a ``WAITING`` case is None here: it is the time it entered its state."""
    urgent = [at for kind, at in due if kind in URGENT_KINDS]
    if urgent:
        return URGENT, min(urgent)
    if due:
        return REMINDED, min(at for _, at in due)
    if case.phase != CLOSED_PHASE:
        return WAITING, None
    return None, None


def _placed(
    case_id: int, rank: int | None, sort_at: datetime | None, since: datetime
) -> dict[str, Any]:
    """The work item's columns: a ``WAITING`` case sorts by ``since``."""
    if rank == WAITING:
        sort_at = since
    return {"case_id": case_id, "rank": rank, "sort_at": sort_at, "state_since": since}


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


# -- ending reminders -------------------------------------------------------------

REMINDERS = core_table(Reminder)
_OPEN = or_(*(REMINDERS.c.status == status for status in OPEN_STATUSES))
_ESCALATION_OF = and_(
    REMINDERS.c.escalates == bindparam("b_id"), REMINDERS.c.kind == ESCALATION, _OPEN
)
_END = update(REMINDERS).values(
    status=CANCELLED, next_attempt_at=None, updated_at=bindparam("b_now")
)
END_ESCALATIONS = _END.where(_ESCALATION_OF).returning(REMINDERS.c.id)
CANCEL = _END.where(or_(REMINDERS.c.id == bindparam("b_id"), _ESCALATION_OF)).returning(
    REMINDERS.c.id
)
"""Built once: ending a reminder's open escalation, alone or with the reminder itself."""


def end_escalations(session: Session, original: Reminder, now: datetime) -> None:
    """Cancel the open escalation of a reminder that is no longer open."""
    _ended(session, END_ESCALATIONS, original, now)


def cancel(session: Session, reminder: Reminder, now: datetime) -> None:
    """Cancel an open reminder, and its open escalation, in one statement."""
    _ended(session, CANCEL, reminder, now)
    _set_ended(reminder, now)


def _ended(session: Session, statement: Any, original: Reminder, now: datetime) -> None:
    """Run ``statement`` for ``original``; the rows it ended that this session holds say so."""
    ended = session.connection().execute(statement, {"b_id": original.id, "b_now": now})
    for reminder_id in ended.scalars():
        row = session.identity_map.get(session.identity_key(Reminder, reminder_id))
        if row is not None:
            _set_ended(row, now)


def _set_ended(reminder: Reminder, now: datetime) -> None:
    """The loaded ``reminder`` as ``_END`` left its row."""
    for name, value in (("status", CANCELLED), ("next_attempt_at", None), ("updated_at", now)):
        set_committed_value(reminder, name, value)
