"""Web pages for coordinators and clinicians (``/app``), and the offline ``/docs``.

``install(app)`` adds them to an app: the routes, the static files shipped in
this package (the security headers of SPEC.md section 11 are ``api.middleware``'s).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.pages import docs, routes
from api.pages.auth import CsrfRefused, SignInRequired

STATIC = Path(__file__).parent / "static"


async def _to_sign_in(request: Request, exc: Exception) -> RedirectResponse:
    return RedirectResponse("/app/login", status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> HTMLResponse:
    # The form was not one this session's page gave: nothing was written.
    message = "The form did not come from this session's page. Reload the page and try again."
    return routes.render(request, "refused.html", 403, message=message)


def install(app: FastAPI) -> None:
    """Serve the pages, their files and ``/docs`` from ``app`` (``api.middleware`` adds the
    pages' security headers)."""
    app.mount("/app/static", StaticFiles(directory=STATIC), name="page_static")
    app.include_router(routes.router)
    app.include_router(docs.router)
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
