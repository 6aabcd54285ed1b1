"""Limits that protect the service (SPEC.md section 11): the body limit and the security headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from api.main import create_app
from models.settings import settings
from tests.api.helpers import Api, assert_problem, case_url, open_case

LIMIT = settings.max_body_bytes
CHUNK = 8192


def raw_post(app: Any, path: str, chunks: int, headers: list[tuple[bytes, bytes]]) -> dict:
    """POST ``chunks`` chunks of CHUNK bytes straight through ASGI; what was sent and read."""
    sent: list[dict] = []
    read = 0

    async def receive() -> dict:
        nonlocal read
        read += 1
        if read > chunks:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": read < chunks}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = dict(start["headers"])
    return {"status": start["status"], "headers": headers, "body": body, "read": read}


def test_declared_length_over_the_limit_is_413_before_authentication(api: Api):
    response = api.call(None, "POST", "/api/v1/cases", content=b"{" + b" " * LIMIT + b"}")
    assert_problem(response, 413, "payload_too_large")
    assert response.headers["cache-control"] == "no-store"


def test_streamed_body_without_length_is_cut_off_at_the_limit(engine):
    app = create_app(engine)
    chunks = 1000  # 8 MB, if it were read whole
    result = raw_post(app, "/api/v1/cases", chunks, [(b"transfer-encoding", b"chunked")])
    assert result["status"] == 413
    assert json.loads(result["body"])["code"] == "payload_too_large"
    assert result["read"] <= LIMIT // CHUNK + 2, "the body was read past the limit"


def test_lying_content_length_is_not_trusted(engine):
    app = create_app(engine)
    result = raw_post(app, "/api/v1/cases", 1000, [(b"content-length", b"10")])
    assert result["status"] == 413
    assert result["read"] <= LIMIT // CHUNK + 2


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e9"])
def test_malformed_content_length_is_refused(engine, length):
    result = raw_post(create_app(engine), "/api/v1/cases", 1, [(b"content-length", length)])
    assert result["status"] == 413


def test_body_at_the_limit_goes_on_to_authentication(api: Api):
    body = b'{"patient_ref": "P-1", "patient_state": "CA"' + b" " * LIMIT
    body = body[: LIMIT - 1] + b"}"
    assert len(body) == LIMIT
    assert_problem(api.call(None, "POST", "/api/v1/cases", content=body), 401, "unauthenticated")


def test_streamed_body_under_the_limit_is_served(api: Api):
    body = json.dumps({"patient_ref": "P-stream", "patient_state": "CA"}).encode()

    def chunks():
        yield body[:10]
        yield body[10:]

    response = api.call(
        "coordinator",
        "POST",
        "/api/v1/cases",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


def test_security_headers_on_every_response(api: Api):
    case_id = open_case(api)
    responses = [
        api.call("admin", "GET", case_url(case_id)),
        api.call(None, "GET", case_url(case_id)),
        api.call("admin", "GET", "/api/v1/nowhere"),
        api.call("admin", "POST", "/api/v1/cases", json={}),
        api.call(None, "GET", "/health"),
        api.call(None, "GET", "/openapi.json"),
    ]
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


def test_security_headers_on_a_500(engine):
    from fastapi.testclient import TestClient

    app = create_app(engine)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
