"""Each case's place on the worklist, and the reminder writes that move it.

``refresh`` keeps a case's row in ``work_items`` (its rank and sort time,
``workflow.worklist`` reads pages of them) whenever its reminders or its
state change; ``cancel`` and ``end_escalations`` end reminders. Every write
to a case runs some of them, so their statements are built once and run on
the session's connection, without ORM objects or a flush.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from models.reminders import CANCELLED, ESCALATION, OPEN_STATUSES, URGENT_KINDS, Reminder, WorkItem
from models.tables import CLOSED_PHASE, AuditEvent, Case
from workflow.audit import core_table

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


def cancel(session: Session, reminder: Reminder, now: datetime) -> set[int]:
    """Cancel an open reminder, and its open escalation, in one statement; the ids it ended.

    ``reminder`` may be an ORM object or a read-only row of one (``schedules.scheduling``).
    """
    return _ended(session, CANCEL, reminder, now)


def _ended(session: Session, statement: Any, original: Reminder, now: datetime) -> set[int]:
    """Run ``statement`` for ``original``; the rows it ended that this session holds say so.
    Returns the ids of the reminders it ended."""
    ended = set(
        session.connection().execute(statement, {"b_id": original.id, "b_now": now}).scalars()
    )
    for reminder_id in ended:
        row = session.identity_map.get(session.identity_key(Reminder, reminder_id))
        if row is not None:
            _set_ended(row, now)
    return ended


READDRESS = (
    update(REMINDERS)
    .where(REMINDERS.c.id == bindparam("b_id"))
    .values(recipient_id=bindparam("b_recipient"), updated_at=bindparam("b_now"))
)
"""Built once: an open reminder follows the case's assignment (``schedules.scheduling``)."""


def readdress(
    session: Session, reminder: Reminder, recipient_id: int | None, now: datetime
) -> None:
    """Address the open ``reminder`` (an ORM object or a row of one) to ``recipient_id``."""
    params = {"b_id": reminder.id, "b_recipient": recipient_id, "b_now": now}
    session.connection().execute(READDRESS, params)
    loaded = session.identity_map.get(session.identity_key(Reminder, reminder.id))
    if loaded is not None:
        set_committed_value(loaded, "recipient_id", recipient_id)
        set_committed_value(loaded, "updated_at", now)


def _set_ended(reminder: Reminder, now: datetime) -> None:
    """The loaded ``reminder`` as ``_END`` left its row."""
    for name, value in (("status", CANCELLED), ("next_attempt_at", None), ("updated_at", now)):
        set_committed_value(reminder, name, value)
