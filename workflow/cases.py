"""Cases and their transitions: the operations the API and the scheduler call.

Each function works inside the caller's transaction: the state change, its
audit event, the facts it writes and the reminders it schedules commit
together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.schemas import CaseCreate, TransitionBody
from models.settings import Settings, settings
from models.tables import CLOSED_PHASE, Case
from workflow import hooks
from workflow.audit import append_event, lock_case, save_case
from workflow.casefacts import CaseFacts
from workflow.definition import (
    INITIAL,
    TRIGGER_BY_NAME,
    Actor,
    TriggerDef,
    destination,
    may_fire,
    may_record,
    phase_of,
    triggers_from,
)
from workflow.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    TransitionBlocked,
    ValidationFailed,
)
from workflow.guards import Unmet, evaluate
from workflow.machine import CaseModel, fire, is_invalid
from workflow.referrals import referrals_for


def create_case(session: Session, *, data: CaseCreate, actor: Actor, now: datetime) -> Case:
    """Open a case in ``evaluation``; a patient may have only one open case."""
    require_role(actor, "case")
    open_case = select(Case.id).where(
        Case.patient_ref == data.patient_ref, Case.phase != CLOSED_PHASE
    )
    if session.exec(open_case).first() is not None:
        raise Conflict(f"Patient {data.patient_ref} already has an open case.")
    case = Case(
        patient_ref=data.patient_ref,
        patient_state=data.patient_state,
        state=INITIAL,
        phase=phase_of(INITIAL),
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request opened one first
        raise Conflict(f"Patient {data.patient_ref} already has an open case.") from exc
    append_event(
        session, case, actor, now, kind="transition", trigger="create", to_state=INITIAL, data={}
    )
    hooks.transition(session, case, trigger="create", from_state=None, now=now)
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


def require_role(actor: Actor, fact: str) -> None:
    """Refuse ``actor`` unless its role may record ``fact``."""
    if not may_record(actor.role, fact):
        raise Forbidden(f"A {actor.role} may not record {fact.replace('_', ' ')}s.")


def trigger_def(name: str) -> TriggerDef:
    """The declared trigger called ``name``, or NotFound."""
    trigger = TRIGGER_BY_NAME.get(name)
    if trigger is None:
        raise NotFound(f"There is no trigger {name!r}.")
    return trigger


def fire_trigger(
    session: Session,
    *,
    case_id: int,
    trigger: str,
    actor: Actor,
    now: datetime,
    body: TransitionBody | None = None,
    expected_version: int | None = None,
    rules: Settings = settings,
) -> Case:
    """Fire ``trigger`` on the case as ``actor``; the case moves only if every guard passes."""
    definition = trigger_def(trigger)
    if not may_fire(actor.role, definition):
        raise Forbidden(f"A {actor.role} may not fire {trigger}.")
    case = lock_case(session, case_id, expected_version)
    apply_trigger(session, case, definition, actor, now, body or TransitionBody(), rules)
    return case


def apply_trigger(
    session: Session,
    case: Case,
    definition: TriggerDef,
    actor: Actor,
    now: datetime,
    body: TransitionBody,
    rules: Settings = settings,
) -> None:
    """Move a locked case through the shared machine and record it; see ``fire_trigger``."""
    if is_invalid(case.state, definition):
        raise InvalidTransition(f"{definition.name} does not leave {case.state}.")
    _check_body(definition, body)
    facts = CaseFacts(case=case, now=now, actor=actor, rules=rules, session=session)
    model = CaseModel(state=case.state, held_from=case.held_from, facts=facts)
    if not fire(model, definition):
        if not model.unmet:
            raise InvalidTransition(f"{definition.name} has nowhere to go from {case.state}.")
        raise TransitionBlocked(f"{definition.name} is blocked.", model.unmet)
    from_state = case.state
    save_case(session, case, now, **_changes(case, definition, model.state, actor, facts))
    append_event(
        session,
        case,
        actor,
        now,
        kind="transition",
        trigger=definition.name,
        from_state=from_state,
        to_state=case.state,
        data=body.model_dump(exclude_none=True),
    )
    hooks.transition(session, case, trigger=definition.name, from_state=from_state, now=now)


def _check_body(definition: TriggerDef, body: TransitionBody) -> None:
    """Refuse a body that lacks a field the trigger needs, or carries one it does not take."""
    given = body.model_dump(exclude_none=True)
    missing = [name for name in definition.body if name not in given]
    takes = {"reason", *definition.body, *definition.optional}
    extra = [name for name in given if name not in takes]
    errors = [{"loc": ["body", m], "msg": "Field required", "type": "missing"} for m in missing]
    errors += [
        {
            "loc": ["body", x],
            "msg": f"{definition.name} does not take {x}",
            "type": "extra_forbidden",
        }
        for x in extra
    ]
    if errors:
        raise ValidationFailed(f"The body does not fit {definition.name}.", errors)


def _changes(
    case: Case, definition: TriggerDef, to_state: str, actor: Actor, facts: CaseFacts
) -> dict[str, Any]:
    changes: dict[str, Any] = {"state": to_state, "phase": phase_of(to_state)}
    if to_state == "on_hold":
        changes["held_from"] = case.state
    elif case.state == "on_hold":
        changes["held_from"] = None
    if definition.name == "approve" and actor.role != "system":
        changes["assigned_clinician_id"] = actor.id
    if definition.name == "decline":
        changes["referrals"] = referrals_for(facts)
    return changes


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
    for definition in triggers_from(case.state):
        unmet = evaluate(definition.requires, facts)
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
