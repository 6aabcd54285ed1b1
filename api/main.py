"""The FastAPI application: ``create_app`` for tests and the CLI, ``app`` for uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp

from api import auth, idempotency, logs, metrics, openapi_docs, pages
from api.idempotency import Idempotency
from api.middleware import BodyLimit, SecurityHeaders
from api.problems import install_handlers, problem_media_type
from api.queries import QUERY_CHECK
from api.routers import ROUTERS
from api.routers import metrics as metrics_route
from models.db import get_engine, read_only
from models.settings import settings
from schedules import policies

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Care workflow for an at-home ketamine program for treatment-resistant depression or
anxiety with chronic insomnia. Every endpoint but `/health` needs
`Authorization: Bearer <token>`. Errors are `application/problem+json` with a `code`.
Case responses carry `ETag: "<version>"`; send it back as `If-Match` to refuse stale writes.
"""


def real_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Bootstrap the admin token, and run the reminder scheduler if this app owns it."""
    if settings.admin_token:
        auth.bootstrap_admin(app.state.engine, settings.admin_token)
    scheduler = None
    if app.state.run_scheduler:
        from schedules.runner import start_scheduler

        scheduler = start_scheduler(app.state.engine)
        logger.info("reminder scheduler started")
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.shutdown()
            logger.info("reminder scheduler stopped")


def create_app(
    engine: Engine | None = None,
    *,
    clock: Callable[[], datetime] = real_clock,
    run_scheduler: bool = False,
) -> FastAPI:
    """A carepath API on ``engine`` (default: the settings' database)."""
    policies.install()
    app = FastAPI(
        title="carepath",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by ``api.pages``, with Swagger UI's files from the package
        redoc_url=None,
    )
    app.state.engine = engine if engine is not None else get_engine()
    app.state.read_engine = read_only(app.state.engine)
    app.state.tokens = auth.TokenLookup(app.state.engine)
    app.state.clock = clock
    app.state.run_scheduler = run_scheduler
    install_handlers(app)
    _outermost(app)
    for router in ROUTERS:
        app.include_router(router, dependencies=[QUERY_CHECK])
    app.include_router(metrics_route.router)
    pages.install(app)
    logs.install_transition_log()
    logs.on_transition(metrics.count_transition)
    # Last, so outermost: every response is logged and counted, the pages' included.
    app.add_middleware(logs.RequestLog, observe=metrics.observe_request)
    _problem_openapi(app)
    return app


def _outermost(app: FastAPI) -> None:
    """Wrap the whole stack, Starlette's error middleware included, in the limit and headers.

    The body limit runs before anything reads the body or the token; the
    headers go on every response, a 500 included; a POST's ``Idempotency-Key``
    is looked up before the request runs.
    """
    build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        inner = Idempotency(build())
        return BodyLimit(SecurityHeaders(inner), max_bytes=settings.max_body_bytes)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]


def _problem_openapi(app: FastAPI) -> None:
    """Describe error bodies as ``application/problem+json``, as they are sent."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            documented = idempotency.document(problem_media_type(generate()))
            app.openapi_schema = openapi_docs.complete(documented)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
