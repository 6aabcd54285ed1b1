"""A coordinator's day in a real browser: worklist, a blocked case, the missing fact, the move."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.api.helpers import Api, approve, deliver, dose, record_evaluation
from tests.browser.conftest import Server

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def overdue_integration(server: Server) -> int:
    """A case in integration, dosed four days ago, its integration session not yet recorded."""
    api = server.api
    case_id = new_case(api, "PT-0107")
    scores(api, case_id, days_ago=24, phq9=21, gad7=16, isi=23)
    scores(api, case_id, days_ago=12, phq9=19, gad7=14, isi=22)
    approve(api, case_id)
    deliver(api, case_id)
    sessions = f"/api/v1/cases/{case_id}/sessions"
    api.clock.advance(days=1)
    api.post("coordinator", sessions, {"kind": "preparation", "completed_at": api.ago(hours=1)})
    api.clock.advance(days=1)
    assert dose(api, case_id)["deviations"] == []  # the clock moves on to its completion
    api.clock.advance(days=3)
    scores(api, case_id, days_ago=0, phq9=11, gad7=9, isi=14)
    api.clock.advance(days=1)
    return case_id


def new_case(api: Api, patient_ref: str) -> int:
    """A new case with a fixed reference, so that the screenshots do not depend on test order."""
    body = {"patient_ref": patient_ref, "patient_state": "CA"}
    return int(api.post("coordinator", "/api/v1/cases", body)["id"])


def scores(api: Api, case_id: int, days_ago: float, **scores: int) -> None:
    """A PHQ-9, GAD-7 and ISI taken ``days_ago``."""
    for instrument, score in scores.items():
        body = {"instrument": instrument, "score": score, "taken_at": api.ago(days=days_ago)}
        if instrument == "phq9":
            body["item9"] = 0  # required on a PHQ-9 (SPEC.md 4.2)
        api.post("coordinator", f"/api/v1/cases/{case_id}/assessments", body)


def sign_in(page: Page, server: Server, role: str = "coordinator") -> None:
    page.goto(f"{server.url}/app/login")
    page.get_by_label("Token").fill(server.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/app/worklist")


def test_a_coordinator_unblocks_an_overdue_case(page: Page, server: Server) -> None:
    case_id = overdue_integration(server)
    waiting = new_case(server.api, "PT-0112")
    record_evaluation(server.api, waiting)
    ref = server.api.get("admin", f"/api/v1/cases/{case_id}")["patient_ref"]

    sign_in(page, server)
    rows = page.locator("table.worklist tbody tr")
    first = rows.first
    expect(first).to_contain_text(ref)
    expect(first).to_contain_text("integration followup")
    expect(first.locator(".tag.late")).to_contain_text("overdue by 1d")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "worklist.png"), full_page=True)

    first.get_by_role("link", name=ref).click()
    expect(page).to_have_url(re.compile(rf"/app/cases/{case_id}$"))
    step = page.locator("#step-start_monitoring")
    expect(step).to_contain_text("Blocked because")
    expect(step).to_contain_text("integration session after the first dosing session")
    expect(step).not_to_contain_text("preparation session")

    # Firing while blocked is refused, and the page says why, next to the form.
    step.get_by_role("button", name="Fire start monitoring").click()
    expect(page.locator("#step-start_monitoring [role=alert]")).to_contain_text(
        "session.integration"
    )

    page.locator("#fact-session summary").click()
    page.locator("#fact-session-kind").select_option("integration")
    page.locator("#fact-session-form").get_by_role("button", name="Record").click()
    expect(page.get_by_role("status")).to_contain_text("Saved: session")
    step = page.locator("#step-start_monitoring")
    expect(step).to_contain_text("Every requirement is met")
    followup = page.locator("tr.reminder-row", has_text="integration followup")
    expect(followup).not_to_have_class(re.compile("status-pending"))

    step.get_by_role("button", name="Fire start monitoring").click()
    expect(page.locator("h1 .badge")).to_have_text("monitoring")
    expect(page.locator("ol.timeline li").first).to_contain_text("start_monitoring")
    page.screenshot(path=str(SCREENSHOTS / "case.png"), full_page=True)

    page.get_by_role("link", name="Worklist").first.click()
    expect(page.locator("table.worklist")).not_to_contain_text("integration followup")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/app/login")
    page.goto(f"{server.url}/app/cases/{case_id}")
    expect(page).to_have_url(f"{server.url}/app/login")


def test_the_docs_work_with_nothing_but_the_service(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("carepath")
    expect(page.locator(".opblock").first).to_be_visible()
