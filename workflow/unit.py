"""One owner for every write to a case: the unit of work.

A write to a case goes through ``begin`` (or a service declared with
``writes``), and nothing else. It checks the actor's role once, from the
workflow's tables; refuses a fact in a state that does not take it; locks
the case (a row lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, behind the
process's writer queue when ``commit_write`` runs it); checks ``If-Match``;
and hands the service a ``CaseWrite``. Through that object, and only through
it, the service records facts and fires triggers: each bumps the case's
version with a compare-and-set, appends its audit event and tells the hooks,
all in the caller's transaction. ``commit_write`` runs a service in a
transaction of its own, commits it and returns what the API needs for its
response and ETag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from models.db import write_lock
from models.schemas import TransitionBody
from models.settings import Settings, settings
from models.tables import Case
from workflow import effects, hooks, voiding
from workflow.audit import append_event, lock_case, record_id, save_case, store
from workflow.casefacts import CaseFacts
from workflow.definition import (
    FACT_BY_NAME,
    FACTS,
    STATE_BY_NAME,
    SYSTEM,
    TRIGGER_BY_NAME,
    Actor,
    FactDef,
    TriggerDef,
    may_fire,
    may_record,
    phase_of,
)
from workflow.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    TransitionBlocked,
    ValidationFailed,
)
from workflow.machine import CaseModel, fire, is_invalid

R = TypeVar("R")


@dataclass
class CaseWrite:
    """A case locked for one write, and the only way to change it."""

    session: Session
    case: Case
    actor: Actor
    now: datetime
    rules: Settings = field(default_factory=lambda: settings)
    facts: CaseFacts = field(init=False)
    changes: voiding.Tracker = field(init=False)

    def __post_init__(self) -> None:
        self.facts = CaseFacts(
            case=self.case, now=self.now, actor=self.actor, rules=self.rules, session=self.session
        )
        self.changes = voiding.Tracker.attach(self.session)

    @property
    def case_id(self) -> int:
        return record_id(self.case)

    def record(
        self,
        fact: str,
        record: SQLModel,
        changes: dict[str, Any] | None = None,
        *,
        actor: Actor | None = None,
    ) -> None:
        """Store ``record``, write ``changes`` to the case and bump it, audit it, void what it
        voids (``workflow.voiding``), tell the hooks.

        ``changes`` are columns of the case; a write that changes no value passes none.
        """
        columns = self.changes.columns(record)  # before this flush forgets them
        store(self.session, record)
        data = {"fact": fact, "id": record_id(record), "record": record.model_dump(mode="json")}
        self._audited(changes or {}, actor or self.actor, kind="fact", data=data)
        self.facts.forget()
        voiding.after_fact(self, fact, record, changes or {}, columns)
        hooks.fact(
            self.session, self.case, fact=fact, record=record, now=self.now, facts=self.facts
        )

    def fire(
        self, definition: TriggerDef, body: TransitionBody, *, actor: Actor | None = None
    ) -> None:
        """Move the case through the shared machine and record the transition."""
        actor = actor or self.actor
        case = self.case
        if is_invalid(case.state, definition):
            raise InvalidTransition(f"{definition.name} does not leave {case.state}.")
        if not definition.leaves(case.state, case.held_from):
            raise InvalidTransition(
                f"{definition.name} leaves on_hold only for a case held from "
                f"{' or '.join(definition.on_hold_from or ())}; this one was held from "
                f"{case.held_from}."
            )
        _check_body(definition, body)
        for check in definition.checks:
            effects.CHECKS[check](case, body, self.rules)
        self.facts.actor = actor
        model = CaseModel(state=case.state, held_from=case.held_from, facts=self.facts, body=body)
        if not fire(model, definition):
            if not model.unmet:
                raise InvalidTransition(f"{definition.name} has nowhere to go from {case.state}.")
            raise TransitionBlocked(f"{definition.name} is blocked.", model.unmet)
        from_state = case.state
        changes: dict[str, Any] = {"state": model.state, "phase": phase_of(model.state)}
        for name in definition.effects:
            changes.update(effects.EFFECTS[name](case, actor, self.facts, body))
        self._audited(
            changes,
            actor,
            kind="transition",
            trigger=definition.name,
            from_state=from_state,
            to_state=model.state,
            data=body.model_dump(exclude_none=True),
        )
        # The facts stay as the guards read them: a transition writes the case's row (the
        # loaded case has its new values) and its audit event, and the facts read neither
        # (test_the_facts_read_no_case_row_nor_audit_event). A write that follows (a void,
        # ``then``) goes through ``record``, which forgets them.
        voiding.after_transition(self, definition.name)
        hooks.transition(
            self.session,
            case,
            trigger=definition.name,
            from_state=from_state,
            now=self.now,
            facts=self.facts,
        )
        if definition.then:
            # Imported here: the substance record writes through this class.
            from workflow.substance import THEN

            for name in definition.then:
                THEN[name](self, body)

    def _audited(self, changes: dict[str, Any], actor: Actor, **event: Any) -> None:
        """Append the audit event and write ``changes`` with the case's new version and chain
        head in one UPDATE (the event's hash becomes the case's ``audit_hash``)."""
        with self.session.no_autoflush:
            append_event(self.session, self.case, actor, self.now, **event)
            save_case(self.session, self.case, self.now, **changes, audit_hash=self.case.audit_hash)


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


def trigger_def(name: str) -> TriggerDef:
    """The declared trigger called ``name``, or NotFound."""
    definition = TRIGGER_BY_NAME.get(name)
    if definition is None:
        raise NotFound(f"There is no trigger {name!r}.")
    return definition


def check_role(actor: Actor, action: str) -> None:
    """Refuse ``actor`` unless its role may do ``action``: a fact's name, or a trigger's.

    This is the one role check of every write, read from the workflow's tables.
    """
    if action in FACT_BY_NAME:
        if not may_record(actor.role, action):
            raise Forbidden(f"A {actor.role} may not record {action.replace('_', ' ')}s.")
        return
    if not may_fire(actor.role, trigger_def(action)):
        raise Forbidden(f"A {actor.role} may not fire {action}.")


def begin(
    session: Session,
    *,
    case_id: int,
    action: str,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
    rules: Settings = settings,
) -> CaseWrite:
    """Check the role, lock the case, check ``If-Match`` and the state: the write may go on."""
    if actor.role != SYSTEM:
        check_role(actor, action)
    case = lock_case(session, case_id, expected_version)
    fact = FACT_BY_NAME.get(action)
    if fact is not None and case.state not in fact.states:
        raise Conflict(_not_in_state(case, fact))
    write = CaseWrite(session, case, actor, now, rules)
    if fact is not None and actor.role != SYSTEM:
        _check_role_once_approved(write, fact)
    return write


def _check_role_once_approved(write: CaseWrite, fact: FactDef) -> None:
    """Refuse a role the fact table no longer lets record ``fact`` on an approved case."""
    allowed = fact.approved_roles
    if allowed is None or write.actor.role in allowed or not write.facts.approved:
        return
    raise Forbidden(
        f"Once a case is approved, only a {' or '.join(allowed)} may record its "
        f"{fact.name.replace('_', ' ')}."
    )


def _not_in_state(case: Case, fact: FactDef) -> str:
    if STATE_BY_NAME[case.state].terminal:
        accepted = [f.name for f in FACTS if case.state in f.states]
        return (
            f"Case {case.id} is closed ({case.state}): it records only {', '.join(accepted)}; "
            f"not {fact.name}."
        )
    what = fact.name.replace("_", " ")
    return f"A {what} is not recorded on a case in {case.state}; only in {', '.join(fact.states)}."


def begin_new(
    session: Session,
    *,
    case: Case,
    actor: Actor,
    now: datetime,
    rules: Settings = settings,
    refuse: Callable[[Session], str | None] = lambda session: None,
) -> CaseWrite:
    """Check the role, then ``refuse`` (a reason not to open it, or None), and store the case."""
    check_role(actor, "case")
    reason = refuse(session)
    if reason is not None:
        raise Conflict(reason)
    session.add(case)
    session.flush()
    return CaseWrite(session, case, actor, now, rules)


class CaseService(Generic[R]):
    """A workflow service that writes one case: ``action`` names its role check.

    Called with a session, it runs in the caller's transaction; ``commit_write``
    runs it in one of its own. ``body(write, **kwargs)`` is the service itself.
    """

    def __init__(
        self, action: str | Callable[[dict[str, Any]], str], body: Callable[..., R]
    ) -> None:
        self.action = action
        self.body = body
        functools.update_wrapper(self, body)

    def action_for(self, kwargs: dict[str, Any]) -> str:
        return self.action if isinstance(self.action, str) else self.action(kwargs)

    def __call__(self, session: Session, **kwargs: Any) -> R:
        """Run in the caller's transaction (tests and other services call it this way).

        ``kwargs``: ``case_id``, ``actor``, ``now``, optionally ``expected_version``
        and ``rules`` (for ``begin``), and the service's own arguments.
        """
        return self.run(session, **kwargs)[0]

    def run(
        self,
        session: Session,
        *,
        case_id: int,
        actor: Actor,
        now: datetime,
        expected_version: int | None = None,
        rules: Settings = settings,
        **kwargs: Any,
    ) -> tuple[R, CaseWrite]:
        """``begin`` the write as this service's action, run the service; its result and write."""
        write = begin(
            session,
            case_id=case_id,
            action=self.action_for(kwargs),
            actor=actor,
            now=now,
            expected_version=expected_version,
            rules=rules,
        )
        return self.body(write, **kwargs), write


