"""A thin test client that speaks as one role at a time, and a course of care in steps."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from fastapi.testclient import TestClient

ROLES = ("admin", "coordinator", "clinician")
_refs = itertools.count(1)


class ClockLike(Protocol):
    now: datetime

    def advance(self, **delta: float) -> datetime: ...


PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def case_url(case_id: int, suffix: str = "") -> str:
    return f"/api/v1/cases/{case_id}{suffix}"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of ``response``, checked for its status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"].endswith(code)
    return body


class Api:
    """Requests as a role (or with no token), asserting the status when told to."""

    def __init__(self, client: TestClient, tokens: dict[str, str], clock: ClockLike) -> None:
        self.client, self.tokens, self.clock = client, tokens, clock

    def headers(self, role: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(role, role)}"
        return headers

    def call(
        self,
        role: str | None,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        expect: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        response = self.client.request(
            method, path, json=json, headers=self.headers(role, headers), **kwargs
        )
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response

    def get(self, role: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return self.call(role, "GET", path, expect=expect, **kwargs).json()

    def post(self, role: str, path: str, json: Any = None, expect: int = 201, **kw: Any) -> Any:
        return self.call(role, "POST", path, json=json, expect=expect, **kw).json()

    def items(self, role: str, path: str, **kwargs: Any) -> list[Any]:
        """Every item of a paged list, following ``next_cursor`` to the last page."""
        found: list[Any] = []
        params = dict(kwargs.pop("params", {}))
        while True:
            page = self.get(role, path, params=params, **kwargs)
            found += page["items"]
            if page["next_cursor"] is None:
                return found
            params["cursor"] = page["next_cursor"]

    def fire(self, role: str, case_id: int, trigger: str, expect: int = 200, **body: Any) -> Any:
        path = case_url(case_id, f"/transitions/{trigger}")
        return self.post(role, path, body or None, expect=expect)

    def snapshot(self, case_id: int) -> tuple[int, int, str]:
        """The case's version, event count and state: what a refused request must not change."""
        case = self.get("admin", case_url(case_id))
        return (
            case["version"],
            len(self.items("admin", case_url(case_id, "/events"))),
            case["state"],
        )

    def ago(self, **delta: float) -> str:
        """An ISO timestamp ``delta`` before the API's clock."""
        return (self.clock.now - timedelta(**delta)).isoformat()


# -- a course of care, step by step ------------------------------------------

ELIGIBLE_HISTORY = {
    "insomnia_nights_per_week": 5,
    "insomnia_duration_months": 18,
    "diagnoses": ["depression", "anxiety"],
    "failed_antidepressant_trials": 3,
    "cbti_completed": True,
    "seeking_sleep_med_replacement": False,
    "substance_use_disorder_history": False,
    "uncontrolled_hypertension": False,
    "active_psychosis": False,
    "psychosis_or_mania_history": False,
    "severe_psychiatric_instability": False,
    "significant_breathing_problems": False,
    "sleep_apnea": False,
    "aneurysm_avm_or_ich": False,
    "recent_mi_or_stroke": False,
}
"""An eligible history as anyone may record it: ``insomnia_mood_driven`` is a clinician's."""
MOOD_DRIVEN = {"insomnia_mood_driven": True}
ELIGIBLE_PROFILE = {"date_of_birth": "1984-06-15", "pregnant": False, "breastfeeding": False}


def open_case(api: Api, role: str = "coordinator", state: str = "CA") -> int:
    """A new case for a new patient; its id."""
    body = {"patient_ref": f"P-{next(_refs):05d}", "patient_state": state}
    return api.post(role, "/api/v1/cases", body)["id"]


def record_patient(api: Api, case_id: int, role: str = "coordinator") -> None:
    """An eligible history (the clinician's judgement that the insomnia is mood-driven
    included), an adult's profile and a consent of the current version."""
    history = ELIGIBLE_HISTORY | MOOD_DRIVEN
    api.call("clinician", "PUT", case_url(case_id, "/history"), json=history, expect=200)
    api.call(role, "PUT", case_url(case_id, "/profile"), json=ELIGIBLE_PROFILE, expect=200)
    consent = {"version": "2026-1", "signed_at": api.ago(days=1), "method": "electronic"}
    api.post(role, case_url(case_id, "/consents"), consent)


def record_evaluation(api: Api, case_id: int, role: str = "coordinator") -> None:
    """The patient's record, baseline PHQ-9, GAD-7 and ISI, and a blood pressure."""
    record_patient(api, case_id, role)
    for instrument, score in (("phq9", 16), ("gad7", 12), ("isi", 20)):
        body = {"instrument": instrument, "score": score, "taken_at": api.ago(days=1)}
        api.post(role, case_url(case_id, "/assessments"), with_item9(body))
    vital = {"systolic": 128, "diastolic": 82, "heart_rate": 70, "taken_at": api.ago(hours=2)}
    api.post(role, case_url(case_id, "/vitals"), vital)


