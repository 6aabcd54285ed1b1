"""Timestamps a client sends (SPEC.md section 4), and strict clinical types: a 422, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import Api, assert_problem, case_in, case_url, open_case

BAD_TIMESTAMPS = [
    0,  # a JSON number: pydantic would read 1970
    1_790_000_000,  # a number that would be 2026
    "1790000000",  # the same, as a string
    1.5,
    True,
    "2026-11-01T10:00:00",  # naive
    "1999-12-31T23:59:59Z",  # before 2000
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:30",  # before year 1 in UTC: cannot be stored
    "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC: cannot be stored
    "2026-11-02",  # a date, not a timestamp
]


def assessment(taken_at: Any) -> dict[str, Any]:
    return {"instrument": "isi", "score": 5, "taken_at": taken_at}


@pytest.mark.parametrize("taken_at", BAD_TIMESTAMPS)
def test_bad_timestamps_are_422_and_change_nothing(api: Api, taken_at):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    for path, body in (
        ("/assessments", assessment(taken_at)),
        ("/vitals", {"systolic": 120, "diastolic": 80, "taken_at": taken_at}),
    ):
        response = api.call("coordinator", "POST", case_url(case_id, path), json=body)
        errors = assert_problem(response, 422, "validation_error")["errors"]
        assert ["body", "taken_at"] in [e["loc"] for e in errors]
    assert api.snapshot(case_id) == before


@pytest.mark.parametrize("completed_at", [0, "1970-01-01T00:00:00Z", "0001-01-01T00:00:00+00:30"])
def test_a_session_dated_1970_is_refused(api: Api, completed_at):
    case_id = case_in(api, "integration")
    before = api.snapshot(case_id)
    body = {"kind": "preparation", "completed_at": completed_at}
    response = api.call("coordinator", "POST", case_url(case_id, "/sessions"), json=body)
    assert_problem(response, 422, "validation_error")
    assert api.snapshot(case_id) == before


def test_timestamp_with_a_zone_is_stored_in_utc(api: Api):
    case_id = open_case(api)
    taken_at = api.clock.now.replace(hour=10).isoformat().replace("+00:00", "+02:00")
    stored = api.post("coordinator", case_url(case_id, "/assessments"), assessment(taken_at))
    assert stored["taken_at"].startswith(api.clock.now.replace(hour=8).isoformat()[:19])


def test_clock_skew_is_allowed_but_not_more(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/assessments")
    api.post("coordinator", path, assessment(api.ago(seconds=-59)))
    response = api.call("coordinator", "POST", path, json=assessment(api.ago(seconds=-61)))
    assert_problem(response, 422, "validation_error")


def test_fact_time_not_older_than_a_year_before_the_case(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/assessments")
    api.post("coordinator", path, assessment(api.ago(days=364)))
    before = api.snapshot(case_id)
    response = api.call("coordinator", "POST", path, json=assessment(api.ago(days=366)))
    errors = assert_problem(response, 422, "validation_error")["errors"]
    assert errors[0]["loc"][-1] == "taken_at"
    assert api.snapshot(case_id) == before


@pytest.mark.parametrize(
    "due_before", ["0001-01-01T00:00:00+00:30", "9999-12-31T23:59:59-00:01", "0", "2026-11-01"]
)
def test_bad_due_before_is_422(api: Api, due_before):
    response = api.call("admin", "GET", "/api/v1/reminders", params={"due_before": due_before})
    assert_problem(response, 422, "validation_error")


def test_good_due_before_is_served(api: Api):
    response = api.call("admin", "GET", "/api/v1/reminders", params={"due_before": api.ago()})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/assessments", "score", "5"),
        ("/assessments", "score", 5.0),
        ("/assessments", "item9", "1"),
        ("/vitals", "systolic", "120"),
        ("/monitors", "adult_attested", "yes"),
        ("/monitors", "adult_attested", "true"),
        ("/monitors", "adult_attested", 1),
        ("/dose-clearances", "systolic", "118"),
        ("/dose-clearances", "heart_rate", "70"),
    ],
)
def test_clinical_fields_are_not_coerced(api: Api, path, field, value):
    case_id = open_case(api)
    bodies = {
        "/assessments": {
            "instrument": "phq9",
            "score": 5,
            "item9": 0,
            "taken_at": api.ago(hours=1),
        },
        "/vitals": {"systolic": 120, "diastolic": 80, "taken_at": api.ago(hours=1)},
        "/dose-clearances": {"systolic": 118, "diastolic": 76, "monitor_id": 1},
        "/monitors": {
            "name": "Alex Rivera",
            "relationship": "sibling",
            "phone": "555-0101",
            "adult_attested": True,
            "trained_on": "2026-10-01",
        },
    }
    body = {**bodies[path], field: value}
    response = api.call("clinician", "POST", case_url(case_id, path), json=body)
    errors = assert_problem(response, 422, "validation_error")["errors"]
    assert ["body", field] in [e["loc"] for e in errors]


def test_history_flags_are_not_coerced(api: Api):
    from tests.api.helpers import ELIGIBLE_HISTORY

    case_id = open_case(api)
    for field, value in (("sleep_apnea", "no"), ("insomnia_nights_per_week", "5")):
        body = {**ELIGIBLE_HISTORY, field: value}
        response = api.call("coordinator", "PUT", case_url(case_id, "/history"), json=body)
        errors = assert_problem(response, 422, "validation_error")["errors"]
        assert ["body", field] in [e["loc"] for e in errors]


def test_dates_are_not_numbers(api: Api):
    from models.schemas import TaperConfirm

    with pytest.raises(ValueError):
        TaperConfirm.model_validate({"last_dose_on": 20261101})
    with pytest.raises(ValueError):
        TaperConfirm.model_validate({"last_dose_on": "1790000000"})
    assert str(TaperConfirm.model_validate({"last_dose_on": "2026-11-01"}).last_dose_on)
