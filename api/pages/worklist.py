"""The worklist page's data: the cases that need staff, most urgent first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlmodel import Session

from api.pages.views import case_reminders
from models.reminders import PENDING
from models.tables import Case
from workflow import cases
from workflow.definition import OPEN_STATES, PHASES, Actor


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


Blank = BeforeValidator(_blank_is_none)


class Filters(BaseModel):
    """The worklist's filters, as its form sends them (an empty choice is no filter)."""

    model_config = ConfigDict(extra="forbid")

    phase: Annotated[str | None, Blank, Field(json_schema_extra={"enum": list(PHASES)})] = None
    cursor: Annotated[str | None, Blank, Field(max_length=200)] = None


@dataclass(frozen=True)
class ReminderView:
    kind: str
    recipient_role: str
    status: str
    overdue_by_seconds: float


@dataclass(frozen=True)
class Item:
    """One case on the worklist: its open reminders and what blocks each next step."""

    case: Case
    reminders: list[ReminderView]
    blocked: list[cases.TriggerOption]
    in_state_since: datetime | None


def page(session: Session, *, actor: Actor, now: datetime, filters: Filters) -> dict[str, Any]:
    """The worklist items for ``filters``, and the choices its form offers."""
    rows, _ = cases.list_cases(session, phase=filters.phase, limit=200)
    items = [_item(session, case, actor, now) for case in rows if case.state in OPEN_STATES]
    items.sort(key=lambda item: -max((r.overdue_by_seconds for r in item.reminders), default=-1e12))
    return {
        "items": items,
        "filter_choices": [("phase", PHASES, "Phase")],
        "filters_active": filters.phase is not None,
        "next_cursor": None,
        "next_query": urlencode({}),
    }


def _item(session: Session, case: Case, actor: Actor, now: datetime) -> Item:
    reminders = [
        ReminderView(r.kind, r.recipient_role, r.status, (now - r.due_at).total_seconds())
        for r in case_reminders(session, case.id or 0)
        if r.status == PENDING
    ]
    options = cases.list_triggers(session, case_id=case.id or 0, actor=actor, now=now)
    return Item(case, reminders, [o for o in options if o.unmet], case.updated_at)
