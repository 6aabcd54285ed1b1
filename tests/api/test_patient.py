"""The patient's record over HTTP: history, profile and consent, their roles and their forms."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.settings import settings
from tests.api.helpers import (
    ELIGIBLE_HISTORY,
    ELIGIBLE_PROFILE,
    MOOD_DRIVEN,
    PRESCRIPTION,
    Api,
    approve,
    assert_problem,
    case_in,
    case_url,
    open_case,
)
from tests.api.test_pages import signed_in_csrf


def put(api: Api, role: str, case_id: int, suffix: str, body: Any) -> Any:
    return api.call(role, "PUT", case_url(case_id, suffix), json=body)


def test_the_profile_is_put_and_read_back(api: Api):
    case_id = open_case(api)
    assert_problem(api.call("coordinator", "GET", case_url(case_id, "/profile")), 404, "not_found")

    response = put(api, "coordinator", case_id, "/profile", ELIGIBLE_PROFILE)

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    stored = api.get("admin", case_url(case_id, "/profile"))
    assert {k: stored[k] for k in ELIGIBLE_PROFILE} == ELIGIBLE_PROFILE
    assert stored["case_id"] == case_id


@pytest.mark.parametrize(
    "date_of_birth",
    ["2026-11-03", "1900-01-01", "1899-12-31", 19840615, "15/06/1984", None],
)
def test_a_bad_date_of_birth_is_a_422_naming_it(api: Api, date_of_birth):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    body = ELIGIBLE_PROFILE | {"date_of_birth": date_of_birth}
    problem = assert_problem(
        put(api, "coordinator", case_id, "/profile", body), 422, "validation_error"
    )
    assert problem["errors"][0]["loc"][:2] == ["body", "date_of_birth"]
    assert api.snapshot(case_id) == before


def test_the_profile_flags_are_json_booleans(api: Api):
    case_id = open_case(api)
    body = ELIGIBLE_PROFILE | {"pregnant": "no"}
    assert_problem(put(api, "coordinator", case_id, "/profile", body), 422, "validation_error")


@pytest.mark.parametrize(
    "field", ["psychosis_or_mania_history", "aneurysm_avm_or_ich", "recent_mi_or_stroke"]
)
def test_every_new_history_flag_is_required(api: Api, field):
    case_id = open_case(api)
    body = {k: v for k, v in ELIGIBLE_HISTORY.items() if k != field}
    problem = assert_problem(
        put(api, "coordinator", case_id, "/history", body), 422, "validation_error"
    )
    assert problem["errors"][0]["loc"] == ["body", field]


def test_a_coordinator_may_not_judge_the_insomnia_mood_driven(api: Api):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    body = ELIGIBLE_HISTORY | MOOD_DRIVEN
    problem = assert_problem(put(api, "coordinator", case_id, "/history", body), 403, "forbidden")
    assert "insomnia_mood_driven" in problem["detail"]
    assert api.snapshot(case_id) == before

    assert put(api, "coordinator", case_id, "/history", ELIGIBLE_HISTORY).status_code == 200
    assert put(api, "clinician", case_id, "/history", body).status_code == 200
    assert api.get("coordinator", case_url(case_id, "/history"))["insomnia_mood_driven"] is True


@pytest.mark.parametrize(
    ("suffix", "body"),
    [("/history", ELIGIBLE_HISTORY | MOOD_DRIVEN), ("/profile", ELIGIBLE_PROFILE)],
)
def test_once_approved_only_a_clinician_writes_history_and_profile(api: Api, suffix, body):
    case_id = case_in(api, "integration")
    before = api.snapshot(case_id)
    coordinator_body = {k: v for k, v in body.items() if k != "insomnia_mood_driven"}

    problem = assert_problem(
        put(api, "coordinator", case_id, suffix, coordinator_body), 403, "forbidden"
    )

    assert "only a clinician" in problem["detail"]
    assert api.snapshot(case_id) == before
    assert put(api, "clinician", case_id, suffix, body).status_code == 200


def test_a_new_contraindication_after_approval_holds_the_case(api: Api):
    case_id = case_in(api, "integration")
    body = ELIGIBLE_PROFILE | {"pregnant": True}

    assert put(api, "clinician", case_id, "/profile", body).status_code == 200

    case = api.get("coordinator", case_url(case_id))
    assert (case["state"], case["held_from"]) == ("on_hold", "integration")
    (event,) = api.items("coordinator", case_url(case_id, "/adverse-events"))
    assert (event["kind"], event["severity"], event["recorded_by_system"]) == (
        "other",
        "severe",
        True,
    )
    assert event["description"] == "new contraindication: contraindication.pregnancy"
    resume = [
        o
        for o in api.get("clinician", case_url(case_id, "/transitions"))
        if o["trigger"] == "resume"
    ]
    codes = [u["code"] for u in resume[0]["unmet"]]
    assert codes == ["adverse_events.resolved", "contraindication.pregnancy"]


def test_consents_are_recorded_and_listed(api: Api):
    case_id = open_case(api)
    path = case_url(case_id, "/consents")
    first = api.post(
        "coordinator", path, {"version": "2025-1", "signed_at": api.ago(days=30), "method": "paper"}
    )
    api.post(
        "coordinator",
        path,
        {"version": "2026-1", "signed_at": api.ago(hours=1), "method": "electronic"},
    )

    listed = api.items("admin", path)

    assert [(c["version"], c["method"]) for c in listed] == [
        ("2025-1", "paper"),
        ("2026-1", "electronic"),
    ]
    assert first["recorded_by"] is not None and first["id"] == listed[0]["id"]


@pytest.mark.parametrize(
    "change",
    [{"method": "fax"}, {"version": ""}, {"signed_at": "2026-11-02T15:00:00"}, {"extra": 1}],
)
def test_a_bad_consent_is_a_422(api: Api, change):
    case_id = open_case(api)
    body = {"version": "2026-1", "signed_at": api.ago(hours=1), "method": "paper"} | change
    response = api.call("coordinator", "POST", case_url(case_id, "/consents"), json=body)
    assert_problem(response, 422, "validation_error")
    assert api.items("coordinator", case_url(case_id, "/consents")) == []


def test_a_new_consent_version_asks_for_a_new_consent(api: Api, monkeypatch):
    case_id = open_case(api)
    approve(api, case_id)  # with a consent to version 2026-1
    monkeypatch.setattr(settings, "consent_version", "2027-1")

    options = api.get("clinician", case_url(case_id, "/transitions"))
    (prescribe,) = [o for o in options if o["trigger"] == "prescribe"]
    assert [u["code"] for u in prescribe["unmet"]] == ["consent.signed"]
    assert "2027-1" in prescribe["unmet"][0]["message"]

    consent = {"version": "2027-1", "signed_at": api.ago(minutes=5), "method": "electronic"}
    api.post("coordinator", case_url(case_id, "/consents"), consent)
    case = api.fire("clinician", case_id, "prescribe", **PRESCRIPTION)
    assert case["state"] == "delivery.prescribed"


def test_the_workflow_lists_the_requirements_of_some_moves(api: Api):
    doc = api.get("coordinator", "/api/v1/workflow")
    triggers = {t["name"]: t for t in doc["triggers"]}
    (resume,) = triggers["resume"]["also"]
    assert resume["to"] == ["delivery.prescribed", "delivery.shipped", "integration", "monitoring"]
    assert resume["when"] is None and "taper.washout" in resume["requires"]
    (raise_,) = triggers["adjust_dose"]["also"]
    assert (raise_["to"], raise_["when"]) == (None, "dose_raised")
    assert triggers["adjust_dose"]["requires"] == ["clinician.licensed"]
    for code in ("profile.recorded", "consent.signed", "criteria.adult", "vitals.recent"):
        assert code in doc["requirements"]
    assert doc["fact_roles"]["profile"] == ["coordinator", "clinician"]


# -- the case page's forms ---------------------------------------------------------------


def test_the_profile_and_consent_forms_record_and_show(client: TestClient, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    page = client.get(f"/app/cases/{case_id}")
    for fact in ("history", "profile", "consent"):
        assert f'action="/app/cases/{case_id}/facts/{fact}"' in page.text

    profile = {"csrf_token": csrf, "date_of_birth": "1984-06-15", "breastfeeding": "1"}
    response = client.post(f"/app/cases/{case_id}/facts/profile", data=profile)
    assert response.status_code == 200 and "Saved: profile" in response.text
    consent = {
        "csrf_token": csrf,
        "version": "2026-1",
        "signed_at": api.ago(hours=1)[:16],
        "method": "paper",
    }
    response = client.post(f"/app/cases/{case_id}/facts/consent", data=consent)
    assert response.status_code == 200 and "Saved: consent" in response.text

    stored = api.get("coordinator", case_url(case_id, "/profile"))
    assert (stored["date_of_birth"], stored["pregnant"], stored["breastfeeding"]) == (
        "1984-06-15",
        False,
        True,
    )
    assert [c["method"] for c in api.items("coordinator", case_url(case_id, "/consents"))] == [
        "paper"
    ]
    page = client.get(f"/app/cases/{case_id}").text
    assert "Patient profile" in page and "1984-06-15" in page and "Consents" in page


def test_the_history_form_leaves_a_clinicians_judgement_alone(client: TestClient, tokens, api: Api):
    case_id = open_case(api)
    put(api, "clinician", case_id, "/history", ELIGIBLE_HISTORY | MOOD_DRIVEN)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    form = {"csrf_token": csrf, "insomnia_nights_per_week": "6", "insomnia_duration_months": "18"}
    form |= {"failed_antidepressant_trials": "3", "diagnoses": "depression", "cbti_completed": "1"}

    response = client.post(f"/app/cases/{case_id}/facts/history", data=form)

    assert response.status_code == 200, response.text
    stored = api.get("coordinator", case_url(case_id, "/history"))
    assert (stored["insomnia_nights_per_week"], stored["insomnia_mood_driven"]) == (6, True)
    refused = client.post(
        f"/app/cases/{case_id}/facts/history", data=form | {"insomnia_mood_driven": "true"}
    )
    assert refused.status_code == 200, refused.text  # true already: not a change
    put(api, "clinician", case_id, "/history", ELIGIBLE_HISTORY | {"insomnia_mood_driven": False})
    refused = client.post(
        f"/app/cases/{case_id}/facts/history", data=form | {"insomnia_mood_driven": "true"}
    )
    assert refused.status_code == 403 and "insomnia_mood_driven" in refused.text
