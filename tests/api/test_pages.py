"""The web pages over HTTP: sign-in, the session cookie, CSRF, idle expiry, sign-out, forms."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.pages.sessions import COOKIE
from models.db import session_scope
from models.settings import settings
from models.tables import User
from tests.api.helpers import (
    Api,
    case_in,
    case_url,
    monitor_id,
    open_case,
    record_evaluation,
)

PAGE_CSP = "default-src 'self'"


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def sign_in(client: TestClient, token: str) -> httpx.Response:
    form = client.get("/app/login")
    return client.post(
        "/app/login",
        data={"token": token, "csrf_token": csrf_of(form)},
        follow_redirects=False,
    )


def signed_in_csrf(client: TestClient, token: str) -> str:
    assert sign_in(client, token).status_code == 303
    return csrf_of(client.get("/app/worklist"))


def goes_to_sign_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"] == "/app/login"


def test_pages_need_a_session(client):
    for path in ("/app/worklist", "/app/cases/1", "/app"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
    assert goes_to_sign_in(client.get("/app/worklist", follow_redirects=False))


def test_the_sign_in_page_and_its_headers(client):
    page = client.get("/app/login")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith(PAGE_CSP)
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text


def test_signing_in_sets_a_strict_http_only_cookie(client, tokens):
    response = sign_in(client, tokens["coordinator"])
    assert response.status_code == 303
    assert response.headers["location"] == "/app/worklist"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/app" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    page = client.get("/app/worklist")
    assert page.status_code == 200 and "cora" in page.text


def test_over_https_the_cookie_is_secure(app, tokens):
    with TestClient(app, base_url="https://testserver") as client:
        assert "Secure" in sign_in(client, tokens["clinician"]).headers["set-cookie"]


@pytest.mark.parametrize("token", ["not-a-token", ""])
def test_an_unknown_token_does_not_sign_in(client, token):
    response = sign_in(client, token)
    assert response.status_code == 401
    assert "not known" in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")


def test_an_admin_uses_the_api_not_the_pages(client, tokens):
    assert sign_in(client, tokens["admin"]).status_code == 401


def test_the_sign_in_form_needs_its_csrf_token(client, tokens):
    client.get("/app/login")
    response = client.post(
        "/app/login", data={"token": tokens["coordinator"], "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert goes_to_sign_in(client.get("/app/worklist", follow_redirects=False))


def test_a_form_without_the_sessions_csrf_token_is_refused(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    before = api.snapshot(case_id)
    body = {"instrument": "phq9", "score": "12", "item9": "0", "taken_at": api.ago(hours=1)[:16]}
    for forged in ({}, {"csrf_token": "x" * len(csrf)}):
        response = client.post(f"/app/cases/{case_id}/facts/assessment", data={**body, **forged})
        assert response.status_code == 403
    assert api.snapshot(case_id) == before
    logout = client.post("/app/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert logout.status_code == 403
    assert client.get("/app/worklist").status_code == 200  # still signed in


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_500(client, tokens, api: Api):
    form = client.get("/app/login")
    assert "csrf_token" in form.text
    response = client.post("/app/login", data={"token": tokens["coordinator"], "csrf_token": "é"})
    assert response.status_code == 403
    case_id = open_case(api)
    signed_in_csrf(client, tokens["coordinator"])
    before = api.snapshot(case_id)
    body = {"instrument": "gad7", "score": "9", "taken_at": api.ago(hours=1)[:16]}
    response = client.post(
        f"/app/cases/{case_id}/facts/assessment", data={**body, "csrf_token": "é" * 43}
    )
    assert response.status_code == 403
    assert api.snapshot(case_id) == before


@pytest.mark.parametrize("number", ["²", "9" * 5000, str(2**63), "-1"])
def test_a_form_s_record_id_or_version_that_is_no_id_changes_nothing(
    client, tokens, api: Api, number
):
    case_id = open_case(api)
    event = api.post(
        "coordinator",
        case_url(case_id, "/adverse-events"),
        {"kind": "nausea", "severity": "mild", "description": "After the dose."},
    )
    csrf = signed_in_csrf(client, tokens["clinician"])
    before = api.snapshot(case_id)
    resolve = {"csrf_token": csrf, "record_id": number, "note": "Settled."}
    response = client.post(f"/app/cases/{case_id}/facts/adverse_event_resolve", data=resolve)
    assert response.status_code == 404
    assert api.snapshot(case_id) == before
    resolve = {**resolve, "record_id": str(event["id"]), "version": number}
    response = client.post(f"/app/cases/{case_id}/facts/adverse_event_resolve", data=resolve)
    assert response.status_code == 200 and "Saved" in response.text


def test_a_session_ends_after_the_idle_time(client, tokens, clock):
    signed_in_csrf(client, tokens["coordinator"])
    idle = settings.session_idle_minutes
    clock.advance(minutes=idle - 1)
    assert client.get("/app/worklist").status_code == 200  # a request: idle time starts again
    clock.advance(minutes=idle - 1)
    assert client.get("/app/worklist").status_code == 200
    clock.advance(minutes=idle)
    assert goes_to_sign_in(client.get("/app/worklist", follow_redirects=False))


def test_signing_out_ends_the_session_on_the_server(client, tokens):
    csrf = signed_in_csrf(client, tokens["clinician"])
    cookie = client.cookies[COOKIE]
    response = client.post("/app/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert goes_to_sign_in(response)
    assert f'{COOKIE}=""' in response.headers["set-cookie"]
    client.cookies.set(COOKIE, cookie, path="/app")  # a copy kept of the old cookie
    assert goes_to_sign_in(client.get("/app/worklist", follow_redirects=False))


def test_a_new_token_ends_the_session(client, tokens, engine):
    signed_in_csrf(client, tokens["coordinator"])
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.name == "cora")).one()
        user.token_hash = "0" * 64
    assert goes_to_sign_in(client.get("/app/worklist", follow_redirects=False))


def test_a_fact_is_recorded_through_the_form(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    taken_at = api.ago(hours=2)[:16]
    body = {"csrf_token": csrf, "instrument": "gad7", "score": "9", "taken_at": taken_at}
    response = client.post(f"/app/cases/{case_id}/facts/assessment", data=body)
    assert response.status_code == 200 and "Saved: assessment" in response.text
    (recorded,) = api.items("coordinator", case_url(case_id, "/assessments"))
    assert (recorded["instrument"], recorded["score"]) == ("gad7", 9)
    assert recorded["taken_at"].startswith(taken_at)


def test_a_clinician_records_a_safety_plan_through_the_form(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["clinician"])
    reviewed = api.ago(hours=1)[:16]
    body = {
        "csrf_token": csrf,
        "plan": "Crisis line; the monitor keeps the medication.",
        "reviewed_with_patient_at": reviewed,
        "risk_level": "low",
        "means_secured": "on",
    }
    response = client.post(f"/app/cases/{case_id}/facts/safety_plan", data=body)
    assert response.status_code == 200 and "Saved: safety plan" in response.text
    assert "Safety plans" in response.text
    (plan,) = api.items("clinician", case_url(case_id, "/safety-plans"))
    assert (plan["risk_level"], plan["means_secured"]) == ("low", True)
    assert plan["reviewed_with_patient_at"].startswith(reviewed)


def test_a_phq9_without_item9_is_refused_by_the_form(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    before = api.snapshot(case_id)
    body = {"csrf_token": csrf, "instrument": "phq9", "score": "26", "taken_at": api.ago()[:16]}
    response = client.post(f"/app/cases/{case_id}/facts/assessment", data=body)
    assert response.status_code == 422 and "requires item9" in response.text
    assert api.snapshot(case_id) == before


def test_a_bad_value_shows_the_schemas_message_and_writes_nothing(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    before = api.snapshot(case_id)
    body = {"csrf_token": csrf, "instrument": "gad7", "score": "25", "taken_at": api.ago()[:16]}
    response = client.post(f"/app/cases/{case_id}/facts/assessment", data=body)
    assert response.status_code == 422
    assert "a gad7 score is 0 to 21" in response.text
    assert 'value="25"' in response.text  # what was typed is kept
    assert api.snapshot(case_id) == before


def test_a_blocked_trigger_shows_every_unmet_requirement(client, tokens, api: Api):
    case_id = open_case(api)
    record_evaluation(api, case_id)
    csrf = signed_in_csrf(client, tokens["clinician"])
    before = api.snapshot(case_id)
    response = client.post(f"/app/cases/{case_id}/triggers/approve", data={"csrf_token": csrf})
    assert response.status_code == 409
    unmet = api.get("clinician", case_url(case_id, "/transitions"))
    (approve,) = [o for o in unmet if o["trigger"] == "approve"]
    assert approve["unmet"]
    alert = response.text[response.text.index('id="trigger-approve"') :]
    for requirement in approve["unmet"]:
        assert requirement["code"] in alert
    assert "/facts/interaction_screening" in response.text  # a clinician's form
    assert "/facts/adverse_event_resolve" not in response.text  # no event to resolve yet
    assert api.snapshot(case_id) == before


def test_a_trigger_fires_through_the_form(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    page = client.get(f"/app/cases/{case_id}")
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    reason = "travelling <script>alert(1)</script>"
    body = {"csrf_token": csrf, "version": version, "reason": reason}
    response = client.post(f"/app/cases/{case_id}/triggers/hold", data=body)
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text  # shown, never run
    assert "<script" not in response.text
    assert api.get("coordinator", case_url(case_id))["state"] == "on_hold"
    stale = client.post(f"/app/cases/{case_id}/triggers/withdraw", data=body)
    assert stale.status_code == 412  # the page was older than the case
    assert api.get("coordinator", case_url(case_id))["state"] == "on_hold"


def test_a_role_sees_only_its_own_forms_and_cannot_post_others(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    page = client.get(f"/app/cases/{case_id}")
    assert f'action="/app/cases/{case_id}/triggers/hold"' in page.text
    assert f'action="/app/cases/{case_id}/triggers/approve"' not in page.text
    assert "/facts/interaction_screening" not in page.text
    before = api.snapshot(case_id)
    response = client.post(f"/app/cases/{case_id}/triggers/approve", data={"csrf_token": csrf})
    assert response.status_code == 403 and "may not fire approve" in response.text
    assert api.snapshot(case_id) == before


def test_docs_are_served_from_the_package(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/app/static/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text.replace("https://fastapi", "")
    csp = page.headers["content-security-policy"]
    assert csp.startswith(PAGE_CSP) and "'sha256-" in csp
    script = client.get("/app/static/swagger-ui/swagger-ui-bundle.js")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text[:200_000]
    assert client.get("/app/static/swagger-ui/LICENSE").status_code == 200


def test_the_api_sends_the_security_headers_too(api: Api):
    response = api.call("coordinator", "GET", "/api/v1/cases", expect=200)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_unknown_case_is_a_page_saying_so(client, tokens):
    signed_in_csrf(client, tokens["coordinator"])
    response = client.get("/app/cases/999")
    assert response.status_code == 404
    assert "Case 999 does not exist." in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_the_worklist_filters_and_acknowledges(client, tokens, api: Api, clock):
    case_id = open_case(api)
    clock.advance(days=8)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    page = client.get("/app/worklist", params={"kind": "evaluation_overdue", "role": ""})
    assert page.status_code == 200
    assert f'href="/app/cases/{case_id}"' in page.text and "overdue by 1d" in page.text
    other = client.get("/app/worklist", params={"kind": "safety_review"})
    assert f'href="/app/cases/{case_id}"' not in other.text
    assert client.get("/app/worklist", params={"role": "janitor"}).status_code == 422

    (reminder,) = api.items("coordinator", case_url(case_id, "/reminders"))
    assert f"/app/reminders/{reminder['id']}/acknowledge" in page.text
    path = f"/app/reminders/{reminder['id']}/acknowledge"
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
    done = client.post(path, data={"csrf_token": csrf, "back": "worklist"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/app/worklist"
    (after,) = api.items("coordinator", case_url(case_id, "/reminders"))
    assert after["status"] == "acknowledged"
    again = client.post(path, data={"csrf_token": csrf})
    assert again.status_code == 409


def test_the_case_is_assigned_through_its_form_and_shows_who_has_it(client, tokens, api: Api):
    case_id = open_case(api)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    page = client.get(f"/app/cases/{case_id}")
    assert 'Clinician: <span class="muted">not assigned</span>' in page.text
    assert f'action="/app/cases/{case_id}/facts/assignment"' in page.text
    assert "/facts/case_update" not in page.text  # a clinician's form
    clinician = api.get("clinician", "/api/v1/users/me")
    assert f'<option value="{clinician["id"]}" >clio (#{clinician["id"]})</option>' in page.text

    body = {"csrf_token": csrf, "clinician_id": str(clinician["id"]), "coordinator_id": ""}
    response = client.post(f"/app/cases/{case_id}/facts/assignment", data=body)
    assert response.status_code == 200 and "Saved: assignment" in response.text
    assert f"Clinician: <strong>clio (#{clinician['id']})</strong>" in response.text
    case = api.get("coordinator", case_url(case_id))
    assert (case["assigned_clinician_id"], case["assigned_coordinator_id"]) == (
        clinician["id"],
        None,
    )
    assert f"clinician #{clinician['id']}" in client.get("/app/worklist").text

    before = api.snapshot(case_id)
    refused = client.post(
        f"/app/cases/{case_id}/facts/assignment",
        data={"csrf_token": csrf, "clinician_id": "", "coordinator_id": ""},
    )
    assert refused.status_code == 422
    assert "send a clinician_id, a coordinator_id or both" in refused.text
    assert api.snapshot(case_id) == before


def test_a_clinician_records_the_patient_s_move_through_its_form(client, tokens, api: Api):
    case_id = open_case(api, state="CA")
    csrf = signed_in_csrf(client, tokens["clinician"])
    body = {"csrf_token": csrf, "patient_state": "NY"}
    response = client.post(f"/app/cases/{case_id}/facts/case_update", data=body)
    assert response.status_code == 200 and "patient in NY" in response.text
    assert api.get("clinician", case_url(case_id))["patient_state"] == "NY"


def test_the_dosing_cycle_through_the_forms(client, tokens, api: Api):
    """A clearance, its cancellation, a new clearance and the dose record, as a coordinator
    fills them in on the case page; the page shows the prescription and the monitors."""
    case_id = case_in(api, "integration")
    monitor = monitor_id(api, case_id)
    csrf = signed_in_csrf(client, tokens["coordinator"])
    page = client.get(f"/app/cases/{case_id}")
    assert "100 mg sublingual" in page.text and "Treatment monitors" in page.text
    assert "/facts/dose_clearance_cancel" not in page.text  # nothing open to cancel yet
    facts = f"/app/cases/{case_id}/facts"
    prep = {"csrf_token": csrf, "kind": "preparation", "completed_at": api.ago(minutes=5)[:16]}
    assert client.post(f"{facts}/session", data=prep).status_code == 200

    reading = {"csrf_token": csrf, "systolic": "122", "diastolic": "78", "monitor_id": str(monitor)}
    assert client.post(f"{facts}/dose_clearance", data=reading).status_code == 200
    (first,) = api.items("coordinator", case_url(case_id, "/dose-clearances"))
    assert first["granted"], first["unmet"]
    assert "/facts/dose_clearance_cancel" in client.get(f"/app/cases/{case_id}").text
    cancel = {"csrf_token": csrf, "record_id": str(first["id"]), "reason": "Not tonight."}
    assert client.post(f"{facts}/dose_clearance_cancel", data=cancel).status_code == 200
    assert client.post(f"{facts}/dose_clearance", data=reading).status_code == 200
    second = api.items("coordinator", case_url(case_id, "/dose-clearances"))[-1]
    assert second["granted"] and second["open"]

    api.clock.advance(hours=2, minutes=30)
    dose = {
        "csrf_token": csrf,
        "kind": "dosing",
        "clearance_id": str(second["id"]),
        "monitor_id": str(monitor),
        "dosed_at": api.ago(hours=2, minutes=15)[:16],
        "dose_mg": "100",
        "units_taken": "1",
        "post_systolic": "126",
        "post_diastolic": "80",
        "post_taken_at": api.ago(hours=1, minutes=45)[:16],
        "completed_at": api.ago()[:16],
    }
    assert client.post(f"{facts}/session", data=dose).status_code == 200
    recorded = api.items("coordinator", case_url(case_id, "/sessions"))[-1]
    assert (recorded["kind"], recorded["deviations"]) == ("dosing", [])
