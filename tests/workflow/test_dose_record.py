"""The dose record (SPEC.md 4.4): a clean dose, each deviation alone at its boundary, the
post-dose blood pressure, and what a malformed record is (a 422 that stores nothing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from models.facts import AdverseEvent, CareSession, DoseClearance
from models.schemas import SessionCreate
from models.settings import Settings
from tests.workflow.conftest import Clinic
from workflow import dosing
from workflow.errors import Conflict, ValidationFailed
from workflow.guards import first_dosing_at

MINUTE = timedelta(minutes=1)
DEVIATIONS = (
    "clearance.absent",
    "clearance.void",
    "clearance.used",
    "clearance.not_valid_at_dose",
    "monitor.mismatch",
    "dose.above_prescription",
    "post_dose.missing",
    "post_dose.window",
    "recheck.missing",
    "observation.short",
)


def ready(clinic: Clinic) -> int:
    case_id = clinic.case_in("integration", prepared=False)
    clinic.session(case_id, "preparation")
    return case_id


def cleared(clinic: Clinic) -> tuple[int, DoseClearance]:
    case_id = ready(clinic)
    clearance = clinic.clearance(case_id)
    assert clearance.granted, clearance.unmet
    return case_id, clearance


def record(clinic: Clinic, case_id: int, clearance: DoseClearance | None, **overrides: Any):
    """A dose record for ``clearance`` (a clean one, but for ``overrides``), at its end."""
    cleared_at = clearance.created_at if clearance is not None else clinic.now
    fields = clinic.dosing_fields(case_id, cleared_at, **overrides)
    clinic.now = max([clinic.now, *(v for v in fields.values() if isinstance(v, datetime))])
    clearance_id = overrides.pop("clearance_id", clearance.id if clearance else None)
    fields["clearance_id"] = clearance_id
    return clinic.session(case_id, "dosing", **fields)


def events(clinic: Clinic, case_id: int) -> list[tuple[str, str, str]]:
    return [(e.kind, e.severity, e.description) for e in clinic.rows(AdverseEvent, case_id)]


# -- a clean dose ----------------------------------------------------------------------------


def test_a_dose_at_15_minutes_stable_at_2_hours_30_is_clean(clinic):
    case_id, clearance = cleared(clinic)

    dose = record(clinic, case_id, clearance)

    assert dose.deviations == []
    assert dose.dosed_at == clearance.created_at + 15 * MINUTE
    assert dose.completed_at == dose.dosed_at + timedelta(hours=2, minutes=15)
    assert events(clinic, case_id) == []
    (used,) = clinic.rows(DoseClearance, case_id)
    assert (used.open, used.void) == (False, False)


def test_the_dose_record_is_stored_whole(clinic):
    case_id, clearance = cleared(clinic)

    dose = record(clinic, case_id, clearance, units_taken=2, notes="Calm evening.")

    (stored,) = [s for s in clinic.rows(CareSession, case_id) if s.kind == "dosing"]
    assert stored.model_dump() == dose.model_dump()
    assert (stored.units_taken, stored.monitor_id, stored.clearance_id) == (
        2,
        clinic.monitors[case_id],
        clearance.id,
    )


# -- each deviation alone ------------------------------------------------------------------

Deviation = Callable[[Clinic, int, DoseClearance], dict[str, Any]]
"""Does what one deviation needs, and returns the dose record's overrides."""


def refused_clearance(clinic: Clinic, case_id: int, clearance: DoseClearance) -> dict:
    clinic.cancel(case_id, clearance.id)
    refused = clinic.clearance(case_id, 150, 95)
    return {"clearance_id": refused.id}


def voided_by_a_medication(clinic: Clinic, case_id: int, clearance: DoseClearance) -> dict:
    clinic.tick(minutes=5)
    clinic.add_med(case_id, "sertraline")
    return {"dosed_at": clinic.now + MINUTE}


def used_already(clinic: Clinic, case_id: int, clearance: DoseClearance) -> dict:
    record(clinic, case_id, clearance)
    return {}


def another_monitor(clinic: Clinic, case_id: int, clearance: DoseClearance) -> dict:
    return {"monitor_id": clinic.monitor(case_id, name="Jo Rivera").id}


def at(**delta: Any) -> Deviation:
    """Overrides relative to the dose at +15 minutes."""

    def overrides(clinic: Clinic, case_id: int, clearance: DoseClearance) -> dict:
        dosed_at = clearance.created_at + 15 * MINUTE
        return {name: dosed_at + offset for name, offset in delta.items()}

    return overrides


def fields(**values: Any) -> Deviation:
    return lambda clinic, case_id, clearance: dict(values)


