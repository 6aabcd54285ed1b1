"""Every error as an RFC 9457 problem (``application/problem+json``), mapped in one place.

The domain raises ``workflow.errors``; FastAPI, Starlette and SQLAlchemy raise
their own. Each handler here turns one family into a problem with the
machine-readable ``code`` of SPEC.md section 6. Logs name the request's
method, path and code only: never a body, never patient data.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import metrics
from workflow.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidTransition,
    NotFound,
    TransitionBlocked,
    ValidationFailed,
    VersionConflict,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 1


class Unauthenticated(DomainError):
    """No token, or a token that belongs to nobody."""

    code = "unauthenticated"


class UnmetRequirement(BaseModel):
    code: str = Field(examples=["taper.planned"])
    message: str


class FieldError(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "score"]])
    msg: str
    type: str


class ProblemDetails(BaseModel):
    """An error, as RFC 9457 problem details with carepath's ``code``."""

    type: str = Field(examples=["urn:carepath:problem:transition_blocked"])
    title: str = Field(examples=["Transition blocked"])
    status: int = Field(examples=[409])
    detail: str
    code: str = Field(examples=["transition_blocked"])
    unmet: list[UnmetRequirement] | None = Field(
        default=None, description="transition_blocked: every unmet requirement."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="validation_error: every field that failed."
    )


# One row per refusal: the status it gets and its title.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    TransitionBlocked: 409,
    InvalidTransition: 409,
    Conflict: 409,
    VersionConflict: 412,
    ValidationFailed: 422,
}
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "version_conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}
TITLES = {
    "unauthenticated": "Unauthenticated",
    "forbidden": "Forbidden",
    "not_found": "Not found",
    "transition_blocked": "Transition blocked",
    "invalid_transition": "Invalid transition",
    "conflict": "Conflict",
    "version_conflict": "Version conflict",
    "validation_error": "Validation error",
    "method_not_allowed": "Method not allowed",
    "unavailable": "Service unavailable",
    "internal_error": "Internal error",
}


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": f"urn:carepath:problem:{code}",
        "title": TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status,
        "detail": detail,
        "code": code,
        **{k: v for k, v in extra.items() if v is not None},
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400


def _field_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors reduced to JSON-safe loc, msg and type: never the input, never ``ctx``."""
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "value_error")),
        }
        for e in errors
    ]


def _log(request: Request, status: int, code: str) -> None:
    level = logging.WARNING if status >= 500 else logging.INFO
    logger.log(level, "%s %s -> %s %s", request.method, request.url.path, status, code)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    """A refusal of the workflow: its code, its status, and what the client can act on."""
    assert isinstance(exc, DomainError)
    status = _status_of(exc)
    _log(request, status, exc.code)
    extra: dict[str, Any] = {}
    if isinstance(exc, TransitionBlocked):
        metrics.count_refusal(exc)
        extra["unmet"] = [u.as_dict() for u in exc.unmet]
    if isinstance(exc, ValidationFailed):
        extra["errors"] = _field_errors(exc.errors)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, exc.code, exc.detail, headers, **extra)


async def request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A body, path, query or header that failed validation, or a body that is not JSON."""
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(list(exc.errors()))
    _log(request, 422, "validation_error")
    where = ", ".join(".".join(map(str, e["loc"])) for e in errors[:5])
    return problem(422, "validation_error", f"The request is invalid at: {where}.", errors=errors)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors: unknown routes, wrong methods, unreadable bodies."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI answers a body that is not JSON with a 422, but one it cannot even decode
        # (not UTF-8, nested too deep) with this 400: a bad body has one answer, the 422.
        _log(request, 422, "validation_error")
        detail = "The body is not readable JSON."
        errors = [{"loc": ["body"], "msg": detail, "type": "json_invalid"}]
        return problem(422, "validation_error", detail, errors=errors)
    code = CODE_BY_STATUS.get(exc.status_code, "http_error")
    _log(request, exc.status_code, code)
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(code, code)
    if exc.status_code == 404:
        detail = f"There is no {request.url.path}."
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return problem(exc.status_code, code, detail, headers)


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route serves on this path (Starlette names only the first route's)."""
    routes = request.app.routes
    iter_contexts = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.16x
    methods: set[str] = set()
    for route in iter_contexts(routes) if iter_contexts else routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            methods |= set(getattr(route, "methods", None) or ())
    return methods


async def integrity_error(request: Request, exc: Exception) -> JSONResponse:
    """A constraint the database enforced that no check before it caught (a race)."""
    _log(request, 409, "conflict")
    return problem(409, "conflict", "The write conflicts with data stored meanwhile: read again.")


async def data_error(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot store (e.g. a NUL character on PostgreSQL)."""
    _log(request, 422, "validation_error")
    return problem(422, "validation_error", "The database refused a value in the request.")


async def operational_error(request: Request, exc: Exception) -> JSONResponse:
    """The database is locked or unreachable: the client may retry."""
    assert isinstance(exc, OperationalError)
    locked = "locked" in str(exc.orig).lower()
    logger.warning("%s %s -> 503 (%s)", request.method, request.url.path, type(exc.orig).__name__)
    detail = "The database is busy: retry shortly." if locked else "The database is unavailable."
    return problem(503, "unavailable", detail, {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """Any other database error: a 500, answered here so that the connection stays open.

    Logged by class only: a driver's message can quote the values of the
    statement (``DETAIL: Key (...)=(...)``), and those may be clinical data.
    """
    orig = getattr(exc, "orig", None)
    cause = type(orig).__name__ if orig is not None else "-"
    logger.error(
        "%s %s -> 500 (%s, %s)", request.method, request.url.path, type(exc).__name__, cause
    )
    return problem(500, "internal_error", "The database failed: the error was logged.")


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback, answered without one."""
    logger.error("%s %s -> 500", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal_error", "The server failed: the error was logged.")


def install_handlers(app: FastAPI) -> None:
    """Register every handler of this module on ``app``."""
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(OperationalError, operational_error)
    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(Exception, unexpected_error)


_DESCRIPTIONS = {
    401: "No token, or an unknown one (`unauthenticated`).",
    403: "The caller's role may not do this (`forbidden`).",
    404: "Unknown case, record or trigger (`not_found`).",
    409: "`transition_blocked` (with `unmet`), `invalid_transition` or `conflict`.",
    412: "`If-Match` is stale or malformed (`version_conflict`).",
    422: "Bad body, path or query (`validation_error`, with `errors`).",
    503: "The database is busy or unreachable (`unavailable`, with `Retry-After`).",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for these error statuses."""
    return {s: {"model": ProblemDetails, "description": _DESCRIPTIONS[s]} for s in statuses}


def problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document so that every 4xx/5xx body is ``application/problem+json``.

    FastAPI files an error model under the route's own media type: ``application/json``,
    or ``text/plain`` on a route that answers in plain text.
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status)[0] in "45" and len(content) == 1:
                    content[PROBLEM_MEDIA_TYPE] = content.pop(next(iter(content)))
    return schema
