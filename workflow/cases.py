"""Cases and their transitions: the operations the API and the scheduler call.

Every write goes through ``workflow.unit``: the state change, its audit
event, the facts it writes and the reminders it schedules commit together or
not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, or_
from sqlalchemy import select as select_columns
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, select

from models.facts import CaseChange
from models.schemas import CaseAssignment, CaseCreate, CaseUpdate, TransitionBody
from models.settings import Settings, settings
from models.tables import CLOSED_PHASE, Case, User, same_patient
from workflow import hooks
from workflow.audit import CASES, append_event
from workflow.casefacts import CaseFacts, rows, units_on_hand_of
from workflow.conditions import requirements_for
from workflow.definition import (
    CLINICIAN,
    COORDINATOR,
    INITIAL,
    Actor,
    destination,
    may_fire,
    phase_of,
    triggers_from,
)
from workflow.errors import Conflict, NotFound, ValidationFailed
from workflow.guards import Unmet, evaluate
from workflow.unit import CaseWrite, begin_new, trigger_def, writes


def create_case(
    session: Session, *, data: CaseCreate, actor: Actor, now: datetime, rules: Settings = settings
) -> Case:
    """Open a case in ``evaluation``; a patient may have only one open case.

    ``patient_ref`` is compared without regard to case (``PT-1`` is ``pt-1``).
    Checked before the insert, so a refusal uses up no id; the database's
    partial unique index on open cases (on ``lower(patient_ref)``) backs it, so
    two requests racing for one patient cannot both win.
    """
    case = Case(
        patient_ref=data.patient_ref,
        patient_state=data.patient_state,
        state=INITIAL,
        phase=phase_of(INITIAL),
        created_at=now,
        updated_at=now,
    )
    taken = f"Patient {data.patient_ref} already has an open case."

    def open_case_exists(session: Session) -> str | None:
        query = select(Case.id).where(same_patient(data.patient_ref), Case.phase != CLOSED_PHASE)
        return taken if session.exec(query).first() is not None else None

    try:
        write = begin_new(
            session, case=case, actor=actor, now=now, rules=rules, refuse=open_case_exists
        )
    except IntegrityError as exc:
        raise Conflict(taken) from exc
    append_event(
        session, case, actor, now, kind="transition", trigger="create", to_state=INITIAL, data={}
    )
    flag_modified(case, "audit_hash")  # the chain's first head, stored with the case's next flush
    hooks.transition(session, case, trigger="create", from_state=None, now=now, facts=write.facts)
    return case


def get_case(session: Session, case_id: int) -> Case:
    """The case, or NotFound."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"Case {case_id} does not exist.")
    return case


CASE_ROW = select_columns(CASES).where(CASES.c.id == bindparam("case_id"))
"""Built once: the case for a view that only reads."""


def read_case(session: Session, case_id: int) -> Case:
    """The case for a view that only reads (``list_triggers``), or NotFound: the one the
    session has loaded already, else a read-only row of it (a third less CPU than the ORM's
    load, as profiled in ``GET transitions``)."""
    loaded = session.identity_map.get(session.identity_key(Case, case_id))
    if loaded is not None:
        return cast(Case, loaded)
    row = rows(session, CASE_ROW, {"case_id": case_id}).first()
    if row is None:
        raise NotFound(f"Case {case_id} does not exist.")
    return cast(Case, row)  # a row, read by Case's column names