def high_post_dose(recheck: timedelta | None) -> Deviation:
    """A post-dose reading at the dose limit (140/85), with a recheck ``recheck`` after it."""

    def overrides(clinic: Clinic, case_id: int, clearance: DoseClearance) -> dict:
        post = clearance.created_at + 45 * MINUTE
        values: dict[str, Any] = {"post_systolic": 140, "post_diastolic": 85, "post_taken_at": post}
        if recheck is not None:
            values |= {
                "recheck_systolic": 130,
                "recheck_diastolic": 80,
                "recheck_taken_at": post + recheck,
            }
        return values

    return overrides


NO_POST = {"post_systolic": None, "post_diastolic": None, "post_taken_at": None}
ALONE: list[tuple[str, str, Deviation]] = [
    ("clearance.absent", "no clearance", fields(clearance_id=None)),
    ("clearance.absent", "a refused clearance", refused_clearance),
    ("clearance.void", "voided by a medication before the dose", voided_by_a_medication),
    ("clearance.used", "already used by a dose", used_already),
    ("clearance.not_valid_at_dose", "dosed before the grant", at(dosed_at=-16 * MINUTE)),
    ("clearance.not_valid_at_dose", "dosed a minute after it expired", at(dosed_at=106 * MINUTE)),
    ("monitor.mismatch", "another monitor", another_monitor),
    ("dose.above_prescription", "101 mg of 100", fields(dose_mg=100.5)),
    ("post_dose.missing", "no post-dose reading", fields(**NO_POST)),
    ("post_dose.window", "post-dose at 29 minutes", at(post_taken_at=29 * MINUTE)),
    ("post_dose.window", "post-dose at 91 minutes", at(post_taken_at=91 * MINUTE)),
    ("post_dose.window", "post-dose before the dose", at(post_taken_at=-MINUTE)),
    ("recheck.missing", "a high post-dose reading, no recheck", high_post_dose(None)),
    ("recheck.missing", "a recheck after completion", high_post_dose(timedelta(hours=3))),
    ("observation.short", "completed at 119 minutes", at(completed_at=119 * MINUTE)),
]


def test_every_deviation_has_a_case_here():
    assert {code for code, _, _ in ALONE} == set(DEVIATIONS)


@pytest.mark.parametrize(
    ("code", "deviation"), [(c, d) for c, _, d in ALONE], ids=[n for _, n, _ in ALONE]
)
def test_a_dose_outside_one_rule_is_recorded_with_that_deviation_and_an_event(
    clinic, code, deviation
):
    case_id, clearance = cleared(clinic)
    overrides = deviation(clinic, case_id, clearance)
    seen = len(clinic.rows(AdverseEvent, case_id))

    dose = record(clinic, case_id, clearance, **overrides)

    assert dose.deviations == [code]
    (event,) = clinic.rows(AdverseEvent, case_id)[seen:]
    assert (event.kind, event.severity, event.recorded_by_system) == ("other", "moderate", True)
    assert event.description == f"dosing deviation: {code} (session #{dose.id})"
    assert clinic.case(case_id).state == "integration"  # a moderate event does not hold


@pytest.mark.parametrize(
    ("overrides", "deviations"),
    [
        ({"post_taken_at": 30}, []),
        ({"post_taken_at": 90}, []),
        ({"completed_at": 120}, []),
        ({"dosed_at": 105, "post_taken_at": 135, "completed_at": 225}, []),
        ({"dosed_at": -15, "post_taken_at": 15, "completed_at": 105}, []),
    ],
    ids=["post at 30", "post at 90", "completed at 120", "dosed at expiry", "dosed at grant"],
)
def test_the_boundaries_of_the_rules_are_kept(clinic, overrides, deviations):
    """Minutes after the dose at +15 minutes (``dosed_at``: after it, too)."""
    case_id, clearance = cleared(clinic)
    dosed_at = clearance.created_at + 15 * MINUTE
    values = {name: dosed_at + minutes * MINUTE for name, minutes in overrides.items()}

    assert record(clinic, case_id, clearance, **values).deviations == deviations


def test_a_recheck_before_completion_keeps_the_rule(clinic):
    case_id, clearance = cleared(clinic)
    overrides = high_post_dose(timedelta(minutes=30))(clinic, case_id, clearance)
    assert record(clinic, case_id, clearance, **overrides).deviations == []


def test_every_deviation_at_once_is_listed_in_the_spec_s_order(clinic):
    case_id, clearance = cleared(clinic)
    record(clinic, case_id, clearance)
    other = clinic.monitor(case_id, name="Jo Rivera").id
    late = clearance.expires_at + MINUTE

    dose = record(
        clinic,
        case_id,
        clearance,
        dosed_at=late,
        monitor_id=other,
        dose_mg=200.0,
        completed_at=late + 10 * MINUTE,
        **NO_POST,
    )

    assert dose.deviations == [
        "clearance.used",
        "clearance.not_valid_at_dose",
        "monitor.mismatch",
        "dose.above_prescription",
        "post_dose.missing",
        "observation.short",
    ]
    assert len(clinic.rows(AdverseEvent, case_id)) == 1


