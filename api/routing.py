"""The API's route class: a plain ``def`` endpoint costs one trip to the thread pool, not two."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def offloaded(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function that runs it in the thread pool.

    FastAPI runs a plain ``def`` endpoint in the thread pool, then validates
    its return value against the response model in a second trip to the pool;
    for a coroutine function it validates on the event loop. The wrapper keeps
    the endpoint's signature, name and docstring (``functools.wraps``), which
    FastAPI reads for the parameters, the response model and the docs.
    """
    if inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def in_thread(**kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, **kwargs)

    return in_thread


class ThreadedRoute(APIRoute):
    """An ``APIRoute`` whose plain ``def`` endpoint runs through ``offloaded``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, offloaded(endpoint), **kwargs)
