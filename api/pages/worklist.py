"""The worklist page's data, from ``workflow.worklist``: the same list as the API's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlmodel import Session

from api.queries import one_of
from schedules.policies import KINDS
from workflow import worklist
from workflow.definition import STAFF, Actor

PAGE_SIZE = 50


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


Blank = BeforeValidator(_blank_is_none)


class Filters(BaseModel):
    """The worklist's filters, as its form sends them (an empty choice is no filter)."""

    model_config = ConfigDict(extra="forbid")

    assignee: Annotated[Literal["me"] | None, Blank] = None
    role: Annotated[str | None, Blank, one_of(STAFF)] = None
    kind: Annotated[str | None, Blank, one_of(KINDS)] = None
    cursor: Annotated[str | None, Blank, Field(max_length=200)] = None


def page(session: Session, *, actor: Actor, now: datetime, filters: Filters) -> dict[str, Any]:
    """A page of the worklist for ``filters``, and what the page's filter form offers."""
    items, next_cursor = worklist.worklist(
        session,
        actor=actor,
        now=now,
        assignee=actor.id if filters.assignee == "me" else None,
        role=filters.role,
        kind=filters.kind,
        limit=PAGE_SIZE,
        after=filters.cursor,
    )
    chosen = filters.model_dump(exclude={"cursor"}, exclude_none=True)
    return {
        "items": items,
        "filter_choices": [
            ("assignee", ("me",), "Assigned to"),
            ("role", STAFF, "For role"),
            ("kind", KINDS, "Reminder kind"),
        ],
        "filters_active": bool(chosen),
        "next_cursor": next_cursor,
        "next_query": urlencode({**chosen, "cursor": next_cursor or ""}),
    }
