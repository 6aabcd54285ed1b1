"""ASGI middleware in front of the whole app: the body-size limit and the security headers.

Both are plain ASGI, not Starlette's ``BaseHTTPMiddleware``: the limit must
see the body as it streams in, before any route, dependency or token check
reads it, and trusts neither ``Content-Length`` nor chunked encoding.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_MEDIA_TYPE = b"application/problem+json"
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
)
PAGE_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
"""Pages load nothing but this service's own files, run no inline script, and cannot be framed."""
PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", PAGE_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # The pages' files are the same for everyone: revalidate them rather than refetch.
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
)


def headers_for(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The security headers of SPEC.md section 11 for a response to ``path``."""
    if path.startswith("/app/static/"):
        return STATIC_HEADERS + PAGE_HEADERS
    if path.startswith("/app") or path == "/docs":
        return SECURITY_HEADERS + PAGE_HEADERS
    return SECURITY_HEADERS


class BodyTooLarge(HTTPException):
    """The body passed the limit while it was being read.

    An ``HTTPException``: FastAPI lets it through its body parsing (anything
    else there becomes a 400), and ``api.problems`` answers it as a 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body is larger than {limit} bytes.")


def payload_too_large(limit: int) -> tuple[dict[str, Any], bytes]:
    """The 413 problem+json response: its ``http.response.start`` message and body."""
    body = json.dumps(
        {
            "type": "urn:carepath:problem:payload_too_large",
            "title": "Payload too large",
            "status": 413,
            "detail": f"The body is larger than {limit} bytes.",
            "code": "payload_too_large",
        }
    ).encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, body


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with a 413, before anything reads it whole.

    A declared ``Content-Length`` over the limit is refused at once. Otherwise
    the body is counted as it arrives: the app sees every chunk up to the limit,
    and the chunk that passes it raises ``BodyTooLarge`` out of ``receive``,
    which this middleware answers with the 413 if no response has started.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._refuse(send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        start, body = payload_too_large(self.max_bytes)
        start["headers"] = [*start["headers"], *SECURITY_HEADERS]
        await send(start)
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """The headers of ``headers_for`` on every response, each unless the response set it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        wanted = headers_for(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                extra = [(n, v) for n, v in wanted if n not in present]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
