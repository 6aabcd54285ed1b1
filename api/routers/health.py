"""``GET /health``: the one endpoint that needs no token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.problems import problem_responses
from api.routing import ThreadedRoute
from api.schemas import Health

router = APIRouter(route_class=ThreadedRoute, tags=["health"])


@router.get("/health", responses=problem_responses(503))
async def health(request: Request) -> Health:
    """200 when the database answers, else 503.

    A read on the read-only engine, on the event loop: on SQLite it takes no
    lock, and it needs no worker thread, so it stays fast while writes queue
    for the lock and fill the thread pool.
    """
    with request.app.state.read_engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return Health(status="ok")
