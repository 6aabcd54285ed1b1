"""The dose clearance (SPEC.md 3.3, 4.4): every requirement alone, its boundaries, open ones.

The scenarios are checked against ``CLEARANCE_REQUIREMENTS``: a code added to the
clearance (the patient record's ``ONGOING`` codes, say) fails here until it has
a scenario that leaves it, and it alone, unmet.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from models.db import session_scope
from models.facts import AdverseEvent, DoseClearance, History, Profile
from models.schemas import MedicationCreate
from models.settings import Settings
from tests.workflow.conftest import Clinic, body_for
from workflow import medications
from workflow.definition import CLEARANCE_REQUIREMENTS
from workflow.errors import Conflict, NotFound

TWO_HOURS = timedelta(hours=2)


def ready(clinic: Clinic) -> int:
    """A case in integration with all a first dose needs, and no dose yet."""
    case_id = clinic.case_in("integration", prepared=False)
    clinic.session(case_id, "preparation")
    return case_id


def codes(clearance: DoseClearance) -> list[str]:
    return [u["code"] for u in clearance.unmet]


# -- each requirement alone --------------------------------------------------------------

Setup = Callable[[Clinic], tuple[int, dict[str, Any]]]
"""Brings a case to where one requirement fails: the case, and the clearance's arguments."""


def after(change: Callable[[Clinic, int], Any], **request: Any) -> Setup:
    def setup(clinic: Clinic) -> tuple[int, dict[str, Any]]:
        case_id = ready(clinic)
        change(clinic, case_id)
        return case_id, request

    return setup


def held(clinic: Clinic, case_id: int) -> None:
    clinic.fire(case_id, "hold")


def without_preparation(clinic: Clinic) -> tuple[int, dict[str, Any]]:
    return clinic.case_in("integration", prepared=False), {}


def without_emergency_contact(clinic: Clinic) -> tuple[int, dict[str, Any]]:
    case_id = clinic.case_in("delivery.shipped")
    clinic.fire(case_id, "confirm_delivery")
    clinic.monitor(case_id)
    clinic.session(case_id, "preparation")
    return case_id, {}


def another_cases_monitor(clinic: Clinic) -> tuple[int, dict[str, Any]]:
    other = clinic.case_in("integration", prepared=False)
    return ready(clinic), {"monitor_id": clinic.monitors[other]}


def inactive_monitor(clinic: Clinic, case_id: int) -> None:
    clinic.set_monitor_active(case_id, clinic.monitors[case_id], False)


def dosed_71_hours_ago(clinic: Clinic, case_id: int) -> None:
    dose = clinic.dose(case_id)
    clinic.now = dose.dosed_at + timedelta(hours=71)


def open_clearance(clinic: Clinic, case_id: int) -> None:
    assert clinic.clearance(case_id).granted
    clinic.tick(hours=3)


def two_doses_this_week(clinic: Clinic, case_id: int) -> None:
    """Doses 73 hours apart: the interval is kept, the weekly limit is reached."""
    dose = clinic.dose(case_id)
    clinic.now = dose.dosed_at + timedelta(hours=73)
    dose = clinic.dose(case_id)
    clinic.now = dose.dosed_at + timedelta(hours=73)


def open_event(clinic: Clinic, case_id: int) -> None:
    clinic.adverse_event(case_id, "nausea", "mild")


def fifteen_days_on(clinic: Clinic, case_id: int) -> None:
    clinic.tick(days=15)


def add_and_screen(name: str) -> Callable[[Clinic, int], None]:
    def change(clinic: Clinic, case_id: int) -> None:
        clinic.add_med(case_id, name)
        clinic.screen(case_id)

    return change


def stopped_benzodiazepine_never_tapered(clinic: Clinic, case_id: int) -> None:
    """Stopped long ago (its washout is over), never confirmed tapered."""
    data = MedicationCreate(
        name="Xanax", status="stopped", stopped_on=clinic.now.date() - timedelta(days=30)
    )
    clinic.call(medications.add_medication, case_id=case_id, data=data, actor=clinic.clinician)
    clinic.screen(case_id)


