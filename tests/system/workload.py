"""A real API server on a test database, staff to drive it, and checks of what it stored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from models.tables import AuditEvent, Case
from tests.system.processes import carepath, free_port, wait_healthy

ADMIN_TOKEN = "system-test-admin-token-0123456789"


@contextmanager
def api_server(engine: Engine, log: Path) -> Iterator[tuple[str, Any]]:
    """``carepath serve --no-scheduler`` on ``engine``'s database: its base URL and process."""
    env = {
        "CAREPATH_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CAREPATH_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    port = free_port()
    args = ("serve", "--no-scheduler", "--port", str(port), "--log-level", "warning")
    with carepath(*args, env=env, log=log) as process:
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(base_url, process)
        yield base_url, process


def add_staff(base_url: str) -> dict[str, str]:
    """A coordinator and a clinician licensed in CA, made through the API: tokens by role."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    tokens = {}
    for role, states in (("coordinator", []), ("clinician", ["CA"])):
        body = {"name": f"{role}-{free_port()}", "role": role, "license_states": states}
        response = httpx.post(f"{base_url}/api/v1/users", json=body, headers=admin, timeout=30)
        assert response.status_code == 201, response.text
        tokens[role] = response.json()["token"]
    return tokens


@dataclass
class Staff:
    """One client's HTTP connection, speaking as a coordinator or a clinician per request."""

    client: httpx.Client
    tokens: dict[str, str]

    def post(self, role: str, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens['clinician']}"}
        return self.client.get(path, headers=headers)


def assessment(instrument: str = "phq9", score: int = 12) -> dict[str, Any]:
    taken_at = datetime.now(UTC) - timedelta(hours=1)
    body = {"instrument": instrument, "score": score, "taken_at": taken_at.isoformat()}
    return body | {"item9": 0} if instrument == "phq9" else body


def vital() -> dict[str, Any]:
    taken_at = datetime.now(UTC) - timedelta(hours=1)
    return {"systolic": 124, "diastolic": 80, "taken_at": taken_at.isoformat()}


def version_of(response: httpx.Response) -> int:
    """The case version a write answered with, from its ``ETag``."""
    return int(response.headers["ETag"].strip('"'))


def states_off_their_last_transition(engine: Engine) -> list[tuple[Any, str, str | None]]:
    """Every case whose state is not the ``to_state`` of its last transition event."""
    last: dict[Any, str | None] = {}
    with engine.connect() as conn:
        events = conn.execute(
            select(col(AuditEvent.case_id), col(AuditEvent.to_state))
            .where(col(AuditEvent.kind) == "transition")
            .order_by(col(AuditEvent.id))
        )
        for case_id, to_state in events:
            last[case_id] = to_state
        cases = conn.execute(select(col(Case.id), col(Case.state))).all()
    return [
        (case_id, state, last.get(case_id))
        for case_id, state in cases
        if last.get(case_id) != state
    ]