def test_the_dosing_rules_come_from_the_settings_and_may_be_zero(clinic):
    """For demonstrations: no observation, the post-dose reading at the dose itself."""
    case_id, clearance = cleared(clinic)
    rules = Settings(observation_minutes=0, post_dose_bp_min_minutes=0, post_dose_bp_max_minutes=0)
    dosed_at = clearance.created_at + MINUTE
    fields = clinic.dosing_fields(
        case_id, clearance.created_at, dosed_at=dosed_at, post_taken_at=dosed_at
    )
    fields |= {"completed_at": dosed_at, "clearance_id": clearance.id}
    clinic.now = dosed_at

    dose = clinic.call(
        dosing.record_session,
        case_id=case_id,
        data=SessionCreate(kind="dosing", **fields),
        actor=clinic.coordinator,
        rules=rules,
    )

    assert dose.deviations == []


# -- the blood pressure after the dose ---------------------------------------------------------


@pytest.mark.parametrize(
    ("post", "severity"),
    [
        ((159, 104), None),  # 39 and 24 above the clearance's 120/80
        ((160, 80), "moderate"),
        ((120, 105), "moderate"),
        ((180, 90), "severe"),
        ((130, 110), "severe"),
    ],
)
def test_a_post_dose_rise_or_crisis_records_a_blood_pressure_increase(clinic, post, severity):
    case_id, clearance = cleared(clinic)
    systolic, diastolic = post
    recheck = {}
    if systolic >= 140 or diastolic >= 90:  # a high reading needs its recheck
        recheck_at = clearance.created_at + 80 * MINUTE
        recheck = {"recheck_systolic": 125, "recheck_diastolic": 80, "recheck_taken_at": recheck_at}

    dose = record(
        clinic, case_id, clearance, post_systolic=systolic, post_diastolic=diastolic, **recheck
    )

    assert dose.deviations == []
    found = [(k, s) for k, s, _ in events(clinic, case_id)]
    assert found == ([] if severity is None else [("blood_pressure_increase", severity)])
    assert clinic.case(case_id).state == ("on_hold" if severity == "severe" else "integration")


def test_a_rise_on_the_recheck_counts_too(clinic):
    case_id, clearance = cleared(clinic)
    post = clearance.created_at + 45 * MINUTE
    dose = record(
        clinic,
        case_id,
        clearance,
        post_systolic=150,
        post_diastolic=85,
        recheck_systolic=185,
        recheck_diastolic=95,
        recheck_taken_at=post + 30 * MINUTE,
    )
    assert dose.deviations == []
    assert [(k, s) for k, s, _ in events(clinic, case_id)] == [
        ("blood_pressure_increase", "severe")
    ]


# -- malformed records store nothing ------------------------------------------------------------


def refused(clinic: Clinic, case_id: int, clearance: DoseClearance | None, **overrides) -> Any:
    before = clinic.snapshot(case_id)
    with pytest.raises(ValidationFailed) as refusal:
        record(clinic, case_id, clearance, **overrides)
    assert clinic.snapshot(case_id) == before
    return refusal.value


@pytest.mark.parametrize("missing", ["dosed_at", "dose_mg", "units_taken", "monitor_id"])
def test_a_dose_record_without_a_required_field_is_refused_naming_it(clinic, missing):
    case_id, clearance = cleared(clinic)
    refusal = refused(clinic, case_id, clearance, **{missing: None})
    assert [e["loc"] for e in refusal.errors] == [["body", missing]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"post_systolic": None}, "post_systolic"),
        ({"recheck_systolic": 120, "recheck_diastolic": 80}, "recheck_taken_at"),
        ({"monitor_id": 999}, "monitor_id"),
        ({"clearance_id": 999}, "clearance_id"),
    ],
    ids=[
        "a post-dose reading in part",
        "a recheck in part",
        "no such monitor",
        "no such clearance",
    ],
)
def test_a_malformed_dose_record_is_refused_naming_the_field(clinic, overrides, field):
    case_id, clearance = cleared(clinic)
    refusal = refused(clinic, case_id, clearance, **overrides)
    assert [e["loc"] for e in refusal.errors] == [["body", field]]


def test_a_dose_completed_before_it_was_taken_is_refused(clinic):
    case_id, clearance = cleared(clinic)
    dosed_at = clearance.created_at + 15 * MINUTE
    refusal = refused(clinic, case_id, clearance, completed_at=dosed_at - MINUTE)
    assert [e["loc"] for e in refusal.errors] == [["body", "completed_at"]]


