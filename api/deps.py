"""The request's dependencies: its session, clock, actor, role checks and ``If-Match``.

Role checks live here, as route dependencies built from the workflow's own
tables (``FACT_ROLES`` and ``TRIGGERS``), never as ``if`` statements in handlers.

This module does not use ``from __future__ import annotations``: the
dependency factories build ``Annotated`` types from local values, which
FastAPI must be able to evaluate.

A dependency that does no I/O is an ``async def``: FastAPI runs it on the
event loop, where a plain ``def`` costs a trip to the thread pool and back.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api import auth, logs
from api.problems import Unauthenticated, problem_responses
from models.db import write_lock
from models.tables import Case
from workflow.cases import trigger_def
from workflow.definition import ADMIN, TRIGGERS, Actor, may_fire, may_record
from workflow.errors import Forbidden, VersionConflict

MAX_ID = 2**63 - 1
"""The largest id a database integer holds: bigger ones are a 422, never a 500."""

CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case's id.")]
RecordId = Annotated[int, Path(ge=1, le=MAX_ID, description="The record's id.")]
TriggerName = Annotated[
    str,
    Path(
        max_length=40,
        description="One of: " + ", ".join(t.name for t in TRIGGERS) + ". Others are a 404.",
    ),
]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """A session for this request; a write commits it, anything else is rolled back.

    A GET only reads: its transaction takes no write lock (``models.db.read_only``).
    """
    state = request.app.state
    engine = state.read_engine if request.method in SAFE_METHODS else state.engine
    with Session(engine, expire_on_commit=False) as session:
        yield session


# "function" scope: the session closes as soon as the handler returns, so that
# its transaction (SQLite's write lock) never waits on a slow client.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_now(request: Request) -> datetime:
    """The current time, from the app's clock (tests override this dependency)."""
    return request.app.state.clock()


Now = Annotated[datetime, Depends(get_now)]

bearer = HTTPBearer(
    auto_error=False, description="A token from `POST /api/v1/users` or `carepath users add`."
)


def get_current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The caller, from its bearer token; 401 when there is none or nobody has it."""
    if credentials is None:
        raise Unauthenticated("Send an `Authorization: Bearer <token>` header.")
    # A read of its own, not the request's session: a write's transaction (and
    # SQLite's write lock) then begins in the handler, not here.
    with Session(request.app.state.read_engine) as session:
        actor = auth.actor_for_token(session, credentials.credentials)
    if actor is None:
        raise Unauthenticated("The bearer token is not known.")
    logs.bind_actor(actor.id, actor.role)
    return actor


CurrentActor = Annotated[Actor, Depends(get_current_actor)]


def requires(allowed: Callable[[str], bool], action: str) -> Any:
    """A route dependency: the caller, if ``allowed(role)``; else 403."""

    async def check_role(actor: CurrentActor) -> Actor:
        if not allowed(actor.role):
            raise Forbidden(f"A {actor.role} may not {action}.")
        return actor

    return Depends(check_role)


def requires_fact(fact: str) -> Any:
    """A route dependency: the caller, if ``FACT_ROLES`` lets its role record ``fact``."""
    return requires(lambda role: may_record(role, fact), f"record {fact.replace('_', ' ')}s")


AdminActor = Annotated[Actor, requires(lambda role: role == ADMIN, "manage users")]


async def trigger_actor(trigger: TriggerName, actor: CurrentActor) -> Actor:
    """The caller, if the path's trigger exists (else 404) and its role may fire it (else 403)."""
    if not may_fire(actor.role, trigger_def(trigger)):
        raise Forbidden(f"A {actor.role} may not fire {trigger}.")
    return actor


TriggerActor = Annotated[Actor, Depends(trigger_actor)]

_ETAG = re.compile(r'^(?:W/)?"(\d{1,19})"$')


def parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header expects; ``*`` or none expects nothing.

    A malformed header matches no version, so it is a 412, as RFC 9110 has it
    for an ``If-Match`` that matches no current representation.
    """
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if match is None or not 1 <= int(match.group(1)) <= MAX_ID:
        raise VersionConflict('If-Match must be one ETag this API gave, like "3".')
    return int(match.group(1))


async def expected_version(
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", description='The case\'s ETag, e.g. "3": refuse if stale.'),
    ] = None,
) -> int | None:
    """The ``If-Match`` header, parsed."""
    return parse_if_match(if_match)


ExpectedVersion = Annotated[int | None, Depends(expected_version)]


def etag(version: int) -> str:
    """The ETag of a case at ``version``."""
    return f'"{version}"'


ETAG_HEADER = {
    "ETag": {
        "description": 'The case\'s version, e.g. "3": send it back as If-Match.',
        "schema": {"type": "string"},
    }
}


def write_responses(status: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` of a write to a case: its ETag, and how it can be refused."""
    return {status: {"headers": ETAG_HEADER}, **problem_responses(403, 409, 412)}


@dataclass
class CaseWrite:
    """One write to a case: runs a workflow service, commits, and sets the new ETag."""

    case_id: int
    actor: Actor
    session: Session
    now: datetime
    expected_version: int | None
    response: Response

    def __call__(self, service: Callable[..., Any], **kwargs: Any) -> Any:
        """``service(session, case_id=, actor=, now=, expected_version=, **kwargs)``, committed."""
        with write_lock(self.session.get_bind()):
            result = service(
                self.session,
                case_id=self.case_id,
                actor=self.actor,
                now=self.now,
                expected_version=self.expected_version,
                **kwargs,
            )
            self.session.flush()
            case = self.session.get(Case, self.case_id)
            self.session.commit()
        if case is not None:
            self.response.headers["ETag"] = etag(case.version)
        return result


def case_writer(role_check: Any) -> Any:
    """A route dependency giving a ``CaseWrite`` for the path's case, after ``role_check``."""

    async def open_case_write(
        case_id: CaseId,
        actor: Annotated[Actor, role_check],
        session: SessionDep,
        now: Now,
        expected: ExpectedVersion,
        response: Response,
    ) -> CaseWrite:
        return CaseWrite(case_id, actor, session, now, expected, response)

    return Depends(open_case_write)


def fact_writer(fact: str) -> Any:
    """A ``CaseWrite`` for recording ``fact``; the role check comes from ``FACT_ROLES``."""
    return case_writer(requires_fact(fact))


TriggerWrite = Annotated[CaseWrite, case_writer(Depends(trigger_actor))]
