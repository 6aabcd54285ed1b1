"""Pre-dose clearances and treatment sessions (SPEC.md section 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.facts import CareSession, DoseClearance
from models.settings import Settings
from workflow.errors import Conflict, ValidationFailed

TWO_HOURS = timedelta(hours=2)


@pytest.mark.parametrize("state", ["integration", "monitoring"])
def test_a_clearance_is_granted_in_a_dosing_state_for_two_hours(clinic, case_in, state):
    case_id = case_in(state)

    clearance = clinic.clearance(case_id, 139, 89)

    assert (clearance.granted, clearance.unmet) == (True, [])
    assert clearance.expires_at == clinic.now + TWO_HOURS
    assert clearance.recorded_by == clinic.coordinator.id


@pytest.mark.parametrize(
    "state", ["evaluation", "delivery.awaiting_prescription", "delivery.shipped", "on_hold"]
)
def test_a_clearance_is_refused_outside_integration_and_monitoring(clinic, case_in, state):
    case_id = case_in(state)

    clearance = clinic.clearance(case_id)

    assert not clearance.granted
    assert clearance.expires_at is None
    assert [u["code"] for u in clearance.unmet] == ["clearance.state"]


@pytest.mark.parametrize(
    ("reading", "granted"), [((139, 89), True), ((140, 89), False), ((139, 90), False)]
)
def test_the_pre_dose_blood_pressure_boundary(clinic, case_in, reading, granted):
    clearance = clinic.clearance(case_in("integration"), *reading)
    assert clearance.granted is granted
    assert [u["code"] for u in clearance.unmet] == ([] if granted else ["clearance.blood_pressure"])


def test_a_clearance_needs_a_monitor(clinic, case_in):
    clearance = clinic.clearance(case_in("integration"), monitor_present=False)
    assert [u["code"] for u in clearance.unmet] == ["clearance.monitor"]


def test_a_clearance_is_refused_with_an_open_adverse_event(clinic, case_in):
    case_id = case_in("integration")
    event = clinic.adverse_event(case_id, "dizziness", "mild")

    refused = clinic.clearance(case_id)
    clinic.resolve(case_id, event.id)
    granted = clinic.clearance(case_id)

    assert [u["code"] for u in refused.unmet] == ["adverse_events.resolved"]
    assert granted.granted


def test_a_clearance_is_refused_when_the_screening_is_stale(clinic, case_in):
    case_id = case_in("monitoring")
    clinic.add_med(case_id, "levothyroxine")

    refused = clinic.clearance(case_id)
    clinic.screen(case_id)
    granted = clinic.clearance(case_id)

    assert [u["code"] for u in refused.unmet] == ["screening.interactions"]
    assert granted.granted


def test_a_refused_clearance_lists_every_reason_and_is_still_recorded(clinic, case_in):
    case_id = case_in("integration")
    clinic.adverse_event(case_id, "nausea", "mild")
    clinic.add_med(case_id, "sertraline")
    before = clinic.case(case_id).version

    clearance = clinic.clearance(case_id, 150, 95, monitor_present=False)

    assert [u["code"] for u in clearance.unmet] == [
        "clearance.blood_pressure",
        "clearance.monitor",
        "adverse_events.resolved",
        "screening.interactions",
    ]
    assert all(u["message"] for u in clearance.unmet)
    assert clinic.rows(DoseClearance, case_id)[-1].id == clearance.id
    assert clinic.case(case_id).version == before + 1


def test_the_pre_dose_limits_and_window_come_from_the_rules(clinic, case_in):
    case_id = case_in("integration")
    rules = Settings(bp_limit_systolic=150, bp_limit_diastolic=95, clearance_valid_minutes=30)

    clearance = clinic.clearance(case_id, 145, 92, rules=rules)

    assert clearance.granted
    assert clearance.expires_at == clinic.now + timedelta(minutes=30)
    assert not clinic.clearance(case_id, 145, 92).granted


# -- sessions --------------------------------------------------------------------------


def test_a_dosing_session_uses_a_clearance_valid_at_completed_at(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    clearance = clinic.clearance(case_id)
    clinic.tick(hours=3)

    session = clinic.session(
        case_id, "dosing", completed_at=clearance.expires_at, clearance_id=clearance.id
    )

    assert (session.clearance_id, session.completed_at) == (clearance.id, clearance.expires_at)


def refused_session(clinic, case_id, **kwargs) -> str:
    before = clinic.snapshot(case_id)
    with pytest.raises(ValidationFailed) as refused:
        clinic.session(case_id, "dosing", **kwargs)
    assert refused.value.errors[0]["loc"] == ["body", "clearance_id"]
    assert clinic.snapshot(case_id) == before
    return refused.value.detail


def test_a_dosing_session_with_a_refused_clearance_is_refused(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    clearance = clinic.clearance(case_id, 150, 80)
    assert "was not granted" in refused_session(clinic, case_id, clearance_id=clearance.id)


def test_a_dosing_session_after_the_clearance_expired_is_refused(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    clearance = clinic.clearance(case_id)
    clinic.tick(hours=3)
    late = clearance.expires_at + timedelta(seconds=1)
    assert "not valid" in refused_session(
        clinic, case_id, clearance_id=clearance.id, completed_at=late
    )


def test_a_dosing_session_before_the_clearance_is_refused(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    clearance = clinic.clearance(case_id)
    early = clinic.now - timedelta(minutes=1)
    assert "not valid" in refused_session(
        clinic, case_id, clearance_id=clearance.id, completed_at=early
    )


def test_a_clearance_is_used_only_once(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    first = clinic.dose(case_id)
    clinic.tick(minutes=5)
    assert "already used" in refused_session(clinic, case_id, clearance_id=first.clearance_id)


def test_a_clearance_of_another_case_or_none_at_all_is_refused(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    other = case_in("integration", prepared=False)
    theirs = clinic.clearance(other)
    assert "No such dose clearance" in refused_session(clinic, case_id, clearance_id=theirs.id)
    assert "No such dose clearance" in refused_session(clinic, case_id, clearance_id=999)


@pytest.mark.parametrize("state", ["evaluation", "delivery.shipped", "on_hold", "discharged"])
def test_sessions_are_recorded_only_in_integration_or_monitoring(clinic, case_in, state):
    case_id = case_in(state)
    before = clinic.snapshot(case_id)
    with pytest.raises(Conflict):
        clinic.session(case_id, "preparation")
    assert clinic.snapshot(case_id) == before


def test_a_clearance_granted_before_a_hold_cannot_be_used_while_held(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    clearance = clinic.clearance(case_id)
    clinic.fire(case_id, "hold")
    with pytest.raises(Conflict):
        clinic.session(case_id, "dosing", clearance_id=clearance.id)


def test_a_non_dosing_session_keeps_no_clearance(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    clearance = clinic.clearance(case_id)

    session = clinic.session(case_id, "preparation", clearance_id=clearance.id)

    assert session.clearance_id is None
    assert clinic.rows(CareSession, case_id)[0].clearance_id is None
    assert clinic.session(case_id, "dosing", clearance_id=clearance.id).clearance_id == clearance.id
