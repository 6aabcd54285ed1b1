"""The notifiers: a structured log line, and a signed, idempotent webhook to a real HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from models.reminders import FAILED, PENDING, SENT
from models.settings import Settings
from schedules.notifiers import Delivery, LogNotifier, WebhookNotifier, default_notifiers
from tests.schedules.conftest import add_cases

SECRET = "s3cret-for-tests"


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers each request with the next scripted status."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hang: bool = False
    url: str = ""

    def answer(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers), body))
            if state.hang:
                state.release.wait(timeout=10)
            self.send_response(state.answer())
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/carepath"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def webhook_rules(receiver: Receiver, **overrides) -> Settings:
    return Settings(webhook_url=receiver.url, webhook_secret=SECRET, **overrides)


def test_the_webhook_posts_the_reminder_signed_with_its_id_as_idempotency_key(
    clinic, reminders, receiver, now
):
    case_id = clinic.open_case(patient_ref="patient-do-not-leak")
    (reminder,) = reminders.rows(case_id)
    result = reminders.dispatch(reminder.due_at, notifiers=None, rules=webhook_rules(receiver))
    assert result.sent == 1

    ((headers, body),) = receiver.requests
    assert json.loads(body) == {
        "id": reminder.id,
        "case_id": case_id,
        "kind": "evaluation_overdue",
        "due_at": (now + timedelta(days=7)).isoformat(),
        "recipient_role": "coordinator",
        "recipient_ids": [],  # no coordinator is assigned
        "escalates": None,
        "repeat": 0,
        "attempts": 1,
        "state": "evaluation",
        "phase": "evaluation",
    }
    assert headers["Idempotency-Key"] == str(reminder.id)
    assert headers["Content-Type"] == "application/json"
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Carepath-Signature"] == f"sha256={expected}"
    assert b"patient" not in body


def test_without_a_secret_the_webhook_is_not_signed(receiver):
    notifier = WebhookNotifier(receiver.url, timeout=5)
    notifier.notify(_delivery())
    notifier.close()
    ((headers, _),) = receiver.requests
    assert "X-Carepath-Signature" not in headers
    assert headers["Idempotency-Key"] == "41"


def test_a_receiver_that_fails_twice_then_succeeds_ends_with_the_reminder_sent(
    reminders, receiver, now
):
    receiver.statuses = [503, 500]
    reminder = _one_due_reminder(reminders, now)
    rules = webhook_rules(receiver)
    for at, status in ((now, PENDING), (now + timedelta(seconds=30), PENDING)):
        reminders.dispatch(at, notifiers=None, rules=rules)
        assert reminders.get(reminder.id).status == status
    reminders.dispatch(now + timedelta(seconds=89), notifiers=None, rules=rules)
    assert len(receiver.requests) == 2  # still backing off: 30 s, then 60 s
    reminders.dispatch(now + timedelta(seconds=90), notifiers=None, rules=rules)

    row = reminders.get(reminder.id)
    assert (row.status, row.attempts, row.sent_at) == (SENT, 3, now + timedelta(seconds=90))
    assert [h["Idempotency-Key"] for h, _ in receiver.requests] == [str(reminder.id)] * 3
    assert [json.loads(b)["attempts"] for _, b in receiver.requests] == [1, 2, 3]


def test_a_receiver_that_always_fails_ends_with_the_reminder_failed_and_logged(
    reminders, receiver, now, caplog
):
    receiver.statuses = [500] * 10
    reminder = _one_due_reminder(reminders, now)
    rules = webhook_rules(receiver, delivery_max_attempts=3)
    at = now
    with caplog.at_level(logging.ERROR, logger="schedules.dispatcher"):
        for _ in range(3):
            reminders.dispatch(at, notifiers=None, rules=rules)
            at = reminders.get(reminder.id).next_attempt_at or at
    row = reminders.get(reminder.id)
    assert (row.status, row.attempts) == (FAILED, 3)
    assert "500 Internal Server Error" in row.last_error
    assert len(receiver.requests) == 3
    assert f"reminder {reminder.id}: delivery failed after 3 attempts" in caplog.text


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(reminders, receiver, now):
    receiver.hang = True
    reminder = _one_due_reminder(reminders, now)
    rules = webhook_rules(receiver, webhook_timeout_seconds=0.2)
    assert reminders.dispatch(now, notifiers=None, rules=rules).retried == 1
    assert "Timeout" in reminders.get(reminder.id).last_error


def test_the_log_line_names_the_reminder_and_nothing_about_the_patient(clinic, reminders, caplog):
    case_id = clinic.open_case(patient_ref="patient-do-not-leak")
    (reminder,) = reminders.rows(case_id)
    with caplog.at_level(logging.INFO, logger="schedules.notifiers"):
        reminders.dispatch(reminder.due_at, notifiers=[LogNotifier()])
    (record,) = [r for r in caplog.records if r.name == "schedules.notifiers"]
    line = record.getMessage()
    for part in (
        f"id={reminder.id}",
        f"case_id={case_id}",
        "kind=evaluation_overdue",
        "recipient_role=coordinator",
        f"due_at={reminder.due_at.isoformat()}",
    ):
        assert part in line
    assert "patient" not in line
    assert record.reminder["id"] == reminder.id


def test_the_webhook_is_used_only_when_its_url_is_set(receiver):
    assert [type(n) for n in default_notifiers(Settings(webhook_url=None))] == [LogNotifier]
    kinds = [type(n) for n in default_notifiers(webhook_rules(receiver))]
    assert kinds == [LogNotifier, WebhookNotifier]


def _delivery() -> Delivery:
    return Delivery(
        id=41,
        case_id=7,
        kind="hold_review",
        due_at=datetime(2026, 1, 1, tzinfo=UTC),
        recipient_role="clinician",
        attempt=1,
        state="on_hold",
        phase="on_hold",
    )


def _one_due_reminder(reminders, now):
    (case_id,) = add_cases(reminders.engine, 1, now)
    return reminders.add(case_id, "hold_review", now)


@pytest.mark.parametrize("answer", ["status", "refused", "timeout"])
def test_webhook_errors_name_the_receiver_without_credentials_or_path(
    reminders, receiver, now, caplog, answer
):
    from urllib.parse import urlsplit

    port = urlsplit(receiver.url).port
    if answer == "refused":
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # nothing listens there once closed
    receiver.statuses = [500]
    receiver.hang = answer == "timeout"
    secret_url = f"http://hookuser:hookpass@127.0.0.1:{port}/hooks/tok-abc123?sig=q-xyz"
    reminder = _one_due_reminder(reminders, now)
    rules = Settings(webhook_url=secret_url, webhook_timeout_seconds=0.5)
    with caplog.at_level(logging.DEBUG):
        assert reminders.dispatch(now, notifiers=None, rules=rules).retried == 1
    error = reminders.get(reminder.id).last_error
    assert f"http://127.0.0.1:{port}" in error
    for secret in ("hookuser", "hookpass", "tok-abc123", "q-xyz", "/hooks"):
        assert secret not in error
        assert secret not in caplog.text
