"""The API's route class: a plain ``def`` endpoint costs one trip to the thread pool, not two."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import SAFE_METHODS
from models.db import run_write

_ENGINE: ContextVar[Engine | None] = ContextVar("carepath_route_engine", default=None)
"""The engine of the app serving this request (set by ``ThreadedRoute``'s handler)."""


def offloaded(endpoint: Callable[..., Any], *, writes: bool = False) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function that runs it in the thread pool.

    FastAPI runs a plain ``def`` endpoint in the thread pool, then validates
    its return value against the response model in a second trip to the pool;
    for a coroutine function it validates on the event loop. The wrapper keeps
    the endpoint's signature, name and docstring (``functools.wraps``), which
    FastAPI reads for the parameters, the response model and the docs.

    An endpoint that ``writes``, on a SQLite file, runs on the event loop
    instead, once the process holds the writer's turn (``in_turn``).
    """
    if inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def in_thread(**kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, **kwargs)

    if not writes:
        return in_thread

    @functools.wraps(endpoint)
    async def in_turn(**kwargs: Any) -> Any:
        engine = _ENGINE.get()
        if engine is None:
            return await run_in_threadpool(endpoint, **kwargs)
        return await run_write(engine, functools.partial(endpoint, **kwargs))

    return in_turn


class ThreadedRoute(APIRoute):
    """An ``APIRoute`` whose plain ``def`` endpoint runs through ``offloaded``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        self.writes = bool(methods - SAFE_METHODS)
        super().__init__(path, offloaded(endpoint, writes=self.writes), **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.writes:
            return handler

        async def app(request: Request) -> Response:
            token = _ENGINE.set(request.app.state.engine)
            try:
                return await handler(request)
            finally:
                _ENGINE.reset(token)

        return app
