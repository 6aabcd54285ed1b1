"""Cases and their transitions: the operations the API and the scheduler call.

Every write goes through ``workflow.unit``: the state change, its audit
event, the facts it writes and the reminders it schedules commit together or
not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.schemas import CaseCreate, TransitionBody
from models.settings import Settings, settings
from models.tables import CLOSED_PHASE, Case
from workflow import hooks
from workflow.audit import append_event
from workflow.casefacts import CaseFacts
from workflow.definition import (
    INITIAL,
    Actor,
    destination,
    may_fire,
    phase_of,
    triggers_from,
)
from workflow.errors import Conflict, NotFound
from workflow.guards import Unmet, evaluate
from workflow.unit import CaseWrite, begin_new, trigger_def, writes


def create_case(
    session: Session, *, data: CaseCreate, actor: Actor, now: datetime, rules: Settings = settings
) -> Case:
    """Open a case in ``evaluation``; a patient may have only one open case.

    Checked before the insert, so a refusal uses up no id; the database's
    partial unique index on open cases backs it, so two requests racing for one
    patient cannot both win.
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
        query = select(Case.id).where(
            Case.patient_ref == data.patient_ref, Case.phase != CLOSED_PHASE
        )
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
    hooks.transition(session, case, trigger="create", from_state=None, now=now, facts=write.facts)
    return case


def get_case(session: Session, case_id: int) -> Case:
    """The case, or NotFound."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"Case {case_id} does not exist.")
    return case


def list_cases(
    session: Session,
    *,
    phase: str | None = None,
    state: str | None = None,
    limit: int = 50,
    after_id: int | None = None,
) -> tuple[list[Case], int | None]:
    """A page of cases in id order, and the id to continue after (None on the last page)."""
    query = select(Case).order_by(col(Case.id)).limit(limit + 1)
    if phase is not None:
        query = query.where(Case.phase == phase)
    if state is not None:
        query = query.where(Case.state == state)
    if after_id is not None:
        query = query.where(col(Case.id) > after_id)
    rows = list(session.exec(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


@writes(lambda kwargs: kwargs["trigger"])
def fire_trigger(write: CaseWrite, *, trigger: str, body: TransitionBody | None = None) -> Case:
    """Fire ``trigger`` on the case; the case moves only if every guard passes."""
    write.fire(trigger_def(trigger), body or TransitionBody())
    return write.case


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
    case = get_case(session, case_id)
    facts = CaseFacts(case=case, now=now, actor=actor, rules=rules, session=session)
    options = []
    for definition in triggers_from(case.state, case.held_from):
        unmet = evaluate(definition.requirements(case.state), facts)
        options.append(
            TriggerOption(
                trigger=definition.name,
                dest=destination(definition, case.state, case.held_from),
                allowed=not unmet and may_fire(actor.role, definition),
                unmet=unmet,
                roles=definition.roles,
            )
        )
    return options
