"""Scale-out: two API processes and two scheduler processes on one database.

Runs on SQLite by default and on PostgreSQL when CAREPATH_TEST_DATABASE_URL
is set (CI runs both). Real processes, started with the ``carepath`` command.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select

from models import migrate
from models.reminders import Reminder
from models.tables import AuditEvent, Case
from tests.system.processes import Recorder, carepath, free_port, wait_healthy

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "scale-out-admin-token-0123456789"
KINDS = (
    "evaluation_overdue",
    "screening_due",
    "event_review",
    "taper_checkin",
    "prescription_pending",
    "shipment_pending",
    "delivery_overdue",
    "preparation_due",
    "integration_followup",
    "checkin_due",
    "hold_review",
    "safety_review",
)
EVERY_DAY_IS_THREE_SECONDS = str(3 / 86400)


@pytest.fixture
def extra_env() -> dict[str, str]:
    """More settings for every process of the cluster (a test may parametrize it)."""
    return {}


@pytest.fixture
def cluster(empty_engine, tmp_path, extra_env):
    """Two ``serve --no-scheduler`` and two ``scheduler`` processes on one migrated database."""
    migrate.upgrade(empty_engine)
    url = empty_engine.url.render_as_string(hide_password=False)
    with ExitStack() as stack:
        recorder = stack.enter_context(Recorder())
        env = {
            "CAREPATH_DATABASE_URL": url,
            "CAREPATH_ADMIN_TOKEN": ADMIN_TOKEN,
            "CAREPATH_WEBHOOK_URL": recorder.url,
            "CAREPATH_DISPATCH_SECONDS": "0.5",
            **extra_env,
        }
        apis = []
        for n in range(2):
            port = free_port()
            process = stack.enter_context(
                carepath(
                    "serve",
                    "--no-scheduler",
                    "--port",
                    str(port),
                    env=env,
                    log=tmp_path / f"api{n}.log",
                )
            )
            apis.append((f"http://127.0.0.1:{port}", process))
        for base_url, process in apis:
            wait_healthy(base_url, process)
        schedulers = [
            stack.enter_context(carepath("scheduler", env=env, log=tmp_path / f"scheduler{n}.log"))
            for n in range(2)
        ]
        yield [base for base, _ in apis], schedulers, recorder


def _post(base_url: str, path: str, token: str, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{base_url}{path}", json=body, headers=headers, timeout=60)


def test_a_transition_raced_through_both_api_processes_applies_once(cluster, empty_engine):
    (api1, api2), _, _ = cluster
    user = _post(api1, "/api/v1/users", ADMIN_TOKEN, {"name": "coord", "role": "coordinator"})
    assert user.status_code == 201, user.text
    token = user.json()["token"]
    for n in range(5):
        case = _post(api1, "/api/v1/cases", token, {"patient_ref": f"p-{n}", "patient_state": "CA"})
        assert case.status_code == 201, case.text
        path = f"/api/v1/cases/{case.json()['id']}/transitions/hold"
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(
                pool.map(
                    lambda i, path=path: (
                        _post((api1, api2)[i % 2], path, token, {"reason": "race"}).status_code
                    ),
                    range(16),
                )
            )
        assert sorted(statuses) == [200] + [409] * 15
        with empty_engine.connect() as conn:
            holds = conn.execute(
                select(func.count()).where(
                    AuditEvent.case_id == case.json()["id"], AuditEvent.trigger == "hold"
                )
            ).scalar_one()
        assert holds == 1


def _insert_due(empty_engine, count: int, kinds: tuple[str, ...]) -> list[dict]:
    """``count`` cases in monitoring with one reminder of each kind, due five minutes ago."""
    now = datetime.now(UTC)
    with empty_engine.begin() as conn:
        case_ids = [
            conn.execute(
                insert(Case).values(
                    patient_ref=f"r-{n}",
                    patient_state="CA",
                    state="monitoring",
                    phase="monitoring",
                    referrals=[],
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            for n in range(count)
        ]
        rows = [
            {
                "case_id": case_id,
                "kind": kind,
                "due_at": now - timedelta(minutes=5),
                "recipient_role": "coordinator",
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for case_id in case_ids
            for kind in kinds
        ]
        conn.execute(insert(Reminder), rows)
    return rows


def test_due_reminders_are_delivered_once_between_two_schedulers(cluster, empty_engine):
    _, _, recorder = cluster
    rows = _insert_due(empty_engine, 100, KINDS)

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with empty_engine.connect() as conn:
            sent = conn.execute(select(func.count()).where(Reminder.status == "sent")).scalar_one()
        if sent == len(rows):
            break
        time.sleep(0.5)
    time.sleep(2)  # let any duplicate delivery that is still in flight arrive before counting

    with empty_engine.connect() as conn:
        ids = conn.execute(select(Reminder.id).where(Reminder.status == "sent")).scalars().all()
    assert len(ids) == len(rows)
    assert set(recorder.keys) == {str(i) for i in ids}
    assert max(recorder.keys.values()) == 1


@pytest.mark.parametrize(
    "extra_env", [{"CAREPATH_REMINDER_TIME_SCALE": EVERY_DAY_IS_THREE_SECONDS}]
)
def test_repeats_and_escalations_are_delivered_once_between_two_schedulers(cluster, empty_engine):
    """A day lasts three seconds: unacknowledged reminders repeat every three seconds and
    escalate after nine; two schedulers race for every delivery."""
    _, schedulers, recorder = cluster
    originals = len(_insert_due(empty_engine, 20, ("evaluation_overdue", "shipment_pending")))
    escalated = Reminder.kind == "escalation"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with empty_engine.connect() as conn:
            escalations = conn.execute(select(func.count()).where(escalated)).scalar_one()
            repeated = conn.execute(
                select(func.count()).where(~escalated, Reminder.deliveries >= 3)
            ).scalar_one()
        if escalations == originals and repeated == originals:
            break
        time.sleep(0.5)
    for process in schedulers:  # stop them, each finishing its pass, before counting
        process.send_signal(signal.SIGTERM)
    for process in schedulers:
        process.wait(timeout=60)

    with empty_engine.connect() as conn:
        done = conn.execute(select(Reminder.id, Reminder.deliveries, Reminder.escalates)).all()
    assert sum(1 for _, _, original in done if original is not None) == originals
    assert len({original for _, _, original in done if original is not None}) == originals
    expected = {
        str(rid) if n == 0 else f"{rid}-r{n}" for rid, count, _ in done for n in range(count)
    }
    assert set(recorder.keys) == expected  # every delivery, repeats and escalations included
    assert max(recorder.keys.values()) == 1  # and none twice
    assert all(count >= 3 for rid, count, original in done if original is None)
