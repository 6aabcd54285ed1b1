"""One hook from the workflow service to whatever must follow a change in the same transaction.

The reminder policies (``schedules``) register here; the workflow does not
import them, so dependencies keep pointing inward.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from models.tables import Case
from workflow.casefacts import CaseFacts


class Listener(Protocol):
    """Told of every transition and every recorded fact, inside its transaction."""

    def on_transition(
        self,
        session: Session,
        case: Case,
        *,
        trigger: str,
        from_state: str | None,
        now: datetime,
        facts: CaseFacts,
    ) -> None: ...

    def on_fact(
        self,
        session: Session,
        case: Case,
        *,
        fact: str,
        record: Any,
        now: datetime,
        facts: CaseFacts,
    ) -> None: ...


LISTENERS: list[Listener] = []


def register(listener: Listener) -> None:
    """Add ``listener`` once; registering it again does nothing."""
    if listener not in LISTENERS:
        LISTENERS.append(listener)


def transition(
    session: Session,
    case: Case,
    *,
    trigger: str,
    from_state: str | None,
    now: datetime,
    facts: CaseFacts,
) -> None:
    """Tell every listener of a transition; ``facts`` is the write's own view of the case."""
    for listener in LISTENERS:
        listener.on_transition(
            session, case, trigger=trigger, from_state=from_state, now=now, facts=facts
        )


def fact(
    session: Session, case: Case, *, fact: str, record: Any, now: datetime, facts: CaseFacts
) -> None:
    """Tell every listener of a recorded fact; ``facts`` is the write's own view of the case."""
    for listener in LISTENERS:
        listener.on_fact(session, case, fact=fact, record=record, now=now, facts=facts)
