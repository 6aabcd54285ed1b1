"""Logs as JSON lines: one per request, per transition and per reminder delivery.

The standard library's ``logging`` with a JSON formatter, not structlog: every
module already logs through ``logging`` (and so do uvicorn, SQLAlchemy and
APScheduler), so one formatter on the root handler turns all of them into JSON
with no second API to learn and no new dependency. Fields passed as
``extra={...}`` become keys of the line.

The request id, user id and role reach every line written while a request runs
through a context variable, set by ``RequestLog`` and completed by the
authentication dependency (``bind_actor``). A line never carries a body, a
query string, a token, or patient data: only ids, names of things and codes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from workflow.audit import TRANSITIONS

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode()
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET = ("alembic.runtime.plugins", "transitions", "apscheduler.executors", "uvicorn.access")
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


@dataclass
class RequestContext:
    """Who and what the current request is; mutable so that a dependency can complete it."""

    request_id: str
    user_id: int | None = None
    role: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("carepath_request", default=None)


def bind_actor(user_id: int | None, role: str) -> None:
    """Name the authenticated user on every line the current request writes from now on."""
    context = _current.get()
    if context is not None:
        # The dependency may run in a worker thread with a copy of the context:
        # mutating the shared object (not re-setting the variable) reaches the middleware.
        context.user_id, context.role = user_id, role


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _current.get()
        if context is not None:
            line["request_id"] = context.request_id
            line["user_id"], line["role"] = context.user_id, context.role
        line.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: int | str = logging.INFO) -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Library chatter (a line per state change, per scheduler run, per request) drowns
    # what matters; uvicorn's access line is replaced by ``RequestLog``'s.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


Observer = Callable[[str, str, int, float], None]
"""Called once per request with (method, route template, status, seconds)."""

request_logger = logging.getLogger("carepath.request")


class RequestLog:
    """ASGI middleware: a request id for every request, and one log line when it ends."""

    def __init__(self, app: Any, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id=_request_id(scope))
        token = _current.set(context)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                header = (_REQUEST_ID_NAME, context.request_id.encode())
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._finish(scope, status, time.perf_counter() - started)
            _current.reset(token)

    def _finish(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope["method"]
        extra = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        log_info(request_logger, "%s %s %s", (method, route, status), extra)
        if self.observe is not None:
            self.observe(scope["method"], route, status, seconds)


def log_info(
    logger: logging.Logger, msg: str, args: tuple[Any, ...], extra: dict[str, Any]
) -> None:
    """``logger.info(msg, *args, extra=extra)``, without looking up the caller's file and line.

    ``Logger.info`` walks the stack for them on every call (deep in an ASGI
    app), and no line this module writes prints them.
    """
    if logger.isEnabledFor(logging.INFO):
        record = logger.makeRecord(logger.name, logging.INFO, "", 0, msg, args, None, extra=extra)
        logger.handle(record)


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template (``/api/v1/cases/{case_id}``), never the raw path."""
    route = scope.get("route")
    return getattr(route, "path", None) or "(unmatched)"


def _request_id(scope: dict[str, Any]) -> str:
    """The client's ``X-Request-ID`` if it is a plain token, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_NAME:
            candidate = value.decode("latin-1")
            if _CLIENT_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


# -- transitions, logged once committed ------------------------------------------------

transition_logger = logging.getLogger("carepath.transition")
_observers: list[Callable[[str], None]] = []


def on_transition(observer: Callable[[str], None]) -> None:
    """Call ``observer(trigger)`` after each committed transition (metrics count them)."""
    if observer not in _observers:
        _observers.append(observer)


def _committed(session: Session) -> None:
    for audit in session.info.pop(TRANSITIONS, ()):
        trigger = audit["trigger"] or "(none)"
        extra = {
            "trigger": trigger,
            "case_id": audit["case_id"],
            "from_state": audit["from_state"],
            "to_state": audit["to_state"],
            "actor_role": audit["actor_role"],
        }
        args = (trigger, audit["from_state"], audit["to_state"])
        log_info(transition_logger, "transition %s: %s -> %s", args, extra)
        for observer in _observers:
            observer(trigger)


def _rolled_back(session: Session) -> None:
    session.info.pop(TRANSITIONS, None)


def install_transition_log() -> None:
    """Log every transition any session commits, wherever it was fired (idempotent)."""
    if not event.contains(Session, "after_commit", _committed):
        event.listen(Session, "after_commit", _committed)
        event.listen(Session, "after_rollback", _rolled_back)
