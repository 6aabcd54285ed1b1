"""Eight clients for twenty seconds against a real server: no 5xx, and the books balance.

Each client opens its own cases and takes each through an assessment, a vital,
a hold, a look at its transitions and a resume; all of them also race to hold
and resume one shared case. Afterwards the database must hold exactly what the
clients were told: as many cases, assessments and hold events as 201s and
200s, and every case at the version its answers add up to. Runs on SQLite, and
on PostgreSQL when CAREPATH_TEST_DATABASE_URL is set. Nothing here is timed:
the twenty seconds only bound the work.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from models import migrate
from models.facts import Assessment
from models.tables import AuditEvent, Case
from tests.system.workload import (
    Staff,
    add_staff,
    api_server,
    assessment,
    states_off_their_last_transition,
    version_of,
    vital,
)

pytestmark = pytest.mark.slow

CLIENTS = 8
SECONDS = 20.0
MAX_CASES_PER_CLIENT = 150
"""A bound on the work as well as on the time: a fast machine stops here."""
SHARED = "shared"


@dataclass
class Tally:
    """One client's answers: statuses by request, and what each of its cases should be at."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    versions: dict[int, int] = field(default_factory=dict)
    """Case id: 1 for its creation plus one per acknowledged write, as counted by the client."""
    seen_versions: dict[int, int] = field(default_factory=dict)
    """Case id: the version of the last answer about it."""
    shared_writes: int = 0
    errors: list[str] = field(default_factory=list)

    def note(self, name: str, response: httpx.Response) -> httpx.Response:
        self.statuses[name, response.status_code] += 1
        if response.status_code >= 500:
            self.errors.append(f"{name}: {response.status_code} {response.text[:200]}")
        return response


def one_case(staff: Staff, tally: Tally, ref: str) -> None:
    """A case from creation to a resumed hold, each write counted against its version."""
    response = tally.note("POST /cases", staff.post("coordinator", "/api/v1/cases", _case(ref)))
    if response.status_code != 201:
        return
    case_id = response.json()["id"]
    tally.versions[case_id] = 1
    tally.seen_versions[case_id] = version_of(response)
    path = f"/api/v1/cases/{case_id}"
    steps: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
        ("POST assessments", "coordinator", "/assessments", assessment()),
        ("POST vitals", "coordinator", "/vitals", vital()),
        ("POST hold", "coordinator", "/transitions/hold", {"reason": "load"}),
        ("POST resume", "clinician", "/transitions/resume", {}),
    )
    for name, role, suffix, body in steps:
        if name == "POST resume":
            tally.note("GET transitions", staff.get(f"{path}/transitions"))
        response = tally.note(name, staff.post(role, path + suffix, body))
        if response.is_success:
            tally.versions[case_id] += 1
            tally.seen_versions[case_id] = version_of(response)


def race_shared(staff: Staff, tally: Tally, shared_id: int) -> None:
    """Hold or resume the shared case: exactly one of several racing clients may win."""
    path = f"/api/v1/cases/{shared_id}/transitions"
    hold = tally.note("POST hold", staff.post("coordinator", f"{path}/hold", {"reason": "race"}))
    resume = tally.note("POST resume", staff.post("clinician", f"{path}/resume", {}))
    tally.shared_writes += hold.is_success + resume.is_success
    for response in (hold, resume):
        if not (response.is_success or response.status_code == 409):
            tally.errors.append(f"shared: {response.status_code} {response.text[:200]}")


def client(staff: Staff, tally: Tally, client_no: int, shared_id: int, stop_at: float) -> None:
    try:
        for n in range(MAX_CASES_PER_CLIENT):
            if time.monotonic() >= stop_at:
                return
            one_case(staff, tally, f"load-{client_no}-{n}")
            race_shared(staff, tally, shared_id)
    except httpx.HTTPError as exc:
        tally.errors.append(f"{type(exc).__name__}: {exc}")


def _case(ref: str) -> dict[str, str]:
    return {"patient_ref": ref, "patient_state": "CA"}


def test_eight_clients_get_no_5xx_and_the_database_matches_their_answers(empty_engine, tmp_path):
    migrate.upgrade(empty_engine)
    tallies = [Tally() for _ in range(CLIENTS)]
    with api_server(empty_engine, tmp_path / "server.log") as (base_url, _):
        tokens = add_staff(base_url)
        with httpx.Client(base_url=base_url, timeout=60) as setup:
            response = Staff(setup, tokens).post("coordinator", "/api/v1/cases", _case(SHARED))
            assert response.status_code == 201, response.text
            shared_id = response.json()["id"]
        clients = [httpx.Client(base_url=base_url, timeout=60) for _ in range(CLIENTS)]
        stop_at = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=client, args=(Staff(c, tokens), t, n, shared_id, stop_at))
            for n, (c, t) in enumerate(zip(clients, tallies, strict=True))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for c in clients:
            c.close()

    assert [e for t in tallies for e in t.errors] == []
    statuses = sum((t.statuses for t in tallies), Counter())
    assert statuses["POST /cases", 201] >= CLIENTS, statuses
    assert {status for (_, status) in statuses} <= {200, 201, 409}, statuses
    _assert_database_matches(empty_engine, tallies, statuses, shared_id)


def _assert_database_matches(engine, tallies: list[Tally], statuses: Counter, shared_id: int):
    with engine.connect() as conn:
        cases = conn.execute(select(func.count()).select_from(Case)).scalar_one()
        assessments = conn.execute(select(func.count()).select_from(Assessment)).scalar_one()
        triggers = Counter(
            dict(
                conn.execute(
                    select(col(AuditEvent.trigger), func.count())
                    .where(col(AuditEvent.kind) == "transition")
                    .group_by(col(AuditEvent.trigger))
                ).all()
            )
        )
        versions = dict(conn.execute(select(col(Case.id), col(Case.version))).all())
    assert cases == statuses["POST /cases", 201] + 1  # and the shared case
    assert assessments == statuses["POST assessments", 201]
    assert triggers["hold"] == statuses["POST hold", 200]
    assert triggers["resume"] == statuses["POST resume", 200]
    expected = {case_id: v for t in tallies for case_id, v in t.versions.items()}
    assert {c: versions[c] for c in expected} == expected
    assert {c: v for t in tallies for c, v in t.seen_versions.items()} == expected
    assert versions[shared_id] == 1 + sum(t.shared_writes for t in tallies)
    assert states_off_their_last_transition(engine) == []
