"""A real carepath server on a free port, and Debian's Chromium driven by Playwright.

The server runs in a thread on this test's database, with a clock the test
moves. Chromium must be installed (``apt-get install -y chromium``; ``.ci/run``
does it): without it these tests fail, saying so, rather than skip.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine

from api.deps import get_now
from api.main import create_app
from tests.api.conftest import Clock, make_tokens
from tests.api.helpers import Api

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Server:
    """The running server: its URL, clock, staff tokens, and an API client as any role."""

    url: str
    clock: Clock
    tokens: dict[str, str]
    api: Api


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(engine: Engine, now) -> Iterator[Server]:
    """carepath served by uvicorn in a thread, on this test's database."""
    clock = Clock(now)
    app = create_app(engine)
    app.dependency_overrides[get_now] = clock
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{config.port}"
    tokens = make_tokens(engine, now)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield Server(url, clock, tokens, Api(client, tokens, clock))  # type: ignore[arg-type]
    uv.should_exit = True
    thread.join(timeout=20)


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser tests need Debian's package "
            "(apt-get install -y chromium; .ci/run installs it when missing).",
            pytrace=False,
        )
    from playwright.sync_api import expect, sync_playwright

    # Waits a loaded CI machine can need: the docs page parses Swagger UI's 1.7 MB
    # and renders a 270 KB schema that the server, in this process, builds first;
    # one CI run found the title drawn just after Playwright's default 5 s.
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _is_problem(message: Any) -> bool:
    """A console error, other than a refused form's status (a 409 or 422 is the point)."""
    return message.type == "error" and "server responded with a status of 4" not in message.text


@pytest.fixture
def page(chromium, server: Server) -> Iterator[object]:
    """A fresh browser page; it fails the test on a request to anywhere but the server."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    outside: list[str] = []
    problems: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((server.url, "data:")) else outside.append(r.url),
    )
    page.on("console", lambda m: problems.append(m.text) if _is_problem(m) else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    assert outside == [], f"the page loaded files from elsewhere: {outside}"
    assert problems == [], f"the browser reported errors: {problems}"
