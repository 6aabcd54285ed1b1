"""422 validation_error: bodies, paths, queries and cursors; nothing a client sends is a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import Api, assert_problem, case_url, open_case, record_evaluation

# -- 422 ---------------------------------------------------------------------------


def test_bad_body_lists_each_field(api: Api):
    case_id = open_case(api)
    body = {"instrument": "phq9", "score": -1, "taken_at": "yesterday", "item_9": 2}
    response = api.call("coordinator", "POST", case_url(case_id, "/assessments"), json=body)
    errors = assert_problem(response, 422, "validation_error")["errors"]
    locs = {tuple(e["loc"]) for e in errors}
    assert {("body", "score"), ("body", "taken_at"), ("body", "item_9")} <= locs
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)


@pytest.mark.parametrize(
    "body",
    [
        {"instrument": "phq9", "score": 28, "item9": 3},  # model validator: ctx holds an exception
        {"instrument": "gad7", "score": 5, "item9": 1},
        {"instrument": "isi", "score": 5, "taken_at": "2026-11-01T10:00:00"},  # naive
        {"instrument": "isi", "score": 5, "taken_at": "2026-12-25T10:00:00Z"},  # future
        {"instrument": "isi", "score": 5, "taken_at": None},
        {"instrument": "bdi", "score": 5},
    ],
)
def test_invalid_assessments_are_422(api: Api, body):
    case_id = open_case(api)
    body = {"taken_at": api.ago(hours=1), **body}
    before = api.snapshot(case_id)
    response = api.call("coordinator", "POST", case_url(case_id, "/assessments"), json=body)
    assert assert_problem(response, 422, "validation_error")["errors"]
    assert api.snapshot(case_id) == before


@pytest.mark.parametrize(
    ("score", "item9", "why"),
    [
        (27, None, "a phq9 requires item9"),
        (12, None, "a phq9 requires item9"),
        (2, 3, "cannot be more than the total score"),
        (0, 1, "cannot be more than the total score"),
        (27, 2, "needs an item9 of at least 3"),
        (25, 0, "needs an item9 of at least 1"),
    ],
)
def test_an_inconsistent_phq9_is_422_naming_item9(api: Api, score, item9, why):
    """SPEC.md 4.2: a PHQ-9 carries item 9, with item9 <= score and score - item9 <= 24."""
    case_id = open_case(api)
    body = {"instrument": "phq9", "score": score, "item9": item9, "taken_at": api.ago(hours=1)}
    before = api.snapshot(case_id)
    response = api.call("coordinator", "POST", case_url(case_id, "/assessments"), json=body)
    (error,) = assert_problem(response, 422, "validation_error")["errors"]
    assert error["loc"] == ["body", "item9"] and why in error["msg"]
    assert api.snapshot(case_id) == before


@pytest.mark.parametrize(("score", "item9"), [(0, 0), (3, 3), (24, 0), (25, 1), (27, 3)])
def test_a_consistent_phq9_is_recorded(api: Api, score, item9):
    case_id = open_case(api)
    body = {"instrument": "phq9", "score": score, "item9": item9, "taken_at": api.ago(hours=1)}
    recorded = api.post("coordinator", case_url(case_id, "/assessments"), body)
    assert (recorded["score"], recorded["item9"]) == (score, item9)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"patient_ref": ', "application/json"),
        (b"[]", "application/json"),
        (b'"P-1"', "application/json"),
        (b"3", "application/json"),
        (b"null", "application/json"),
        (b"", "application/json"),
        (b'{"patient_ref": "P-1", "patient_state": "CA"}', "text/plain"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_unreadable_bodies_are_4xx(api: Api, content, content_type):
    headers = api.headers("coordinator", {"Content-Type": content_type})
    response = api.client.post("/api/v1/cases", content=content, headers=headers)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


def test_transition_body_must_be_an_object_with_known_fields(api: Api):
    case_id = open_case(api)
    hold = case_url(case_id, "/transitions/hold")
    bodies: list[Any] = [[], "reason", {"reason": "x", "why": "y"}, {"reason": ""}]
    for body in bodies:
        response = api.call("coordinator", "POST", hold, json=body)
        assert_problem(response, 422, "validation_error")
    response = api.call("coordinator", "POST", hold)  # hold needs a reason
    errors = assert_problem(response, 422, "validation_error")["errors"]
    assert errors[0]["loc"] == ["body", "reason"]


def test_a_trigger_refuses_fields_it_does_not_take_and_changes_nothing(api: Api):
    case_id = open_case(api)
    before = api.call("coordinator", "GET", case_url(case_id)).json()
    response = api.call(
        "coordinator",
        "POST",
        case_url(case_id, "/transitions/hold"),
        json={"reason": "x", "carrier": "UPS"},
    )
    errors = assert_problem(response, 422, "validation_error")["errors"]
    assert [e["loc"] for e in errors] == [["body", "carrier"]]
    assert api.call("coordinator", "GET", case_url(case_id)).json() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cases/abc",
        "/api/v1/cases/0",
        "/api/v1/cases/-1",
        f"/api/v1/cases/{2**63}",
        f"/api/v1/cases/{10**40}/events",
        "/api/v1/cases/1.5/transitions",
        "/api/v1/cases?limit=0",
        "/api/v1/cases?limit=201",
        "/api/v1/cases?limit=ten",
        "/api/v1/cases?phase=nowhere",
        "/api/v1/cases?state=delivery",
        "/api/v1/cases?cursor=%%%",
        "/api/v1/cases?cursor=bm90LWEtY3Vyc29y",
        "/api/v1/cases?cursor=cmVtaW5kZXJzOjE",  # a reminders cursor
        "/api/v1/cases?cursor=Y2FzZXM6OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # cases:<too big>
        "/api/v1/reminders?status=lost",
        "/api/v1/reminders?due_before=2026-11-01T10:00:00",
        "/api/v1/reminders?kind=DROP%20TABLE",
    ],
)
def test_bad_path_and_query_params_are_422(api: Api, path):
    assert_problem(api.call("admin", "GET", path), 422, "validation_error")


def test_ids_too_big_for_the_database_are_422(api: Api):
    case_id = open_case(api)
    taper = {"medication_id": 2**63, "plan": "x"}
    response = api.call("clinician", "POST", case_url(case_id, "/tapers"), json=taper)
    assert_problem(response, 422, "validation_error")
    session = {"kind": "dosing", "completed_at": api.ago(), "clearance_id": 2**64}
    response = api.call("coordinator", "POST", case_url(case_id, "/sessions"), json=session)
    assert_problem(response, 422, "validation_error")
    response = api.call(
        "clinician", "PATCH", case_url(case_id, f"/medications/{2**63}"), json={"status": "stopped"}
    )
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("day", [0, 20260102, "2026-01-02T00:00:00Z", "0001-01-01T00:00:00+23:59"])
def test_a_date_is_an_iso_day_never_a_number_or_a_timestamp(api: Api, day):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    stopped = {"name": "ibuprofen", "status": "stopped", "stopped_on": day}
    response = api.call("coordinator", "POST", case_url(case_id, "/medications"), json=stopped)
    assert assert_problem(response, 422, "validation_error")["errors"][0]["loc"] == [
        "body",
        "stopped_on",
    ]
    assert api.snapshot(case_id) == before
    licence = {"licenses": [{"state": "CA", "expires_on": day}]}
    response = api.call("admin", "PATCH", "/api/v1/users/2", json=licence)
    (error,) = assert_problem(response, 422, "validation_error")["errors"]
    assert error["loc"][-1] == "expires_on"


@pytest.mark.parametrize("given", ["1", True, 1.0])
def test_a_record_id_in_a_body_is_a_json_integer(api: Api, given):
    case_id = open_case(api)
    record_evaluation(api, case_id)
    med = api.post("coordinator", case_url(case_id, "/medications"), {"name": "alprazolam"})
    assert med["id"] == 1
    before = api.snapshot(case_id)
    taper = {"medication_id": given, "plan": "0.25 mg less a week"}
    response = api.call("clinician", "POST", case_url(case_id, "/tapers"), json=taper)
    assert_problem(response, 422, "validation_error")
    assert api.snapshot(case_id) == before


def test_unknown_taper_medication_is_422_from_the_service(api: Api):
    case_id = open_case(api)
    record_evaluation(api, case_id)
    response = api.call(
        "clinician",
        "POST",
        case_url(case_id, "/tapers"),
        json={"medication_id": 12345, "plan": "x"},
    )
    errors = assert_problem(response, 422, "validation_error")["errors"]
    assert errors[0]["loc"] == ["body", "medication_id"]


def test_a_value_the_database_refuses_is_never_a_500(api: Api):
    case_id = open_case(api)
    response = api.call(
        "coordinator", "POST", case_url(case_id, "/medications"), json={"name": "a\u0000b"}
    )
    # PostgreSQL cannot store a NUL, so it is refused at the door on every database.
    assert_problem(response, 422, "validation_error")