def with_item9(body: dict[str, Any], item9: int = 0) -> dict[str, Any]:
    """``body`` with ``item9`` when it is a PHQ-9 (which requires it, SPEC.md 4.2)."""
    return {**body, "item9": item9} if body.get("instrument") == "phq9" else body


def screen(api: Api, case_id: int) -> dict[str, Any]:
    return api.post("clinician", case_url(case_id, "/interaction-screenings"), {})


def approve(api: Api, case_id: int) -> None:
    record_evaluation(api, case_id)
    screen(api, case_id)
    api.fire("clinician", case_id, "approve")


PRESCRIPTION = {
    "dose_mg": 100,
    "route": "sublingual",
    "formulation": "ketamine 100 mg sublingual troche",
    "units_per_dose": 1,
}


SHIPMENT = {"quantity_units": 8, "lot": "LOT-2026-A1", "carrier": "UPS", "tracking_number": "1Z999"}
"""``ship``'s body: the first dispense, 8 units (8 doses of ``units_per_dose`` 1)."""


def deliver(api: Api, case_id: int) -> None:
    """From awaiting prescription to integration, with an emergency contact and a monitor."""
    api.fire("clinician", case_id, "prescribe", **PRESCRIPTION)
    api.fire("coordinator", case_id, "ship", **SHIPMENT)
    api.fire("coordinator", case_id, "confirm_delivery")
    people(api, case_id)


def people(api: Api, case_id: int) -> int:
    """An emergency contact and a treatment monitor for the case; the monitor's id."""
    contact = {"name": "Sam Rivera", "relationship": "spouse", "phone": "555-0100"}
    api.post("coordinator", case_url(case_id, "/emergency-contacts"), contact)
    monitor = {
        "name": "Alex Rivera",
        "relationship": "sibling",
        "phone": "555-0101",
        "adult_attested": True,
        "trained_on": api.ago(days=3)[:10],
    }
    return api.post("coordinator", case_url(case_id, "/monitors"), monitor)["id"]


def monitor_id(api: Api, case_id: int) -> int:
    """The case's first treatment monitor."""
    return api.items("admin", case_url(case_id, "/monitors"))[0]["id"]


def clearance(api: Api, case_id: int, role: str = "coordinator", **reading: Any) -> dict[str, Any]:
    body = {"systolic": 118, "diastolic": 76, "monitor_id": monitor_id(api, case_id), **reading}
    return api.post(role, case_url(case_id, "/dose-clearances"), body)


def dose_record(api: Api, case_id: int, cleared: dict[str, Any], **overrides: Any) -> dict:
    """A clean dose record for ``cleared``: dosed 15 minutes after the clearance, a post-dose
    reading 30 minutes later, completed 2 hours 15 minutes after the dose; the clock moves on
    to the completion."""
    cleared_at = datetime.fromisoformat(cleared["created_at"])
    dosed_at = cleared_at + timedelta(minutes=15)
    body = {
        "kind": "dosing",
        "clearance_id": cleared["id"],
        "dosed_at": dosed_at.isoformat(),
        "dose_mg": 100,
        "units_taken": 1,
        "monitor_id": cleared["monitor_id"],
        "post_systolic": 124,
        "post_diastolic": 80,
        "post_taken_at": (dosed_at + timedelta(minutes=30)).isoformat(),
        "completed_at": (dosed_at + timedelta(hours=2, minutes=15)).isoformat(),
        **overrides,
    }
    api.clock.now = max(api.clock.now, datetime.fromisoformat(body["completed_at"]))
    return body


def dose(api: Api, case_id: int, **overrides: Any) -> dict[str, Any]:
    """A clearance granted now and the clean dose that used it."""
    cleared = clearance(api, case_id)
    assert cleared["granted"], cleared
    body = dose_record(api, case_id, cleared, **overrides)
    return api.post("coordinator", case_url(case_id, "/sessions"), body)


def complete_sessions(api: Api, case_id: int) -> None:
    """Preparation, a cleared dose, then integration, a day apart."""
    sessions = case_url(case_id, "/sessions")
    api.clock.advance(days=1)
    api.post("coordinator", sessions, {"kind": "preparation", "completed_at": api.ago(hours=1)})
    api.clock.advance(days=1)
    assert dose(api, case_id)["deviations"] == []
    api.clock.advance(days=1)
    api.post("coordinator", sessions, {"kind": "integration", "completed_at": api.ago(hours=1)})


def case_in(api: Api, state: str) -> int:
    """A new case driven to ``state`` (evaluation, integration or monitoring)."""
    case_id = open_case(api)
    if state == "evaluation":
        return case_id
    approve(api, case_id)
    deliver(api, case_id)
    if state == "monitoring":
        complete_sessions(api, case_id)
        api.fire("coordinator", case_id, "start_monitoring")
    return case_id