def tapered_yesterday(clinic: Clinic, case_id: int) -> None:
    medication = clinic.add_med(case_id, "Xanax")
    # Added on an approved case: hypnotic_restarted (SPEC.md 4.6), reviewed and resolved.
    (restarted,) = clinic.rows(AdverseEvent, case_id)
    clinic.resolve(case_id, restarted.id)
    taper = clinic.plan_taper(case_id, medication.id)
    clinic.confirm_taper(case_id, taper.id)
    clinic.screen(case_id)


def on_file(model: Any, **values: Any) -> Callable[[Clinic, int], None]:
    """The record already says so, as if found before approval: a history or profile change
    on an approved case records a severe event that holds the case (SPEC.md 4.1), which
    would leave more than the one code unmet."""

    def change(clinic: Clinic, case_id: int) -> None:
        with session_scope(clinic.engine) as session:
            record = session.exec(select(model).where(model.case_id == case_id)).one()
            for name, value in values.items():
                setattr(record, name, value)

    return change


def under_age(clinic: Clinic, case_id: int) -> None:
    day = clinic.now.date()
    clinic.profile(case_id, date_of_birth=day.replace(year=day.year - 17))


def all_returned(clinic: Clinic, case_id: int) -> None:
    clinic.give_back(case_id, clinic.units(case_id))


def one_left_of_two_per_dose(clinic: Clinic, case_id: int) -> None:
    """The dose now takes two units (the same mg: not a raise), and one is left at home."""
    dose_mg = clinic.case(case_id).prescription["dose_mg"]
    body = body_for("adjust_dose", dose_mg=dose_mg, units_per_dose=2)
    clinic.fire(case_id, "adjust_dose", body=body)
    clinic.give_back(case_id, clinic.units(case_id) - 1, kind="disposed")


SCENARIOS: dict[str, list[tuple[str, Setup]]] = {
    "case.dosing_state": [("held from integration", after(held))],
    "session.preparation": [("no preparation session", without_preparation)],
    "adverse_events.resolved": [("an open mild event", after(open_event))],
    "assessments.recent": [("PHQ-9 and ISI 15 days old", after(fifteen_days_on))],
    "consent.signed": [
        (
            "a new consent version",
            after(lambda c, i: None, rules=Settings(consent_version="2027-1")),
        )
    ],
    "emergency_contact.recorded": [("no emergency contact", without_emergency_contact)],
    "monitor.registered": [
        ("a monitor that does not exist", after(lambda c, i: None, monitor_id=999)),
        ("another case's monitor", another_cases_monitor),
        ("an inactive monitor", after(inactive_monitor)),
    ],
    "dose.interval": [
        ("a dose 71 hours ago", after(dosed_71_hours_ago)),
        ("a clearance open 3 hours", after(open_clearance)),
    ],
    "dose.weekly_limit": [("two doses 73 hours apart", after(two_doses_this_week))],
    "units.on_hand": [
        ("every unit returned", after(all_returned)),
        ("one unit left, two per dose", after(one_left_of_two_per_dose)),
    ],
    "dose.blood_pressure": [
        ("140/89", after(lambda c, i: None, systolic=140, diastolic=89)),
        ("139/90", after(lambda c, i: None, systolic=139, diastolic=90)),
    ],
    "medications.classified": [("an unknown name", after(add_and_screen("Frobnitol 5 mg")))],
    "screening.interactions": [
        ("a medication added since", after(lambda c, i: c.add_med(i, "sertraline"))),
    ],
    "taper.confirmed": [
        ("a benzodiazepine stopped, never tapered", after(stopped_benzodiazepine_never_tapered))
    ],
    "taper.washout": [("a taper's last dose yesterday", after(tapered_yesterday))],
    "criteria.adult": [("17 years old", after(under_age))],
    "contraindication.substance_use": [
        ("substance use disorder", after(on_file(History, substance_use_disorder_history=True)))
    ],
    "contraindication.hypertension": [
        ("uncontrolled hypertension", after(on_file(History, uncontrolled_hypertension=True)))
    ],
    "contraindication.psychosis": [
        ("active psychosis", after(on_file(History, active_psychosis=True))),
        ("a history of mania", after(on_file(History, psychosis_or_mania_history=True))),
    ],
    "contraindication.respiratory": [("sleep apnea", after(on_file(History, sleep_apnea=True)))],
    "contraindication.cardiovascular": [
        ("a stroke this year", after(on_file(History, recent_mi_or_stroke=True)))
    ],
    "contraindication.pregnancy": [("pregnant", after(on_file(Profile, pregnant=True)))],
}
CASES = [(code, name, setup) for code in CLEARANCE_REQUIREMENTS for name, setup in SCENARIOS[code]]