def test_a_post_dose_reading_in_the_future_is_refused(clinic):
    case_id, clearance = cleared(clinic)
    fields = clinic.dosing_fields(case_id, clearance.created_at)
    clinic.now = fields["completed_at"]
    fields["post_taken_at"] = clinic.now + timedelta(hours=1)
    before = clinic.snapshot(case_id)

    with pytest.raises(ValidationFailed) as refusal:
        clinic.session(case_id, "dosing", clearance_id=clearance.id, **fields)

    assert clinic.snapshot(case_id) == before
    assert refusal.value.errors[0]["loc"] == ["body", "post_taken_at"]


def test_another_case_s_clearance_or_monitor_is_refused(clinic):
    other, theirs = cleared(clinic)
    case_id, clearance = cleared(clinic)

    by_clearance = refused(clinic, case_id, clearance, clearance_id=theirs.id)
    by_monitor = refused(clinic, case_id, clearance, monitor_id=clinic.monitors[other])

    assert by_clearance.errors[0]["loc"] == ["body", "clearance_id"]
    assert by_monitor.errors[0]["loc"] == ["body", "monitor_id"]


@pytest.mark.parametrize("kind", ["preparation", "integration"])
def test_only_a_dosing_session_takes_the_dose_s_fields(clinic, kind):
    case_id, clearance = cleared(clinic)
    before = clinic.snapshot(case_id)

    with pytest.raises(ValidationFailed) as refusal:
        clinic.session(case_id, kind, clearance_id=clearance.id, dose_mg=100.0)

    assert {tuple(e["loc"]) for e in refusal.value.errors} == {
        ("body", "clearance_id"),
        ("body", "dose_mg"),
    }
    assert clinic.snapshot(case_id) == before


# -- where sessions are recorded --------------------------------------------------------------


@pytest.mark.parametrize("held_from", ["integration", "monitoring"])
def test_a_dose_taken_before_a_hold_is_recorded_on_hold(clinic, held_from):
    case_id = clinic.case_in(held_from)
    clinic.tick(hours=72)
    clearance = clinic.clearance(case_id)
    dosed_at = clinic.now + 15 * MINUTE
    clinic.now = dosed_at + 5 * MINUTE
    clinic.fire(case_id, "hold")

    dose = record(clinic, case_id, clearance, dosed_at=dosed_at)

    assert clinic.case(case_id).state == "on_hold"
    assert dose.deviations == []  # the hold came after the dose: it voided nothing it used


def test_a_dose_after_a_hold_is_recorded_with_its_void_clearance(clinic):
    case_id, clearance = cleared(clinic)
    clinic.tick(minutes=5)
    clinic.fire(case_id, "hold")

    dose = record(clinic, case_id, clearance, dosed_at=clinic.now + MINUTE)

    assert dose.deviations == ["clearance.void"]


@pytest.mark.parametrize(
    "held_from", ["evaluation", "delivery.awaiting_prescription", "delivery.shipped"]
)
def test_sessions_are_refused_on_a_case_held_before_integration(clinic, held_from):
    case_id = clinic.case_in("on_hold", held_from=held_from)
    before = clinic.snapshot(case_id)
    with pytest.raises(Conflict, match="held from"):
        clinic.session(case_id, "preparation")
    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize("state", ["evaluation", "delivery.shipped", "discharged"])
def test_sessions_are_refused_outside_integration_monitoring_and_their_holds(clinic, state):
    case_id = clinic.case_in(state)
    before = clinic.snapshot(case_id)
    with pytest.raises(Conflict):
        clinic.session(case_id, "preparation")
    assert clinic.snapshot(case_id) == before


def test_a_dose_recorded_late_was_taken_before_the_change_that_voided_its_clearance(clinic):
    """Nothing after ``dosed_at`` voids a clearance: the void did not apply to this dose."""
    case_id, clearance = cleared(clinic)
    dosed_at = clinic.now + 15 * MINUTE
    clinic.now = dosed_at + 30 * MINUTE
    clinic.adverse_event(case_id, "nausea", "mild")  # recorded after the dose was taken
    (voided,) = clinic.rows(DoseClearance, case_id)
    assert voided.void

    dose = record(clinic, case_id, clearance, dosed_at=dosed_at)

    assert dose.deviations == []
    (used,) = clinic.rows(DoseClearance, case_id)
    assert (used.open, used.void, used.voided_at) == (False, False, voided.voided_at)


def test_the_first_dose_is_when_it_was_taken_not_when_the_session_ended(clinic):
    case_id, clearance = cleared(clinic)
    dose = record(clinic, case_id, clearance)

    first: datetime | None = first_dosing_at(clinic.facts(case_id))

    assert first == dose.dosed_at != dose.completed_at
