"""Log lines are JSON with the request id, the user and the route; never patient data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from api.logs import REQUEST_ID_HEADER, JsonFormatter
from tests.api.helpers import case_url

PATIENT_REF = "MRN-SECRET-4242"


Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Every line logged so far in the test, as the JSON objects the service prints."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def requests_of(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "carepath.request"]


def test_a_request_line_carries_its_id_user_route_and_no_patient_data(api, log_lines):
    body = {"patient_ref": PATIENT_REF, "patient_state": "CA"}
    response = api.call(
        "coordinator", "POST", "/api/v1/cases", json=body, headers={REQUEST_ID_HEADER: "req-77"}
    )
    assert response.status_code == 201 and response.headers[REQUEST_ID_HEADER] == "req-77"
    case_id = response.json()["id"]
    api.get("coordinator", case_url(case_id))
    api.call("coordinator", "POST", "/api/v1/cases", json=body, expect=409)
    api.client.get("/health")
    log_lines_now = log_lines()
    created, read, refused, health = requests_of(log_lines_now)
    assert created["request_id"] == "req-77"
    assert (created["method"], created["route"], created["status"]) == (
        "POST",
        "/api/v1/cases",
        201,
    )
    assert created["role"] == "coordinator" and isinstance(created["user_id"], int)
    assert created["duration_ms"] >= 0 and created["time"].endswith("+00:00")
    assert read["route"] == "/api/v1/cases/{case_id}" and read["request_id"] != "req-77"
    assert len(read["request_id"]) == 32
    assert refused["status"] == 409 and refused["user_id"] == created["user_id"]
    assert (health["route"], health["user_id"], health["role"]) == ("/health", None, None)
    text = json.dumps(log_lines_now)
    assert PATIENT_REF not in text and api.tokens["coordinator"] not in text


def test_a_bad_request_id_is_replaced(api, log_lines):
    response = api.client.get("/health", headers={REQUEST_ID_HEADER: "x" * 500})
    assert len(response.headers[REQUEST_ID_HEADER]) == 32


def test_a_transition_is_logged_once_committed(api, log_lines):
    body = {"patient_ref": PATIENT_REF, "patient_state": "CA"}
    case_id = api.post("coordinator", "/api/v1/cases", body)["id"]
    api.fire("coordinator", case_id, "hold", reason="Patient travelling.")
    api.fire("coordinator", case_id, "hold", reason="again", expect=409)
    lines = log_lines()
    [transition] = [line for line in lines if line.get("trigger") == "hold"]
    assert transition["trigger"] == "hold" and transition["case_id"] == case_id
    assert (transition["from_state"], transition["to_state"]) == ("evaluation", "on_hold")
    fired = next(r for r in requests_of(lines) if r["route"].endswith("/transitions/{trigger}"))
    assert transition["request_id"] == fired["request_id"] and transition["role"] == "coordinator"
    assert "Patient travelling" not in json.dumps(lines) and PATIENT_REF not in json.dumps(lines)
