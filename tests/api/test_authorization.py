"""The authorization matrix: every route, with no token, a wrong token and each role.

Expected roles are written out from the tables of SPEC.md sections 1 and 2,
not read from the workflow's tables, so that a wrong table entry fails here.
An admin manages users and reads everything, and makes no write to a case:
every fact and every trigger is a 403 for an admin.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import routing

from api.main import create_app
from tests.api.helpers import (
    ELIGIBLE_HISTORY,
    ELIGIBLE_PROFILE,
    Api,
    case_in,
    case_url,
    clearance,
    open_case,
)

EVERYONE = ("admin", "coordinator", "clinician")
STAFF = ("coordinator", "clinician")
CLINICIANS = ("clinician",)
ADMINS = ("admin",)
PUBLIC = {("GET", "/health"), ("GET", "/docs")}
PAGES = "/app"
"""The web pages sign in with a session cookie, not a token: tests/api/test_pages.py."""
_names = itertools.count(1)

Request = tuple[str, Any]
"""The concrete path to call, and its JSON body (or None)."""


@dataclass(frozen=True)
class Cell:
    allowed: tuple[str, ...]
    success: int
    make: Callable[[Api], Request]


def _case(api: Api, suffix: str = "", body: Any = None) -> Request:
    return case_url(open_case(api), suffix), body


def _with(api: Api, suffix: str, body: Any) -> tuple[int, dict]:
    """A new case with one record posted by a clinician; the case id and the record."""
    case_id = open_case(api)
    return case_id, api.post("clinician", case_url(case_id, suffix), body)


def _history(api: Api) -> Request:
    case_id = open_case(api)
    api.call("coordinator", "PUT", case_url(case_id, "/history"), json=ELIGIBLE_HISTORY, expect=200)
    return case_url(case_id, "/history"), None


def _profile(api: Api) -> Request:
    case_id = open_case(api)
    api.call("coordinator", "PUT", case_url(case_id, "/profile"), json=ELIGIBLE_PROFILE, expect=200)
    return case_url(case_id, "/profile"), None


def _medication(api: Api, name: str = "sertraline") -> tuple[int, dict]:
    return _with(api, "/medications", {"name": name})


def _patch_medication(api: Api) -> Request:
    case_id, med = _medication(api)
    return case_url(case_id, f"/medications/{med['id']}"), {"status": "stopped"}


def _acknowledge(api: Api) -> Request:
    """A new case's evaluation reminder: a coordinator's, which any clinician may acknowledge."""
    (reminder,) = api.items("admin", case_url(open_case(api), "/reminders"))
    return f"/api/v1/reminders/{reminder['id']}/acknowledge", None


def _plan_taper(api: Api) -> Request:
    case_id, med = _medication(api, "lorazepam")
    return case_url(case_id, "/tapers"), {"medication_id": med["id"], "plan": "Slowly."}


def _confirm_taper(api: Api) -> Request:
    path, body = _plan_taper(api)
    taper = api.post("clinician", path, body)
    return f"{path}/{taper['id']}/confirm", {"last_dose_on": api.ago()[:10]}


def _session(api: Api) -> Request:
    body = {"kind": "preparation", "completed_at": api.ago(hours=1)}
    return case_url(case_in(api, "integration"), "/sessions"), body


CONTACT = {"name": "Sam Rivera", "relationship": "spouse", "phone": "555-0100"}


def _monitor_body(api: Api) -> dict[str, Any]:
    return {**CONTACT, "adult_attested": True, "trained_on": api.ago(days=3)[:10]}


def _patch_monitor(api: Api) -> Request:
    case_id, monitor = _with(api, "/monitors", _monitor_body(api))
    return case_url(case_id, f"/monitors/{monitor['id']}"), {"active": False}


def _cancel(api: Api) -> Request:
    """A new open clearance to cancel, on a case ready to dose."""
    case_id = case_in(api, "integration")
    sessions = case_url(case_id, "/sessions")
    api.post("coordinator", sessions, {"kind": "preparation", "completed_at": api.ago(hours=1)})
    cleared = clearance(api, case_id)
    assert cleared["granted"], cleared
    path = case_url(case_id, f"/dose-clearances/{cleared['id']}/cancel")
    return path, {"reason": "The dose was not taken."}


WITNESSED = {"kind": "returned", "witness": "Sam Rivera"}


def _refillable(api: Api) -> int:
    """A case in integration with every requirement of a refill met: 3 of its 8 units left,
    which is ``units_per_dose`` (1) + ``refill_grace_units`` (2)."""
    case_id = case_in(api, "integration")
    api.post("coordinator", case_url(case_id, "/medication-returns"), {"units": 5, **WITNESSED})
    return case_id


REFILL = {"quantity_units": 8, "lot": "LOT-2026-B2"}


def _receipt(api: Api) -> Request:
    """A refill dispensed and not yet received."""
    case_id = _refillable(api)
    dispense = api.post("clinician", case_url(case_id, "/dispenses"), REFILL)
    return case_url(case_id, f"/dispenses/{dispense['id']}/receipt"), {"received_at": api.ago()}


def _return(api: Api) -> Request:
    """One of the 8 units at home of a case in integration, returned before a witness."""
    return case_url(case_in(api, "integration"), "/medication-returns"), {"units": 1, **WITNESSED}


def _resolve(api: Api) -> Request:
    event = {"kind": "nausea", "severity": "mild", "description": "Mild."}
    case_id, record = _with(api, "/adverse-events", event)
    return case_url(case_id, f"/adverse-events/{record['id']}/resolve"), {"note": "Gone."}


def _assignment(api: Api) -> Request:
    coordinator = api.get("coordinator", "/api/v1/users/me")
    return case_url(open_case(api), "/assignment"), {"coordinator_id": coordinator["id"]}


def _safety_plan(api: Api) -> dict[str, Any]:
    return {
        "plan": "Crisis line; means locked away.",
        "reviewed_with_patient_at": api.ago(hours=1),
        "risk_level": "low",
        "means_secured": True,
    }


def _new_user(api: Api, suffix: str = "", body: Any = None) -> Request:
    """A fresh coordinator to change, so that no caller of the matrix is touched."""
    user = {"name": f"u{next(_names)}", "role": "coordinator"}
    return f"/api/v1/users/{api.post('admin', '/api/v1/users', user)['id']}{suffix}", body


USER = "/api/v1/users/{user_id}"
CASE = "/api/v1/cases/{case_id}"
VITAL = {"systolic": 120, "diastolic": 80}
MATRIX: dict[tuple[str, str], Cell] = {
    ("POST", "/api/v1/users"): Cell(
        ADMINS, 201, lambda api: ("/api/v1/users", {"name": f"u{next(_names)}", "role": "admin"})
    ),
    ("GET", "/api/v1/users"): Cell(ADMINS, 200, lambda api: ("/api/v1/users", None)),
    ("GET", "/metrics"): Cell(ADMINS, 200, lambda api: ("/metrics", None)),
    ("GET", "/api/v1/users/me"): Cell(EVERYONE, 200, lambda api: ("/api/v1/users/me", None)),
    ("GET", USER): Cell(ADMINS, 200, lambda api: _new_user(api)),
    ("PATCH", USER): Cell(ADMINS, 200, lambda api: _new_user(api, "", {"licenses": []})),
    ("POST", USER + "/deactivate"): Cell(ADMINS, 200, lambda api: _new_user(api, "/deactivate")),
    ("POST", USER + "/reactivate"): Cell(ADMINS, 200, lambda api: _new_user(api, "/reactivate")),
    ("POST", USER + "/token"): Cell(ADMINS, 200, lambda api: _new_user(api, "/token")),
    ("GET", USER + "/events"): Cell(ADMINS, 200, lambda api: _new_user(api, "/events")),
    ("POST", "/api/v1/cases"): Cell(
        STAFF,
        201,
        lambda api: ("/api/v1/cases", {"patient_ref": f"M-{next(_names)}", "patient_state": "NY"}),
    ),
    ("GET", "/api/v1/cases"): Cell(EVERYONE, 200, lambda api: ("/api/v1/cases", None)),
    ("GET", CASE): Cell(EVERYONE, 200, lambda api: _case(api)),
    ("PATCH", CASE): Cell(CLINICIANS, 200, lambda api: _case(api, "", {"patient_state": "NY"})),
    ("POST", CASE + "/assignment"): Cell(STAFF, 200, _assignment),
    ("GET", CASE + "/transitions"): Cell(EVERYONE, 200, lambda api: _case(api, "/transitions")),
    ("POST", CASE + "/transitions/{trigger}"): Cell(
        STAFF, 200, lambda api: _case(api, "/transitions/hold", {"reason": "Away."})
    ),
    ("PUT", CASE + "/history"): Cell(
        STAFF, 200, lambda api: _case(api, "/history", ELIGIBLE_HISTORY)
    ),
    ("GET", CASE + "/history"): Cell(EVERYONE, 200, _history),
    ("PUT", CASE + "/profile"): Cell(
        STAFF, 200, lambda api: _case(api, "/profile", ELIGIBLE_PROFILE)
    ),
    ("GET", CASE + "/profile"): Cell(EVERYONE, 200, _profile),
    ("POST", CASE + "/consents"): Cell(
        STAFF,
        201,
        lambda api: _case(
            api,
            "/consents",
            {"version": "2026-1", "signed_at": api.ago(hours=1), "method": "paper"},
        ),
    ),
    ("GET", CASE + "/consents"): Cell(EVERYONE, 200, lambda api: _case(api, "/consents")),
    ("POST", CASE + "/assessments"): Cell(
        STAFF,
        201,
        lambda api: _case(
            api, "/assessments", {"instrument": "isi", "score": 9, "taken_at": api.ago(hours=1)}
        ),
    ),
    ("GET", CASE + "/assessments"): Cell(EVERYONE, 200, lambda api: _case(api, "/assessments")),
    ("POST", CASE + "/vitals"): Cell(
        STAFF, 201, lambda api: _case(api, "/vitals", {**VITAL, "taken_at": api.ago(hours=1)})
    ),
    ("GET", CASE + "/vitals"): Cell(EVERYONE, 200, lambda api: _case(api, "/vitals")),
    ("POST", CASE + "/medications"): Cell(
        STAFF, 201, lambda api: _case(api, "/medications", {"name": "sertraline"})
    ),
    ("GET", CASE + "/medications"): Cell(EVERYONE, 200, lambda api: _case(api, "/medications")),
    ("PATCH", CASE + "/medications/{medication_id}"): Cell(STAFF, 200, _patch_medication),
    ("POST", CASE + "/interaction-screenings"): Cell(
        CLINICIANS, 201, lambda api: _case(api, "/interaction-screenings", {"notes": "Checked."})
    ),
    ("GET", CASE + "/interaction-screenings"): Cell(
        EVERYONE, 200, lambda api: _case(api, "/interaction-screenings")
    ),
    ("POST", CASE + "/tapers"): Cell(CLINICIANS, 201, _plan_taper),
    ("GET", CASE + "/tapers"): Cell(EVERYONE, 200, lambda api: _case(api, "/tapers")),
    ("POST", CASE + "/tapers/{taper_id}/confirm"): Cell(CLINICIANS, 200, _confirm_taper),
    ("POST", CASE + "/dose-clearances"): Cell(
        STAFF,
        201,
        lambda api: _case(api, "/dose-clearances", {**VITAL, "monitor_id": 1}),
    ),
    ("POST", CASE + "/dose-clearances/{clearance_id}/cancel"): Cell(STAFF, 200, _cancel),
    ("POST", CASE + "/emergency-contacts"): Cell(
        STAFF, 201, lambda api: _case(api, "/emergency-contacts", CONTACT)
    ),
    ("GET", CASE + "/emergency-contacts"): Cell(
        EVERYONE, 200, lambda api: _case(api, "/emergency-contacts")
    ),
    ("POST", CASE + "/monitors"): Cell(
        STAFF, 201, lambda api: _case(api, "/monitors", _monitor_body(api))
    ),
    ("GET", CASE + "/monitors"): Cell(EVERYONE, 200, lambda api: _case(api, "/monitors")),
    ("PATCH", CASE + "/monitors/{monitor_id}"): Cell(STAFF, 200, _patch_monitor),
    ("GET", CASE + "/dose-clearances"): Cell(
        EVERYONE, 200, lambda api: _case(api, "/dose-clearances")
    ),
    ("POST", CASE + "/sessions"): Cell(STAFF, 201, _session),
    ("GET", CASE + "/sessions"): Cell(EVERYONE, 200, lambda api: _case(api, "/sessions")),
    ("POST", CASE + "/dispenses"): Cell(
        CLINICIANS, 201, lambda api: (case_url(_refillable(api), "/dispenses"), REFILL)
    ),
    ("GET", CASE + "/dispenses"): Cell(EVERYONE, 200, lambda api: _case(api, "/dispenses")),
    ("POST", CASE + "/dispenses/{dispense_id}/receipt"): Cell(STAFF, 200, _receipt),
    ("POST", CASE + "/medication-counts"): Cell(
        STAFF,
        201,
        lambda api: _case(
            api, "/medication-counts", {"units_counted": 0, "counted_at": api.ago(minutes=5)}
        ),
    ),
    ("GET", CASE + "/medication-counts"): Cell(
        EVERYONE, 200, lambda api: _case(api, "/medication-counts")
    ),
    ("POST", CASE + "/medication-returns"): Cell(STAFF, 201, _return),
    ("GET", CASE + "/medication-returns"): Cell(
        EVERYONE, 200, lambda api: _case(api, "/medication-returns")
    ),
    ("POST", CASE + "/adverse-events"): Cell(
        STAFF,
        201,
        lambda api: _case(
            api, "/adverse-events", {"kind": "nausea", "severity": "mild", "description": "Mild."}
        ),
    ),
    ("GET", CASE + "/adverse-events"): Cell(
        EVERYONE, 200, lambda api: _case(api, "/adverse-events")
    ),
    ("POST", CASE + "/adverse-events/{event_id}/resolve"): Cell(CLINICIANS, 200, _resolve),
    ("POST", CASE + "/safety-plans"): Cell(
        CLINICIANS,
        201,
        lambda api: _case(api, "/safety-plans", _safety_plan(api)),
    ),
    ("GET", CASE + "/safety-plans"): Cell(EVERYONE, 200, lambda api: _case(api, "/safety-plans")),
    ("GET", CASE + "/events"): Cell(EVERYONE, 200, lambda api: _case(api, "/events")),
    ("GET", CASE + "/events/verify"): Cell(EVERYONE, 200, lambda api: _case(api, "/events/verify")),
    ("GET", CASE + "/reminders"): Cell(EVERYONE, 200, lambda api: _case(api, "/reminders")),
    ("GET", CASE + "/outcomes"): Cell(EVERYONE, 200, lambda api: _case(api, "/outcomes")),
    ("GET", CASE + "/fhir"): Cell(EVERYONE, 200, lambda api: _case(api, "/fhir")),
    ("GET", "/api/v1/reports/outcomes"): Cell(
        EVERYONE, 200, lambda api: ("/api/v1/reports/outcomes", None)
    ),
    ("GET", "/api/v1/reports/outcomes.svg"): Cell(
        EVERYONE, 200, lambda api: ("/api/v1/reports/outcomes.svg", None)
    ),
    ("GET", "/api/v1/reminders"): Cell(EVERYONE, 200, lambda api: ("/api/v1/reminders", None)),
    ("POST", "/api/v1/reminders/{reminder_id}/acknowledge"): Cell(
        ("coordinator", "clinician"), 200, _acknowledge
    ),
    ("GET", "/api/v1/worklist"): Cell(EVERYONE, 200, lambda api: ("/api/v1/worklist", None)),
    ("GET", "/api/v1/workflow"): Cell(EVERYONE, 200, lambda api: ("/api/v1/workflow", None)),
    ("GET", "/api/v1/workflow/diagram"): Cell(
        EVERYONE, 200, lambda api: ("/api/v1/workflow/diagram", None)
    ),
}

# SPEC.md section 2: who may fire each trigger (an admin may fire none).
TRIGGER_ROLES = {
    "approve": ("clinician",),
    "decline": ("clinician",),
    "prescribe": ("clinician",),
    "ship": ("coordinator", "clinician"),
    "confirm_delivery": ("coordinator", "clinician"),
    "start_monitoring": ("coordinator", "clinician"),
    "adjust_dose": ("clinician",),
    "discharge": ("clinician",),
    "hold": ("coordinator", "clinician"),
    "resume": ("clinician",),
    "withdraw": ("coordinator", "clinician"),
}


def app_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app serves through FastAPI's routing, /health included."""
    routes = create_app().routes
    found: set[tuple[str, str]] = set()
    for route in routing.iter_route_contexts(routes):
        api_route = isinstance(route.original_route, routing.APIRoute)
        if api_route and not str(route.path).startswith(PAGES):
            found |= {(method, str(route.path)) for method in route.methods or ()}
    return found


