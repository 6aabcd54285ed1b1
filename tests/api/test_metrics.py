"""``GET /metrics``: Prometheus text for an admin, its counters moving with the traffic."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models import settings as settings_module
from models.db import session_scope
from models.reminders import SENT, Reminder
from models.settings import settings
from tests.api.helpers import assert_problem, open_case


def scrape(api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, by name and sorted labels."""
    response = api.call("admin", "GET", "/metrics", expect=200)
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_an_admin(api):
    assert_problem(api.call(None, "GET", "/metrics"), 401, "unauthenticated")
    assert_problem(api.call("coordinator", "GET", "/metrics"), 403, "forbidden")


def test_counters_move_after_a_transition_and_a_refusal(api):
    before = scrape(api)
    case_id = open_case(api)
    api.fire("coordinator", case_id, "hold", reason="Travelling.")
    api.fire("clinician", open_case(api), "approve", expect=409)
    after = scrape(api)
    moved = [
        value(after, name, **labels) - value(before, name, **labels)
        for name, labels in [
            ("carepath_transitions_total", {"trigger": "hold"}),
            ("carepath_transitions_total", {"trigger": "approve"}),
            ("carepath_transition_refusals_total", {"code": "history.recorded"}),
            ("carepath_transition_refusals_total", {"code": "assessments.baseline"}),
        ]
    ]
    assert moved == [1, 0, 1, 1]
    route = "/api/v1/cases/{case_id}/transitions/{trigger}"
    fired = {"method": "POST", "route": route}
    assert (
        value(after, "carepath_requests_total", **fired, status="200")
        == value(before, "carepath_requests_total", **fired, status="200") + 1
    )
    assert value(after, "carepath_request_duration_seconds_count", **fired, status="409") >= 1
    assert not any("/cases/1/" in labels_of(key) for key in after)


def labels_of(key) -> str:
    return " ".join(v for _, v in key[1])


def test_reminders_lag_and_queue_come_from_the_database(api, engine, clock):
    case_id, other = open_case(api), open_case(api)
    due = [(case_id, "test_check_in", -2), (other, "test_check_in", 1), (case_id, "test_x", -1)]
    with session_scope(engine) as session:
        for case, kind, hours in due:
            at = clock.now + timedelta(hours=hours)
            session.add(Reminder(case_id=case, kind=kind, due_at=at, recipient_role="coordinator"))
        session.add(
            Reminder(
                case_id=case_id,
                kind="test_old",
                due_at=clock.now,
                recipient_role="admin",
                status=SENT,
            )
        )
    samples = scrape(api)
    assert value(samples, "carepath_reminders_open", kind="test_check_in") == 2
    assert value(samples, "carepath_reminders_overdue", kind="test_check_in") == 1
    assert value(samples, "carepath_reminders_overdue", kind="test_x") == 1
    assert ("carepath_reminders_open", (("kind", "test_old"),)) not in samples
    assert value(samples, "carepath_dispatch_lag_seconds") == pytest.approx(7200, abs=1)
    assert ("carepath_sqlite_writers_waiting", ()) in samples


def test_a_relaxed_setting_is_exposed(api, monkeypatch):
    monkeypatch.setattr(settings_module, "CLINICAL_FLOORS", ("clearance_valid_minutes",))
    samples = scrape(api)
    assert ("carepath_relaxed_setting", (("name", "clearance_valid_minutes"),)) not in samples
    monkeypatch.setattr(settings, "clearance_valid_minutes", 5)
    samples = scrape(api)
    assert value(samples, "carepath_relaxed_setting", name="clearance_valid_minutes") == 1
