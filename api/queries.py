"""Query parameters: the list endpoints' filters, page size and opaque cursors, and the
refusal of any query parameter an endpoint does not declare.

A cursor is the last id seen, named for its list and base64url-encoded: clients
pass it back unread, and a cursor of another list, or garbage, is a 422.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import AfterValidator, BaseModel

from api.deps import MAX_ID
from workflow.definition import Actor
from workflow.errors import ValidationFailed

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="The `next_cursor` of the previous page."),
]


def _assignee(value: str | None) -> str | None:
    if value is not None and value != "me" and not (value.isdigit() and 1 <= int(value) <= MAX_ID):
        raise ValueError("must be `me` or a user id")
    return value


_ASSIGNED = "`me`, or a user id: cases whose assigned clinician or coordinator is that user"
CaseAssignee = Annotated[
    str | None,
    Query(max_length=20, description=f"{_ASSIGNED}."),
    AfterValidator(_assignee),
]
"""``GET /cases?assignee=``: ``me`` or a user id (``assignee_id`` reads it)."""
WorklistAssignee = Annotated[
    str | None,
    Query(max_length=20, description=f"{_ASSIGNED}, or with an open reminder addressed to them."),
    AfterValidator(_assignee),
]
"""``GET /worklist?assignee=``: as ``CaseAssignee``, and reminders addressed to the user."""


def assignee_id(assignee: str | None, actor: Actor) -> int | None:
    """The user id ``assignee`` names; ``me`` is the caller."""
    if assignee is None:
        return None
    return actor.id if assignee == "me" else int(assignee)


def choice(values: tuple[str, ...], description: str) -> Any:
    """A query parameter documented as one of ``values``."""
    return Query(description=description, json_schema_extra={"enum": list(values)})


def one_of(values: tuple[str, ...]) -> AfterValidator:
    """A validator: the value, if it is None or one of ``values``; else a 422."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return value

    return AfterValidator(check)


def encode_cursor(kind: str, last_id: int | None) -> str | None:
    """The cursor that continues list ``kind`` after ``last_id`` (None: no more pages)."""
    if last_id is None:
        return None
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The id a cursor of list ``kind`` continues after; a 422 for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        name, _, number = raw.decode("ascii").partition(":")
        last_id = int(number) if number.isdigit() else 0
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name, last_id = "", 0
    if name != kind or not 1 <= last_id <= MAX_ID:
        raise ValidationFailed(
            "The cursor is not one this list gave.",
            [{"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}],
        )
    return last_id


def _declared_query(route: Any) -> frozenset[str]:
    """The query parameters ``route`` declares, its dependencies' included (cached per route)."""
    names = _DECLARED.get(id(route))
    if names is None:
        dependant = getattr(route, "dependant", None)
        names = frozenset(_query_names(dependant)) if dependant is not None else frozenset()
        _DECLARED[id(route)] = names
    return names


_DECLARED: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    """Every query parameter name of ``dependant`` and its dependencies (a model's fields too)."""
    names: set[str] = set()
    for param in dependant.query_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names |= {f.alias or name for name, f in model.model_fields.items()}
        else:
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _unknown(name: str) -> dict[str, Any]:
    return {"loc": ["query", name], "msg": "Unknown query parameter", "type": "extra_forbidden"}


async def refuse_unknown_query(request: Request) -> None:
    """A 422 for any query parameter the route does not declare (SPEC.md section 5): a
    misspelt filter must not silently return everything."""
    declared = _declared_query(request.scope.get("route"))
    unknown = sorted({name for name in request.query_params if name not in declared})
    if unknown:
        raise ValidationFailed(
            f"Unknown query parameter: {', '.join(unknown)}.",
            [_unknown(name) for name in unknown],
        )


QUERY_CHECK = Depends(refuse_unknown_query)
"""Added to every API router by ``api.main``."""


def records_page(
    session: Any, model: Any, kind: str, case_id: int, limit: int, cursor: str | None
) -> Any:
    """A page of the case's ``model`` records, as ``{"items": [...], "next_cursor": ...}``."""
    from workflow.paging import case_page

    rows, last = case_page(
        session, model, case_id=case_id, limit=limit, after_id=decode_cursor(kind, cursor)
    )
    return {"items": rows, "next_cursor": encode_cursor(kind, last)}
