"""The prescription and its limits (SPEC.md 4.5): the body of ``prescribe``, the route
ceilings, the first-dose cap, and ``adjust_dose``: lowering always, raising guarded."""

from __future__ import annotations

from typing import Any

import pytest

from models.schemas import TransitionBody
from models.settings import Settings
from tests.workflow.conftest import BODY_SAMPLES, Clinic
from workflow.errors import TransitionBlocked, ValidationFailed


def prescription(**overrides: Any) -> TransitionBody:
    fields = {
        "dose_mg": 100.0,
        "route": "sublingual",
        "formulation": "ketamine 100 mg troche",
        "units_per_dose": 1,
    }
    return TransitionBody(**(fields | overrides))


def adjustment(dose_mg: float, **more: Any) -> TransitionBody:
    return TransitionBody(dose_mg=dose_mg, rationale="Reviewed with the patient.", **more)


def refused(clinic: Clinic, case_id: int, trigger: str, body: TransitionBody) -> ValidationFailed:
    before = clinic.snapshot(case_id)
    with pytest.raises(ValidationFailed) as refusal:
        clinic.fire(case_id, trigger, body=body)
    assert clinic.snapshot(case_id) == before
    return refusal.value


# -- prescribe ----------------------------------------------------------------------------


def test_prescribe_sets_the_case_s_prescription(clinic, case_in):
    case_id = case_in("delivery.awaiting_prescription")

    case = clinic.fire(case_id, "prescribe", body=prescription(route="oral", units_per_dose=2))

    assert case.prescription == {
        "dose_mg": 100.0,
        "route": "oral",
        "formulation": "ketamine 100 mg troche",
        "units_per_dose": 2,
        "prescribed_by": clinic.clinician.id,
        "prescribed_at": clinic.now.isoformat(),
        "refills": 0,
    }
    assert clinic.case(case_id).prescription == case.prescription


@pytest.mark.parametrize("missing", ["dose_mg", "route", "formulation", "units_per_dose"])
def test_prescribe_needs_its_whole_body(clinic, case_in, missing):
    case_id = case_in("delivery.awaiting_prescription")
    body = prescription().model_copy(update={missing: None})
    refusal = refused(clinic, case_id, "prescribe", body)
    assert [e["loc"] for e in refusal.errors] == [["body", missing]]


@pytest.mark.parametrize(
    ("route", "dose_mg", "limit"),
    [
        ("intranasal", 100.5, "max_dose_mg_intranasal"),
        ("sublingual", 200.5, "max_initial_dose_mg"),
        ("oral", 200.5, "max_initial_dose_mg"),
    ],
)
def test_a_first_prescription_above_a_limit_is_refused_naming_it(
    clinic, case_in, route, dose_mg, limit
):
    case_id = case_in("delivery.awaiting_prescription")
    refusal = refused(clinic, case_id, "prescribe", prescription(route=route, dose_mg=dose_mg))
    assert limit in refusal.detail
    assert refusal.errors[0]["loc"] == ["body", "dose_mg"]


@pytest.mark.parametrize(("route", "dose_mg"), [("intranasal", 100), ("sublingual", 200)])
def test_a_first_prescription_at_the_limit_is_accepted(clinic, case_in, route, dose_mg):
    case_id = case_in("delivery.awaiting_prescription")
    case = clinic.fire(case_id, "prescribe", body=prescription(route=route, dose_mg=dose_mg))
    assert case.prescription["dose_mg"] == dose_mg


def test_the_ceilings_come_from_the_rules(clinic, case_in):
    case_id = case_in("delivery.awaiting_prescription")
    rules = Settings(max_dose_mg_intranasal=50)
    body = prescription(route="intranasal", dose_mg=60)
    with pytest.raises(ValidationFailed, match="max_dose_mg_intranasal, 50 mg"):
        clinic.fire(case_id, "prescribe", body=body, rules=rules)


@pytest.mark.parametrize(
    ("field", "value"), [("route", "IV push"), ("units_per_dose", 0), ("units_per_dose", 11)]
)
def test_a_route_or_unit_count_the_program_does_not_use_is_malformed(field, value):
    with pytest.raises(ValueError):
        TransitionBody(**{"dose_mg": 100.0, field: value})


# -- adjust_dose ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["integration", "monitoring"])
def test_a_dose_is_adjusted_in_integration_and_monitoring(clinic, case_in, state):
    case_id = case_in(state)
    clinic.tick(days=1)

    case = clinic.fire(case_id, "adjust_dose", body=adjustment(150, units_per_dose=2))

    assert case.state == state
    assert case.prescription["dose_mg"] == 150
    assert case.prescription["units_per_dose"] == 2
    assert case.prescription["route"] == "sublingual"
    assert case.prescription["prescribed_at"] == clinic.now.isoformat()


def test_a_dose_is_adjusted_on_hold(clinic, case_in):
    case_id = case_in("on_hold", held_from="monitoring")
    case = clinic.fire(case_id, "adjust_dose", body=adjustment(80))
    assert (case.state, case.prescription["dose_mg"]) == ("on_hold", 80)


@pytest.mark.parametrize(
    ("dose_mg", "limit"), [(150.5, "max_dose_step_percent"), (460, "max_dose_mg_sublingual")]
)
def test_a_raise_beyond_a_limit_is_refused_naming_it(clinic, case_in, dose_mg, limit):
    case_id = case_in("monitoring")
    refusal = refused(clinic, case_id, "adjust_dose", adjustment(dose_mg))
    assert limit in refusal.detail


def test_the_step_limit_comes_from_the_rules(clinic, case_in):
    case_id = case_in("monitoring")
    case = clinic.fire(
        case_id, "adjust_dose", body=adjustment(190), rules=Settings(max_dose_step_percent=100)
    )
    assert case.prescription["dose_mg"] == 190


def test_lowering_the_dose_needs_only_a_licence(clinic, case_in):
    """With an open adverse event and stale assessments, a lower dose is still allowed."""
    case_id = case_in("monitoring")
    clinic.tick(days=20)
    clinic.adverse_event(case_id, "nausea", "mild")

    with pytest.raises(TransitionBlocked) as raising:
        clinic.fire(case_id, "adjust_dose", body=adjustment(120))
    lowered = clinic.fire(case_id, "adjust_dose", body=adjustment(80))

    assert [u.code for u in raising.value.unmet] == [
        "assessments.recent",
        "adverse_events.resolved",
    ]
    assert lowered.prescription["dose_mg"] == 80


def test_lowering_still_needs_a_licence(clinic, case_in):
    case_id = case_in("monitoring")
    tx = clinic.clinician_licensed_only_in("TX")
    with pytest.raises(TransitionBlocked) as refusal:
        clinic.fire(case_id, "adjust_dose", actor=tx, body=adjustment(80))
    assert [u.code for u in refusal.value.unmet] == ["clinician.licensed"]


def test_a_dose_above_the_lowered_prescription_is_a_deviation(clinic, case_in):
    case_id = case_in("monitoring")
    clinic.fire(case_id, "adjust_dose", body=adjustment(80))
    clinic.tick(hours=72)

    dose = clinic.dose(case_id, dose_mg=100.0)

    assert dose.deviations == ["dose.above_prescription"]


def test_the_sample_bodies_fit_the_limits():
    assert BODY_SAMPLES["dose_mg"] <= Settings().max_initial_dose_mg