def test_the_matrix_covers_every_route():
    assert set(MATRIX) | PUBLIC == app_routes()


def test_health_needs_no_token(api: Api):
    assert api.call(None, "GET", "/health", expect=200).json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "template"), sorted(MATRIX))
def test_route_answers_each_caller_as_the_spec_says(api: Api, method, template):
    cell = MATRIX[(method, template)]
    wrong = []
    for caller in (None, "wrong-token", *EVERYONE):
        path, body = cell.make(api)
        if caller is None or caller == "wrong-token":
            expected = 401
        else:
            expected = cell.success if caller in cell.allowed else 403
        response = api.call(caller, method, path, json=body)
        if response.status_code != expected:
            wrong.append(f"{caller}: {response.status_code} (wanted {expected}) {response.text}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("trigger", sorted(TRIGGER_ROLES))
def test_trigger_roles_are_the_spec_s(api: Api, trigger):
    case_id = open_case(api)
    for role in EVERYONE:
        response = api.call(role, "POST", case_url(case_id, f"/transitions/{trigger}"))
        may = role in TRIGGER_ROLES[trigger]
        assert (response.status_code != 403) == may, (role, response.text)
    assert api.get("admin", case_url(case_id))["version"] == 1


def test_an_admin_is_refused_every_write_to_a_case():
    """SPEC.md section 1: facts, assignment and triggers are all 403 for an admin."""
    writes = {(m, p) for m, p in app_routes() if m != "GET" and p.startswith("/api/v1/cases")}
    assert len(writes) >= 14 and writes <= set(MATRIX)
    assert [key for key in writes if "admin" in MATRIX[key].allowed] == []
    assert all("admin" not in roles for roles in TRIGGER_ROLES.values())
