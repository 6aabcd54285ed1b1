"""Every refusal of SPEC section 6 but validation: 401, 403, 404, 405, 409, 412 and 503."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.api.helpers import Api, assert_problem, case_url, open_case
from workflow import records

# -- 401 and 403 --------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "Bearer nope", "Basic YWRtaW46YWRtaW4=", "Bearer", "bearer  "]
)
def test_missing_or_unknown_token_is_401(api: Api, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = api.client.get("/api/v1/cases", headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_role_not_allowed_is_403(api: Api):
    case_id = open_case(api)
    body = assert_problem(
        api.call("coordinator", "POST", case_url(case_id, "/transitions/approve")),
        403,
        "forbidden",
    )
    assert "coordinator" in body["detail"]
    taper = {"medication_id": 1, "plan": "x"}
    response = api.call("coordinator", "POST", case_url(case_id, "/tapers"), json=taper)
    assert_problem(response, 403, "forbidden")
    user = {"name": "eve", "role": "admin"}
    assert_problem(api.call("clinician", "POST", "/api/v1/users", json=user), 403, "forbidden")


def test_auth_comes_before_validation(api: Api):
    response = api.call(None, "POST", "/api/v1/cases/abc/vitals", json={"systolic": 1})
    assert_problem(response, 401, "unauthenticated")
    response = api.call("clinician", "POST", "/api/v1/users", json={"bad": 1})
    assert_problem(response, 403, "forbidden")


# -- 404 and 405 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/cases/999"),
        ("GET", "/api/v1/cases/999/events"),
        ("GET", "/api/v1/cases/999/transitions"),
        ("GET", "/api/v1/cases/999/reminders"),
        ("GET", "/api/v1/cases/999/vitals"),
        ("GET", "/api/v1/nowhere"),
        ("GET", "/"),
    ],
)
def test_unknown_is_404(api: Api, method, path):
    assert_problem(api.call("admin", method, path), 404, "not_found")


def test_unknown_trigger_record_or_history_is_404(api: Api):
    case_id = open_case(api)
    assert_problem(
        api.call("coordinator", "POST", case_url(case_id, "/transitions/teleport")),
        404,
        "not_found",
    )
    assert_problem(api.call("clinician", "GET", case_url(case_id, "/history")), 404, "not_found")
    unknown = [
        ("PATCH", "/medications/999", {"status": "stopped"}),
        ("POST", "/tapers/999/confirm", {"last_dose_on": "2026-10-01"}),
        ("POST", "/adverse-events/999/resolve", {"note": "ok"}),
    ]
    for method, suffix, body in unknown:
        response = api.call("clinician", method, case_url(case_id, suffix), json=body)
        assert_problem(response, 404, "not_found")


def test_wrong_method_is_405(api: Api):
    response = api.call("admin", "DELETE", "/api/v1/cases")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


# -- 409 -------------------------------------------------------------------------


def test_blocked_transition_lists_every_unmet_requirement_and_changes_nothing(api: Api):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    body = assert_problem(
        api.call("clinician", "POST", case_url(case_id, "/transitions/approve")),
        409,
        "transition_blocked",
    )
    codes = [u["code"] for u in body["unmet"]]
    assert codes[:3] == ["history.recorded", "profile.recorded", "consent.signed"]
    assert len(codes) == 18 and "taper.planned" not in codes  # no benzodiazepine listed
    assert all(u["message"] for u in body["unmet"])
    assert api.snapshot(case_id) == before


def test_trigger_that_does_not_leave_the_state_is_invalid_transition(api: Api):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    response = api.call("coordinator", "POST", case_url(case_id, "/transitions/ship"))
    assert_problem(response, 409, "invalid_transition")
    assert api.snapshot(case_id) == before


def test_second_open_case_for_a_patient_is_conflict(api: Api):
    body = {"patient_ref": "P-77", "patient_state": "CA"}
    api.post("coordinator", "/api/v1/cases", body)
    response = api.call("coordinator", "POST", "/api/v1/cases", json=body)
    assert_problem(response, 409, "conflict")


def test_resolving_twice_and_duplicate_user_are_conflicts(api: Api):
    case_id = open_case(api)
    event = {"kind": "nausea", "severity": "mild", "description": "After dinner."}
    event_id = api.post("coordinator", case_url(case_id, "/adverse-events"), event)["id"]
    resolve = case_url(case_id, f"/adverse-events/{event_id}/resolve")
    api.post("clinician", resolve, {"note": "Passed."}, expect=200)
    response = api.call("clinician", "POST", resolve, json={"note": "Again."})
    assert_problem(response, 409, "conflict")
    user = {"name": "cora", "role": "coordinator"}
    assert_problem(api.call("admin", "POST", "/api/v1/users", json=user), 409, "conflict")


def test_integrity_error_that_slips_through_is_conflict(api: Api, monkeypatch):
    def racing(*args, **kwargs):
        raise IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    monkeypatch.setattr(records.record_vital, "body", racing)
    case_id = open_case(api)
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    response = api.call("coordinator", "POST", case_url(case_id, "/vitals"), json=vital)
    assert_problem(response, 409, "conflict")


# -- 412 ---------------------------------------------------------------------------


def test_stale_if_match_is_412_and_changes_nothing(api: Api):
    case_id = open_case(api)
    response = api.call("coordinator", "GET", case_url(case_id))
    etag = response.headers["etag"]
    assert etag == '"1"'
    reason = {"reason": "Patient travelling."}
    hold = case_url(case_id, "/transitions/hold")
    api.call("coordinator", "POST", hold, json=reason, headers={"If-Match": etag}, expect=200)
    before = api.snapshot(case_id)
    response = api.call(
        "clinician",
        "POST",
        case_url(case_id, "/transitions/withdraw"),
        json=reason,
        headers={"If-Match": etag},
    )
    assert_problem(response, 412, "version_conflict")
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    response = api.call(
        "coordinator", "POST", case_url(case_id, "/vitals"), json=vital, headers={"If-Match": etag}
    )
    assert_problem(response, 412, "version_conflict")
    assert api.snapshot(case_id) == before


@pytest.mark.parametrize("if_match", ["2", '"two"', 'W/"x"', '"1", "2"', '"99999999999999999999"'])
def test_malformed_if_match_is_412(api: Api, if_match):
    case_id = open_case(api)
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    response = api.call(
        "coordinator",
        "POST",
        case_url(case_id, "/vitals"),
        json=vital,
        headers={"If-Match": if_match},
    )
    assert_problem(response, 412, "version_conflict")
    assert api.snapshot(case_id)[0] == 1


@pytest.mark.parametrize("if_match", ['"1"', 'W/"1"', "*"])
def test_matching_if_match_is_accepted(api: Api, if_match):
    case_id = open_case(api)
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    response = api.call(
        "coordinator",
        "POST",
        case_url(case_id, "/vitals"),
        json=vital,
        headers={"If-Match": if_match},
        expect=201,
    )
    assert response.headers["etag"] == '"2"'


# -- 503 ---------------------------------------------------------------------------


def test_locked_database_is_503_with_retry_after(api: Api, monkeypatch):
    def locked(*args, **kwargs):
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(records.record_vital, "body", locked)
    case_id = open_case(api)
    vital = {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)}
    response = api.call("coordinator", "POST", case_url(case_id, "/vitals"), json=vital)
    assert_problem(response, 503, "unavailable")
    assert int(response.headers["retry-after"]) >= 1
