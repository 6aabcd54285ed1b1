"""Emergency contacts and treatment monitors (SPEC.md 4.1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from models.facts import AdverseEvent, Monitor
from models.schemas import EmergencyContactCreate, MonitorCreate, VitalCreate
from workflow import records
from workflow.errors import Conflict, NotFound, ValidationFailed


def test_a_monitor_is_registered_active(clinic, case_in):
    case_id = case_in("evaluation")

    monitor = clinic.monitor(case_id)

    assert (monitor.active, monitor.adult_attested, monitor.recorded_by) == (
        True,
        True,
        clinic.coordinator.id,
    )
    assert clinic.rows(Monitor, case_id) == [monitor]


def test_a_monitor_must_be_attested_an_adult():
    with pytest.raises(ValidationError, match="adult"):
        MonitorCreate(
            name="Kim",
            relationship="child",
            phone="555-0102",
            adult_attested=False,
            trained_on="2026-11-01",
        )


@pytest.mark.parametrize(("days", "accepted"), [(0, True), (-1, False)])
def test_a_monitor_trained_in_the_future_is_refused(clinic, case_in, days, accepted):
    case_id = case_in("evaluation")
    trained_on = clinic.now.date() - timedelta(days=days)
    if accepted:
        assert clinic.monitor(case_id, trained_on=trained_on).trained_on == trained_on
        return
    before = clinic.snapshot(case_id)
    with pytest.raises(ValidationFailed) as refusal:
        clinic.monitor(case_id, trained_on=trained_on)
    assert refusal.value.errors[0]["loc"] == ["body", "trained_on"]
    assert clinic.snapshot(case_id) == before


def test_a_monitor_is_made_inactive_and_active_again(clinic, case_in):
    case_id = case_in("integration")
    monitor_id = clinic.monitors[case_id]

    inactive = clinic.set_monitor_active(case_id, monitor_id, False)
    active = clinic.set_monitor_active(case_id, monitor_id, True)

    assert (inactive.active, active.active) == (False, True)


def test_another_case_s_monitor_cannot_be_changed(clinic, case_in):
    case_id = case_in("integration")
    other = case_in("integration")
    with pytest.raises(NotFound):
        clinic.set_monitor_active(case_id, clinic.monitors[other], False)


@pytest.mark.parametrize("phone", ["call me", "", "5"])
def test_a_phone_number_is_digits_and_punctuation(phone):
    with pytest.raises(ValidationError):
        EmergencyContactCreate(name="Sam", relationship="spouse", phone=phone)


def test_contacts_and_monitors_are_not_recorded_on_a_closed_case(clinic, case_in):
    case_id = case_in("withdrawn")
    with pytest.raises(Conflict):
        clinic.emergency_contact(case_id)
    with pytest.raises(Conflict):
        clinic.monitor(case_id)


# -- blood pressure (SPEC.md 4.2) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "event"), [((180, 90), True), ((120, 110), True), ((179, 109), False)]
)
def test_a_reading_at_or_above_the_crisis_limit_is_a_severe_event(clinic, case_in, reading, event):
    case_id = case_in("integration")
    systolic, diastolic = reading
    data = VitalCreate(systolic=systolic, diastolic=diastolic, taken_at=clinic.now)

    clinic.call(records.record_vital, case_id=case_id, data=data, actor=clinic.coordinator)

    found = [(e.kind, e.severity) for e in clinic.rows(AdverseEvent, case_id)]
    assert found == ([("blood_pressure_increase", "severe")] if event else [])
    assert clinic.case(case_id).state == ("on_hold" if event else "integration")
