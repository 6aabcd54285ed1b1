"""A server killed with SIGKILL mid-load loses no write it acknowledged.

Several clients open cases, record assessments and vitals, and fire ``hold``
and ``resume`` against a real ``carepath serve``; each remembers every write
that was answered 2xx. The server is killed while they are still writing, then
started again on the same database: every acknowledged write must be there, and
every case's state must still be the ``to_state`` of its last transition event.
Runs on SQLite, and on PostgreSQL when CAREPATH_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from models import migrate
from models.facts import Assessment, Vital
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

CLIENTS = 6
KILL_AFTER_ACKS = 300
"""Acknowledged writes to wait for before the kill: enough that many cases are mid-course."""
MIN_ACKS = 60
"""A slow machine may not reach ``KILL_AFTER_ACKS`` in time; fewer than this proves nothing."""
PROGRESS_TIMEOUT = 30.0
FACTS: dict[str, tuple[Any, str]] = {
    "assessments": (Assessment, "assessment"),
    "vitals": (Vital, "vital"),
}
"""Each collection written: its table, and the ``fact`` its audit events name."""


@dataclass
class Acks:
    """What the server acknowledged (2xx), and every other answer it gave."""

    cases: dict[int, int] = field(default_factory=dict)
    """Case id: the highest version the server answered with."""
    facts: list[tuple[str, int, int]] = field(default_factory=list)
    """(collection, record id, case id)."""
    transitions: Counter[tuple[int, str]] = field(default_factory=Counter)
    """(case id, trigger): how many were acknowledged."""
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.cases) + len(self.facts) + sum(self.transitions.values())

    def record(self, case_id: int, response: httpx.Response, what: tuple[str, Any]) -> None:
        with self.lock:
            self.cases[case_id] = max(self.cases.get(case_id, 0), version_of(response))
            if what[0] == "fact":
                self.facts.append((what[1], response.json()["id"], case_id))
            elif what[0] == "transition":
                self.transitions[case_id, what[1]] += 1


Write = tuple[str, str, Callable[[], dict[str, Any]], tuple[str, Any]]
COURSE: tuple[Write, ...] = (
    ("coordinator", "/assessments", assessment, ("fact", "assessments")),
    ("coordinator", "/vitals", vital, ("fact", "vitals")),
    ("coordinator", "/transitions/hold", lambda: {"reason": "crash"}, ("transition", "hold")),
    ("clinician", "/transitions/resume", dict, ("transition", "resume")),
    ("coordinator", "/assessments", lambda: assessment("isi", 18), ("fact", "assessments")),
    ("coordinator", "/transitions/hold", lambda: {"reason": "again"}, ("transition", "hold")),
)
"""After a case is opened: (role, path under the case, body, what a 2xx acknowledges)."""


def drive(staff: Staff, acks: Acks, client_no: int) -> None:
    """Open case after case and take each through ``COURSE``, until the server is gone."""
    for n in range(10_000):
        try:
            body = {"patient_ref": f"crash-{client_no}-{n}", "patient_state": "CA"}
            response = staff.post("coordinator", "/api/v1/cases", body)
            if not response.is_success:
                acks.refused.append(("POST /cases", response.status_code, response.text))
                return
            case_id = response.json()["id"]
            acks.record(case_id, response, ("case", None))
            for role, suffix, make_body, what in COURSE:
                response = staff.post(role, f"/api/v1/cases/{case_id}{suffix}", make_body())
                if not response.is_success:
                    acks.refused.append((suffix, response.status_code, response.text))
                    return
                acks.record(case_id, response, what)
        except httpx.TransportError:  # the server is gone: this request was never acknowledged
            return


def test_every_acknowledged_write_survives_a_sigkill(empty_engine, tmp_path):
    migrate.upgrade(empty_engine)
    acks = Acks()
    with api_server(empty_engine, tmp_path / "before.log") as (base_url, process):
        tokens = add_staff(base_url)
        clients = [httpx.Client(base_url=base_url, timeout=60) for _ in range(CLIENTS)]
        threads = [
            threading.Thread(target=drive, args=(Staff(client, tokens), acks, n), daemon=True)
            for n, client in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + PROGRESS_TIMEOUT
        while acks.count() < KILL_AFTER_ACKS and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the real server's progress
        running_at_kill = sum(thread.is_alive() for thread in threads)
        process.kill()
        process.wait()
        for thread in threads:
            thread.join(timeout=60)
        for client in clients:
            client.close()

    assert acks.refused == []
    assert running_at_kill == CLIENTS, "the kill must land while every client is writing"
    assert acks.count() >= MIN_ACKS

    with api_server(empty_engine, tmp_path / "after.log") as (base_url, _):
        _assert_acknowledged_writes_stored(empty_engine, acks)
        _assert_readable_through_the_api(base_url, tokens, acks)
        _assert_chains_verify_through_the_api(base_url, tokens, acks)
    assert states_off_their_last_transition(empty_engine) == []
    assert _broken_chains(empty_engine) == []


def _broken_chains(engine) -> list[Any]:
    """Every case whose audit hash chain does not verify."""
    from sqlmodel import Session

    from workflow.audit_chain import verify_all

    with Session(engine) as session:
        verdicts = list(verify_all(session))
    assert verdicts, "no case was checked"
    return [v for v in verdicts if not v.ok]


def _assert_chains_verify_through_the_api(
    base_url: str, tokens: dict[str, str], acks: Acks
) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        staff = Staff(client, tokens)
        for case_id in list(acks.cases)[:20]:
            response = staff.get(f"/api/v1/cases/{case_id}/events/verify")
            assert response.status_code == 200, response.text
            assert response.json()["ok"] is True, (case_id, response.json())


def _assert_acknowledged_writes_stored(engine, acks: Acks) -> None:
    with engine.connect() as conn:
        versions = dict(conn.execute(select(col(Case.id), col(Case.version))).all())
        stored_facts = {
            (collection, record_id, case_id)
            for collection, (model, _) in FACTS.items()
            for record_id, case_id in conn.execute(select(model.id, model.case_id))
        }
        events = conn.execute(
            select(
                col(AuditEvent.case_id),
                col(AuditEvent.kind),
                col(AuditEvent.trigger),
                col(AuditEvent.data),
            )
        ).all()
    transitions = Counter((e.case_id, e.trigger) for e in events if e.kind == "transition")
    audited = {(e.data["fact"], e.data["id"], e.case_id) for e in events if e.kind == "fact"}

    lost_cases = {c: v for c, v in acks.cases.items() if versions.get(c, 0) < v}
    assert lost_cases == {}, "cases missing, or older than a version the server answered with"
    assert [f for f in acks.facts if f not in stored_facts] == []
    assert [f for f in acks.facts if (FACTS[f[0]][1], f[1], f[2]) not in audited] == []
    assert {k: n for k, n in acks.transitions.items() if transitions[k] < n} == {}
    assert all(transitions[case_id, "create"] == 1 for case_id in acks.cases)


def _assert_readable_through_the_api(base_url: str, tokens: dict[str, str], acks: Acks) -> None:
    """The restarted server serves every acknowledged case, and takes new writes."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        staff = Staff(client, tokens)
        for case_id, version in acks.cases.items():
            response = staff.get(f"/api/v1/cases/{case_id}")
            assert response.status_code == 200, response.text
            assert response.json()["version"] >= version
        response = staff.post(
            "coordinator", "/api/v1/cases", {"patient_ref": "after-restart", "patient_state": "CA"}
        )
        assert response.status_code == 201, response.text
