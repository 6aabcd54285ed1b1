"""Web pages for coordinators and clinicians (``/app``), and the offline ``/docs``.

``install(app)`` adds them to an app: the routes, the static files shipped in
this package, and the security headers of SPEC.md section 11.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.pages import docs, routes
from api.pages.auth import CsrfRefused, SignInRequired

STATIC = Path(__file__).parent / "static"
PAGE_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
"""Pages load nothing but this service's own files, run no inline script, and cannot be framed."""


class SecurityHeaders:
    """Adds the headers of SPEC.md section 11 to every response (those it has not set itself).

    A plain ASGI middleware: it touches only the response's start message, so
    it costs the API next to nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = _headers_for(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _headers_for(path: str) -> list[tuple[bytes, bytes]]:
    static = path.startswith("/app/static/")
    headers = [
        (b"x-content-type-options", b"nosniff"),
        # Static files are the same for everyone: revalidate them rather than refetch.
        (b"cache-control", b"no-cache" if static else b"no-store"),
    ]
    if path.startswith("/app") or path == "/docs":
        headers += [
            (b"content-security-policy", PAGE_CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
    return headers


async def _to_sign_in(request: Request, exc: Exception) -> RedirectResponse:
    return RedirectResponse("/app/login", status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> HTMLResponse:
    # The form was not one this session's page gave: nothing was written.
    message = "The form did not come from this session's page. Reload the page and try again."
    return routes.render(request, "refused.html", 403, message=message)


def install(app: FastAPI) -> None:
    """Serve the pages, their files and ``/docs`` from ``app``, with the security headers."""
    app.mount("/app/static", StaticFiles(directory=STATIC), name="page_static")
    app.include_router(routes.router)
    app.include_router(docs.router)
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_middleware(SecurityHeaders)