def list_cases(
    session: Session,
    *,
    phase: str | None = None,
    state: str | None = None,
    patient_ref: str | None = None,
    assignee: int | None = None,
    limit: int = 50,
    after_id: int | None = None,
) -> tuple[list[Case], int | None]:
    """A page of cases in id order, and the id to continue after (None on the last page).

    ``patient_ref``: that patient's cases, matched exactly but without regard
    to case. ``assignee``: cases whose assigned clinician or coordinator is
    that user.
    """
    query = select(Case).order_by(col(Case.id)).limit(limit + 1)
    if phase is not None:
        query = query.where(Case.phase == phase)
    if state is not None:
        query = query.where(Case.state == state)
    if patient_ref is not None:
        query = query.where(same_patient(patient_ref))
    if assignee is not None:
        query = query.where(
            or_(
                col(Case.assigned_clinician_id) == assignee,
                col(Case.assigned_coordinator_id) == assignee,
            )
        )
    if after_id is not None:
        query = query.where(col(Case.id) > after_id)
    rows = list(session.exec(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


UNITS_OF_CASES = select_columns(col(Case.id), units_on_hand_of(col(Case.id))).where(
    col(Case.id).in_(bindparam("case_ids", expanding=True))
)
"""Built once: a page of cases reads its units in this one statement (building it cost a
``GET`` of one case more than the rest of its work)."""


def units_on_hand(session: Session, case_ids: Sequence[int]) -> dict[int, int]:
    """The units on hand (SPEC.md 4.5) of each of ``case_ids``, in one statement."""
    if not case_ids:
        return {}
    rows = session.execute(UNITS_OF_CASES, {"case_ids": list(case_ids)}).all()
    return {int(case_id): int(units) for case_id, units in rows}


@writes(lambda kwargs: kwargs["trigger"])
def fire_trigger(write: CaseWrite, *, trigger: str, body: TransitionBody | None = None) -> Case:
    """Fire ``trigger`` on the case; the case moves only if every guard passes."""
    write.fire(trigger_def(trigger), body or TransitionBody())
    return write.case


ASSIGNABLE = (("clinician_id", CLINICIAN), ("coordinator_id", COORDINATOR))
"""The body field naming each assignee, and the role that user must have."""


def assignee_column(role: str) -> str:
    """The case column holding its assigned user of ``role``."""
    return f"assigned_{role}_id"


ASSIGNABLE_LIMIT = 500
"""At most this many users are offered as assignees of one role (the staff of a program)."""


def assignable_users(session: Session, role: str) -> list[User]:
    """The users who may be assigned as a case's ``role``: active users of that role, by name."""
    query = (
        select(User)
        .where(User.role == role, col(User.active))
        .order_by(col(User.name_key))
        .limit(ASSIGNABLE_LIMIT)
    )
    return list(session.exec(query).all())


def _assignee(session: Session, field: str, role: str, user_id: int) -> int:
    """``user_id``, if it is an active user of ``role``; else a 422 naming ``field``."""
    user = session.get(User, user_id)
    if user is None or user.role != role or not user.active:
        raise ValidationFailed.field(
            (field,), f"{field} must be the id of an active {role}; user {user_id} is not."
        )
    return user_id


def _record_change(write: CaseWrite, fact: str, wanted: dict[str, Any]) -> Case:
    """Record ``fact`` as a ``CaseChange``: the case columns in ``wanted`` whose value differs
    (none, when the write changes nothing: still audited, with an empty ``changes``)."""
    case = write.case
    changes = {name: value for name, value in wanted.items() if getattr(case, name) != value}
    previous = {name: getattr(case, name) for name in changes}
    change = CaseChange(
        case_id=write.case_id,
        fact=fact,
        changes=changes,
        previous=previous,
        made_by=write.actor.id,
        created_at=write.now,
    )
    write.record(fact, change, dict(changes))
    return case


@writes("assignment")
def assign_case(write: CaseWrite, *, data: CaseAssignment) -> Case:
    """Assign the case's clinician, its coordinator, or both: each an active user of that role.

    The case's open reminders follow the assignment (``schedules.scheduling``).
    """
    wanted = {}
    for field, role in ASSIGNABLE:
        user_id = getattr(data, field)
        if user_id is not None:
            wanted[assignee_column(role)] = _assignee(write.session, field, role, user_id)
    return _record_change(write, "assignment", wanted)


@writes("case_update")
def update_case(write: CaseWrite, *, data: CaseUpdate) -> Case:
    """A clinician records that the patient moved to another state (``patient_state``).

    Recorded as ``case_update`` with the columns it changed: open dose
    clearances are voided by a change, not by a write that repeats the value.
    """
    return _record_change(write, "case_update", {"patient_state": data.patient_state})


@dataclass(frozen=True)
class TriggerOption:
    """A trigger from the case's current state, and whether the actor could fire it now."""

    trigger: str
    dest: str
    allowed: bool
    unmet: list[Unmet]
    roles: tuple[str, ...]


def list_triggers(
    session: Session, *, case_id: int, actor: Actor, now: datetime, rules: Settings = settings
) -> list[TriggerOption]:
    """Every trigger from the case's state, with its unmet requirements for ``actor``."""
    case = read_case(session, case_id)
    facts = CaseFacts(case=case, now=now, actor=actor, rules=rules, session=session, writable=False)
    options = []
    for definition in triggers_from(case.state, case.held_from):
        dest = destination(definition, case.state, case.held_from)
        unmet = evaluate(requirements_for(definition, case.state, dest, None, facts), facts)
        options.append(
            TriggerOption(
                trigger=definition.name,
                dest=dest,
                allowed=not unmet and may_fire(actor.role, definition),
                unmet=unmet,
                roles=definition.roles,
            )
        )
    return options