def test_every_requirement_of_the_clearance_has_a_scenario():
    assert sorted(SCENARIOS) == sorted(CLEARANCE_REQUIREMENTS)
    assert len(CLEARANCE_REQUIREMENTS) == len(set(CLEARANCE_REQUIREMENTS))


def test_a_ready_case_is_cleared(clinic):
    clearance = clinic.clearance(ready(clinic))
    assert (clearance.granted, clearance.unmet, clearance.open) == (True, [], True)


@pytest.mark.parametrize(("code", "setup"), [c[::2] for c in CASES], ids=[c[1] for c in CASES])
def test_one_unmet_requirement_refuses_the_clearance_alone(clinic, code, setup):
    case_id, request = setup(clinic)
    version = clinic.case(case_id).version

    clearance = clinic.clearance(case_id, **request)

    assert codes(clearance) == [code]
    assert clearance.unmet[0]["message"].strip()
    assert (clearance.granted, clearance.open, clearance.expires_at) == (False, False, None)
    assert clinic.case(case_id).version == version + 1  # stored, and nothing else


# -- what a clearance is -----------------------------------------------------------------


@pytest.mark.parametrize("state", ["integration", "monitoring"])
def test_a_clearance_is_granted_in_a_dosing_state_for_two_hours(clinic, case_in, state):
    case_id = case_in(state)
    clinic.tick(hours=72)

    clearance = clinic.clearance(case_id, 139, 89)

    assert (clearance.granted, clearance.unmet, clearance.open) == (True, [], True)
    assert clearance.expires_at == clinic.now + TWO_HOURS
    assert (clearance.recorded_by, clearance.monitor_id) == (
        clinic.coordinator.id,
        clinic.monitors[case_id],
    )


@pytest.mark.parametrize("state", ["evaluation", "delivery.awaiting_prescription"])
def test_a_clearance_before_delivery_names_the_state_first(clinic, case_in, state):
    clearance = clinic.clearance(case_in(state))
    assert codes(clearance)[0] == "case.dosing_state"
    assert not clearance.granted


def test_a_refused_clearance_lists_every_reason_in_table_order(clinic):
    case_id = ready(clinic)
    clinic.adverse_event(case_id, "nausea", "mild")
    clinic.add_med(case_id, "sertraline")

    clearance = clinic.clearance(case_id, 150, 95, monitor_id=999)

    assert codes(clearance) == [
        "adverse_events.resolved",
        "monitor.registered",
        "dose.blood_pressure",
        "screening.interactions",
    ]
    assert all(u["message"] for u in clearance.unmet)
    assert clinic.rows(DoseClearance, case_id)[-1].id == clearance.id


def test_the_limits_and_the_window_come_from_the_rules(clinic):
    case_id = ready(clinic)
    rules = Settings(bp_limit_systolic=150, bp_limit_diastolic=95, clearance_valid_minutes=30)

    assert not clinic.clearance(case_id, 145, 92).granted
    clearance = clinic.clearance(case_id, 145, 92, rules=rules)

    assert clearance.granted
    assert clearance.expires_at == clinic.now + timedelta(minutes=30)


@pytest.mark.parametrize("reading", [(180, 100), (150, 110)])
def test_a_pre_dose_reading_at_the_crisis_limit_is_a_severe_event_that_holds(clinic, reading):
    case_id = ready(clinic)

    clearance = clinic.clearance(case_id, *reading)

    assert not clearance.granted
    (recorded,) = clinic.rows(AdverseEvent, case_id)
    assert (recorded.kind, recorded.severity, recorded.recorded_by_system) == (
        "blood_pressure_increase",
        "severe",
        True,
    )
    assert f"#{clearance.id}" in recorded.description
    assert clinic.case(case_id).state == "on_hold"


