"""The request's dependencies: its session, clock, actor, ``If-Match`` and case writes.

A write to a case is handed to ``workflow.unit`` whole: it checks the role
(from the workflow's tables), locks the case, writes and commits. The routes
of case writes carry no role check of their own, so there is only one.

This module does not use ``from __future__ import annotations``: the
dependency factories build ``Annotated`` types from local values, which
FastAPI must be able to evaluate.

A dependency that does no I/O is an ``async def``: FastAPI runs it on the
event loop, where a plain ``def`` costs a trip to the thread pool and back.
"""

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Header, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api import auth, logs
from api.problems import Unauthenticated, problem_responses
from api.schemas import CasePublic
from models.tables import Case
from workflow.definition import ADMIN, TRIGGERS, Actor
from workflow.errors import Forbidden, VersionConflict
from workflow.unit import CaseService, Written, commit_write
from workflow.unit import CaseWrite as WriteOfCase

R = TypeVar("R")

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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for this request; a write commits it, anything else is rolled back.

    A GET only reads: its transaction takes no write lock (``models.db.read_only``).
    Made on the event loop (a session connects only when first used, in the
    handler's thread). Closed there too on SQLite, where ending the request's
    transaction is a rollback in memory; elsewhere it is a round trip to the
    server, so the thread pool closes it.
    """
    state = request.app.state
    engine = state.read_engine if request.method in SAFE_METHODS else state.engine
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if engine.dialect.name == "sqlite":
            session.close()
        else:
            await anyio.to_thread.run_sync(session.close)


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


async def get_current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The caller, from its bearer token; 401 when there is none or nobody has it."""
    if credentials is None:
        raise Unauthenticated("Send an `Authorization: Bearer <token>` header.")
    # A read of its own, not the request's session: a write's transaction (and
    # SQLite's write lock) then begins in the handler, not here.
    tokens: auth.TokenLookup = request.app.state.tokens
    actor = await tokens.actor_async(credentials.credentials)
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


AdminActor = Annotated[Actor, requires(lambda role: role == ADMIN, "manage users")]


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


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='The case\'s ETag, e.g. "3": refuse if stale.'),
]


async def expected_version(if_match: IfMatch = None) -> int | None:
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


async def get_engine(request: Request) -> Engine:
    """The app's engine, for a write that opens its own transaction."""
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


@dataclass
class CaseWriter:
    """One write to a case: ``workflow.unit`` runs and commits it; this sets the new ETag."""

    engine: Engine
    case_id: int
    actor: Actor
    now: datetime
    expected_version: int | None
    response: Response

    def __call__(self, service: CaseService[R], **kwargs: Any) -> R:
        """``service`` on the path's case, as the caller, committed."""
        return self._commit(service, None, kwargs).result

    def case(self, service: CaseService[Case], **kwargs: Any) -> CasePublic:
        """``service``, a write that returns the case, committed: the case's public view,
        its units on hand read in the write's own transaction."""
        written = self._commit(service, lambda write: write.facts.units_on_hand, kwargs)
        return CasePublic.of(written.result, written.view)

    def _commit(
        self,
        service: CaseService[R],
        view: Callable[[WriteOfCase], Any] | None,
        kwargs: dict[str, Any],
    ) -> Written[R]:
        written = commit_write(
            self.engine,
            service,
            view=view,
            case_id=self.case_id,
            actor=self.actor,
            now=self.now,
            expected_version=self.expected_version,
            **kwargs,
        )
        self.response.headers["ETag"] = etag(written.version)
        return written


async def case_writer(
    request: Request,
    case_id: CaseId,
    actor: CurrentActor,
    now: Now,
    response: Response,
    if_match: IfMatch = None,
) -> CaseWriter:
    """A ``CaseWriter`` for the path's case.

    The engine and ``If-Match`` are read here rather than through
    ``EngineDep`` and ``ExpectedVersion``: each dependency costs FastAPI a
    resolution on every write.
    """
    engine = request.app.state.engine
    return CaseWriter(engine, case_id, actor, now, parse_if_match(if_match), response)


CaseWrite = Annotated[CaseWriter, Depends(case_writer)]
