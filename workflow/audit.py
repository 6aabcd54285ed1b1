"""Writing to a case: the compare-and-set on its version, and its audit event.

Both run on every write, so both are SQLAlchemy Core statements built once:
the ORM's bulk-update path and its unit of work cost more than the statements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, bindparam, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col, select

from models.tables import AuditEvent, Case
from workflow.audit_chain import seal
from workflow.definition import Actor
from workflow.errors import NotFound, VersionConflict


def record_id(row: Any) -> int:
    """The id of a stored row (one that has been flushed, so its id is set)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has not been stored yet")
    return int(row.id)


LOCK_CASE = select(Case).where(col(Case.id) == bindparam("case_id")).with_for_update()


def lock_case(session: Session, case_id: int, expected_version: int | None = None) -> Case:
    """The case, locked for this transaction's write; checks ``If-Match`` against it.

    PostgreSQL locks the row (``FOR UPDATE``); SQLite's ``BEGIN IMMEDIATE``
    already holds the write lock.
    """
    case = session.exec(LOCK_CASE, params={"case_id": case_id}).first()
    if case is None:
        raise NotFound(f"Case {case_id} does not exist.")
    if expected_version is not None and case.version != expected_version:
        raise VersionConflict(
            f"Case {case_id} is at version {case.version}, not {expected_version}: "
            "read it again before writing."
        )
    return case


def core_table(model: type[SQLModel]) -> Table:
    """The Core ``Table`` of a SQLModel table class, for statements built once."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


CASES = core_table(Case)
CASE_COLUMNS = frozenset(CASES.c.keys())
SAVE_CASE = update(CASES).where(
    CASES.c.id == bindparam("b_id"), CASES.c.version == bindparam("b_version")
)
"""Built once: the compare-and-set of every write; the SET clause is the values given."""

INSERT_EVENT = insert(core_table(AuditEvent))
"""Built once: the audit event of every write (nothing reads it back in the write)."""

TRANSITIONS = "carepath_transitions"
"""``session.info`` key: the column values of the transition events appended in the session's
transaction, for whoever reports them once it commits (``api.logs``)."""


_INSERTS: dict[str, tuple[Insert, tuple[str, ...]]] = {}


def _insert_of(table: Table) -> tuple[Insert, tuple[str, ...]]:
    """The INSERT of a new row of ``table``, built once, and the columns it takes."""
    if table.name not in _INSERTS:
        names = tuple(column.key for column in table.c if not column.primary_key)
        _INSERTS[table.name] = (insert(table), names)
    return _INSERTS[table.name]


def store(session: Session, row: SQLModel) -> None:
    """Write a new or changed ``row`` now, with whatever else the session holds unwritten.

    A new row is a Core INSERT built once per table, and the row is then kept
    in the session as a row read back would be (a later change to it is an
    UPDATE); a row the session holds already goes through the ORM's flush.
    """
    if not sa_inspect(row).transient:
        session.add(row)
        session.flush()
        return
    session.flush()  # what the session holds unwritten goes first (nothing, on the hot path)
    table = core_table(type(row))
    statement, names = _insert_of(table)
    values = {name: getattr(row, name) for name in names}
    for column in table.primary_key.columns:  # a key the row brings with it (not an id)
        if getattr(row, column.key) is not None:
            values[column.key] = getattr(row, column.key)
    key = session.connection().execute(statement, values).inserted_primary_key
    assert key is not None  # one row inserted
    for column, value in zip(table.primary_key.columns, key, strict=True):
        setattr(row, column.key, value)
    make_transient_to_detached(row)
    session.add(row)


def save_case(session: Session, case: Case, now: datetime, **values: Any) -> None:
    """Write ``values`` to the case and bump its version, only if nobody else did meanwhile.

    ``values`` are columns of the case; the loaded case takes them too.
    """
    values = {"version": case.version + 1, "updated_at": now, **values}
    unknown = values.keys() - CASE_COLUMNS
    if unknown:
        raise ValueError(f"cases has no column {', '.join(sorted(unknown))}")
    params = {"b_id": case.id, "b_version": case.version, **values}
    result = session.connection().execute(SAVE_CASE, params)
    if result.rowcount != 1:
        raise VersionConflict(f"Case {case.id} changed while this write was made: try again.")
    for name, value in values.items():
        set_committed_value(case, name, value)


def append_event(
    session: Session,
    case: Case,
    actor: Actor,
    now: datetime,
    *,
    kind: str,
    data: dict[str, Any],
    trigger: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
) -> None:
    """Append one audit event for a write to ``case``, chained to the case's previous one.

    The event's hash becomes the loaded case's ``audit_hash``, its chain head,
    which the caller writes with the case (``save_case(..., audit_hash=case.audit_hash)``).
    """
    values: dict[str, Any] = {
        "case_id": record_id(case),
        "at": now,
        "actor_id": actor.id,
        "actor_role": actor.role,
        "kind": kind,
        "trigger": trigger,
        "from_state": from_state,
        "to_state": to_state,
        "data": data,
    }
    head = seal(case.audit_hash, values)
    session.connection().execute(INSERT_EVENT, values)
    set_committed_value(case, "audit_hash", head)
    if kind == "transition":
        session.info.setdefault(TRANSITIONS, []).append(values)


def list_events(session: Session, case_id: int) -> list[AuditEvent]:
    """The case's audit trail, oldest first."""
    if session.get(Case, case_id) is None:
        raise NotFound(f"Case {case_id} does not exist.")
    query = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(col(AuditEvent.id))
    return list(session.exec(query).all())
