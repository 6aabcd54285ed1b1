"""``/docs``: Swagger UI from the files shipped in this package, so it works offline."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

STATIC = "/app/static/swagger-ui"
router = APIRouter(include_in_schema=False)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_html(openapi_url: str, title: str) -> HTMLResponse:
    """Swagger UI's page, its script and style from this service."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - API docs",
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
    )


def docs_csp(html: str) -> str:
    """A CSP for the docs page: this origin only, plus the page's one inline script by hash.

    Swagger UI sets ``style`` attributes as it renders, and draws its icons
    from ``data:`` URLs; neither loads anything from elsewhere.
    """
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """Interactive API documentation."""
    app = request.app
    response = docs_html(app.openapi_url or "/openapi.json", app.title)
    response.headers["Content-Security-Policy"] = docs_csp(bytes(response.body).decode())
    return response