def writes(
    action: str | Callable[[dict[str, Any]], str],
) -> Callable[[Callable[..., R]], CaseService[R]]:
    """Declare ``func(write, **kwargs)`` a service that writes a case as ``action``."""

    def declare(func: Callable[..., R]) -> CaseService[R]:
        return CaseService(action, func)

    return declare


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """A write transaction in the process's writer queue: commits on success, else rolls back.

    Every write takes it, the dispatcher's and user administration's included,
    so that on SQLite writers take turns in the process instead of polling
    for the database's lock.
    """
    with (
        write_lock(engine),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


@dataclass(frozen=True)
class Written(Generic[R]):
    """What a committed write returns: the service's result and the case's new version, and
    what ``view`` read of the case before the commit (None without one)."""

    result: R
    version: int
    view: Any = None


def commit_write(
    engine: Engine,
    service: CaseService[R],
    *,
    view: Callable[[CaseWrite], Any] | None = None,
    **kwargs: Any,
) -> Written[R]:
    """Run ``service`` on the case in a transaction of its own, and commit it.

    ``view`` reads what the response needs from the written case, in the same
    transaction. ``kwargs`` as for ``CaseService.run``.
    """
    with write_transaction(engine) as session:
        result, write = service.run(session, **kwargs)
        seen = None if view is None else view(write)
        version = write.case.version
    return Written(result, version, seen)