def test_a_pre_dose_reading_below_the_crisis_limit_records_no_event(clinic):
    case_id = ready(clinic)
    clinic.clearance(case_id, 179, 109)
    assert clinic.rows(AdverseEvent, case_id) == []
    assert clinic.case(case_id).state == "integration"


# -- open clearances count as doses ---------------------------------------------------------


def test_an_open_clearance_refuses_a_second_until_it_is_cancelled(clinic):
    case_id = ready(clinic)
    first = clinic.clearance(case_id)

    second = clinic.clearance(case_id)
    cancelled = clinic.cancel(case_id, first.id)
    third = clinic.clearance(case_id)

    assert codes(second) == ["dose.interval"]
    assert (cancelled.open, cancelled.cancelled_by, cancelled.void) == (
        False,
        clinic.coordinator.id,
        False,
    )
    assert cancelled.cancel_reason
    assert third.granted


def test_an_expired_unused_clearance_stays_open_until_cancelled(clinic):
    case_id = ready(clinic)
    first = clinic.clearance(case_id)
    clinic.tick(hours=5)

    assert codes(clinic.clearance(case_id)) == ["dose.interval"]
    clinic.cancel(case_id, first.id)
    assert clinic.clearance(case_id).granted


def test_an_opioid_added_while_dosing_refuses_the_clearance_three_ways(clinic):
    """Recorded as an adverse event, still taken (no washout), and the screening is blocked."""
    case_id = ready(clinic)
    add_and_screen("oxycodone")(clinic, case_id)

    assert codes(clinic.clearance(case_id)) == [
        "adverse_events.resolved",
        "screening.interactions",
        "taper.washout",
    ]


def test_only_an_open_clearance_can_be_cancelled(clinic):
    case_id = ready(clinic)
    refused = clinic.clearance(case_id, 150, 95)
    dose = clinic.dose(case_id)
    before = clinic.snapshot(case_id)

    with pytest.raises(Conflict, match="not granted"):
        clinic.cancel(case_id, refused.id)
    with pytest.raises(Conflict, match="used it"):
        clinic.cancel(case_id, dose.clearance_id)
    with pytest.raises(NotFound):
        clinic.cancel(case_id, 999)
    assert clinic.snapshot(case_id) == before


def test_three_doses_in_a_day_are_refused(clinic):
    case_id = ready(clinic)
    clinic.dose(case_id)
    clinic.tick(hours=3)
    assert codes(clinic.clearance(case_id)) == ["dose.interval"]

    no_interval = Settings(min_hours_between_doses=0)
    clinic.dose(case_id, rules=no_interval)
    clinic.tick(hours=3)
    third = clinic.clearance(case_id, rules=no_interval)

    assert codes(third) == ["dose.weekly_limit"]


@pytest.mark.parametrize(("hours", "granted"), [(71.99, False), (72, False), (72.01, True)])
def test_the_interval_boundary(clinic, hours, granted):
    case_id = ready(clinic)
    dose = clinic.dose(case_id)
    clinic.now = dose.dosed_at + timedelta(hours=hours)

    clearance = clinic.clearance(case_id)

    assert clearance.granted is granted
    assert codes(clearance) == ([] if granted else ["dose.interval"])


@pytest.mark.parametrize(("hours", "granted"), [(168, False), (168.01, True)])
def test_the_weekly_window_boundary(clinic, hours, granted):
    """Doses at 0 and 84 hours; a third at 168 hours from the first counts both."""
    case_id = ready(clinic)
    first = clinic.dose(case_id)
    clinic.now = first.dosed_at + timedelta(hours=84)
    clinic.dose(case_id)
    clinic.now = first.dosed_at + timedelta(hours=hours)

    clearance = clinic.clearance(case_id)

    assert codes(clearance) == ([] if granted else ["dose.weekly_limit"])


def test_the_dose_limits_come_from_the_rules(clinic):
    case_id = ready(clinic)
    clinic.dose(case_id)
    clinic.tick(hours=1)
    relaxed = Settings(min_hours_between_doses=0, max_doses_per_window=3)

    assert codes(clinic.clearance(case_id)) == ["dose.interval"]
    assert clinic.clearance(case_id, rules=relaxed).granted
