"""Safety plans and the two suicide-risk requirements (SPEC.md 3.1 and 4.6).

``safety.reassessed``: the latest suicidal ideation, if any, is followed (a later
``reviewed_with_patient_at`` than its ``onset_at``) by a safety plan rating the risk
low; the clinician's documented assessment decides, not a later score of zero.
With units on hand (SPEC.md 4.5), that plan must also say the means are secured.
``adverse_events.suicide_risk_resolved``: no suicidal ideation is unresolved.

A case in integration or monitoring got the 8 units of the first dispense and took
one dose: 7 units are on hand.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.facts import AdverseEvent, SafetyPlan
from tests.workflow.conftest import Clinic
from workflow import guards
from workflow.errors import Conflict, Forbidden, TransitionBlocked, ValidationFailed


def held_by_ideation(clinic: Clinic, state: str = "integration", item9: int = 2) -> tuple:
    """A case held by the suicidal ideation its PHQ-9 showed, the event resolved."""
    case_id = clinic.case_in(state)
    clinic.tick(hours=1)
    clinic.assess(case_id, "phq9", 16, item9=item9)
    (event,) = clinic.rows(AdverseEvent, case_id)
    clinic.tick(hours=2)
    clinic.resolve(case_id, event.id)
    assert clinic.case(case_id).state == "on_hold"
    return case_id, event


def blocked_codes(clinic: Clinic, case_id: int, trigger: str, **kwargs) -> list[str]:
    before = clinic.snapshot(case_id)
    with pytest.raises(TransitionBlocked) as refused:
        clinic.fire(case_id, trigger, **kwargs)
    assert clinic.snapshot(case_id) == before
    return [u.code for u in refused.value.unmet]


# -- resume -------------------------------------------------------------------------------------


def test_resume_after_suicidal_ideation_needs_a_safety_plan(clinic):
    case_id, _ = held_by_ideation(clinic)
    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]


def test_a_later_score_of_zero_does_not_stand_for_the_plan(clinic):
    case_id, _ = held_by_ideation(clinic)
    clinic.tick(days=1)
    clinic.assess(case_id, "phq9", 3, item9=0)
    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]


def test_a_plan_reviewed_before_the_ideation_began_does_not_follow_it(clinic):
    case_id, event = held_by_ideation(clinic)
    clinic.safety_plan(case_id, reviewed_at=event.onset_at)  # at the same moment: not later
    clinic.safety_plan(case_id, reviewed_at=event.onset_at - timedelta(hours=1))
    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]
    clinic.safety_plan(case_id, reviewed_at=event.onset_at + timedelta(seconds=1))
    assert clinic.fire(case_id, "resume").state == "integration"


@pytest.mark.parametrize("risk", ["moderate", "high"])
def test_a_plan_rating_the_risk_above_low_keeps_the_case_held(clinic, risk):
    case_id, _ = held_by_ideation(clinic)
    clinic.safety_plan(case_id, risk_level=risk)
    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]
    facts = clinic.facts(case_id)
    assert f"rates the suicide risk {risk}" in (guards.safety_reassessed(facts) or "")


def test_the_latest_plan_decides(clinic):
    case_id, _ = held_by_ideation(clinic)
    clinic.safety_plan(case_id, risk_level="low")
    clinic.tick(hours=1)
    clinic.safety_plan(case_id, risk_level="high")  # reassessed since: higher
    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]
    clinic.tick(hours=1)
    clinic.safety_plan(case_id, risk_level="low")
    assert clinic.fire(case_id, "resume").state == "integration"


def test_a_low_risk_plan_after_the_ideation_lets_the_case_resume(clinic):
    case_id, _ = held_by_ideation(clinic, state="monitoring", item9=1)
    assert clinic.units(case_id) == 7
    clinic.safety_plan(case_id, means_secured=True)  # units on hand: the plan secures them
    assert clinic.fire(case_id, "resume").state == "monitoring"


def test_a_new_ideation_after_the_plan_needs_a_new_plan(clinic):
    case_id, _ = held_by_ideation(clinic)
    clinic.safety_plan(case_id)
    clinic.fire(case_id, "resume")
    clinic.tick(days=3)
    second = clinic.adverse_event(case_id, "suicidal_ideation", "mild")
    clinic.resolve(case_id, second.id)
    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]


def test_the_latest_ideation_is_the_one_that_began_last(clinic):
    """An ideation reported late (its onset before the plan) does not undo the plan."""
    case_id, event = held_by_ideation(clinic)
    clinic.safety_plan(case_id)
    late = clinic.adverse_event(case_id, "suicidal_ideation", "mild", onset_at=event.onset_at)
    clinic.resolve(case_id, late.id)
    assert clinic.fire(case_id, "resume").state == "integration"


def test_without_suicidal_ideation_resume_needs_no_plan(clinic, case_in):
    case_id = case_in("on_hold", held_from="monitoring")
    assert clinic.fire(case_id, "resume").state == "monitoring"


SECURE = "The ketamine at home must be secured"


def test_secured_means_are_asked_for_once_units_are_on_hand(clinic):
    """SPEC.md 3.1: with units on hand, a low-risk plan that leaves the means unsecured does
    not let the case resume; a later plan securing them does."""
    case_id, _ = held_by_ideation(clinic)
    assert clinic.units(case_id) == 7
    clinic.safety_plan(case_id, means_secured=False)

    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]
    assert (guards.safety_reassessed(clinic.facts(case_id)) or "").startswith(SECURE)

    clinic.tick(minutes=5)
    clinic.safety_plan(case_id, means_secured=True)
    assert clinic.fire(case_id, "resume").state == "integration"


def test_secured_means_are_not_asked_for_with_no_units_on_hand(clinic):
    """The same plan, once every unit has left the home: nothing is left to secure."""
    case_id, _ = held_by_ideation(clinic)
    clinic.safety_plan(case_id, means_secured=False)
    assert blocked_codes(clinic, case_id, "resume") == ["safety.reassessed"]

    clinic.give_back(case_id, 7)
    assert clinic.units(case_id) == 0
    assert guards.safety_reassessed(clinic.facts(case_id)) is None
    assert clinic.fire(case_id, "resume").state == "integration"


# -- withdraw ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["coordinator", "clinician"])
def test_no_withdrawal_while_suicidal_ideation_is_unresolved(clinic, role):
    case_id = clinic.case_in("monitoring")
    clinic.adverse_event(case_id, "suicidal_ideation", "mild")
    clinic.adverse_event(case_id, "nausea", "mild")  # other open events do not block it
    actor = clinic.coordinator if role == "coordinator" else clinic.clinician
    assert blocked_codes(clinic, case_id, "withdraw", actor=actor) == [
        "adverse_events.suicide_risk_resolved"
    ]


def test_withdrawal_after_the_ideation_is_resolved(clinic):
    case_id = clinic.case_in("monitoring")
    event = clinic.adverse_event(case_id, "suicidal_ideation", "moderate")
    clinic.adverse_event(case_id, "nausea", "mild")
    clinic.resolve(case_id, event.id)
    assert clinic.fire(case_id, "withdraw", actor=clinic.coordinator).state == "withdrawn"


# -- the record ---------------------------------------------------------------------------------


def test_a_safety_plan_is_a_record_even_without_suicidal_ideation(clinic):
    case_id = clinic.open_case()
    plan = clinic.safety_plan(case_id, risk_level="moderate", means_secured=False)
    (stored,) = clinic.rows(SafetyPlan, case_id)
    assert (stored.id, stored.risk_level, stored.means_secured) == (plan.id, "moderate", False)
    assert (stored.recorded_by, stored.created_at) == (clinic.clinician.id, clinic.now)
    last = clinic.events(case_id)[-1]
    assert (last.data["fact"], last.actor_role) == ("safety_plan", "clinician")


def test_only_a_clinician_records_a_safety_plan(clinic):
    case_id = clinic.open_case()
    before = clinic.snapshot(case_id)
    with pytest.raises(Forbidden):
        clinic.safety_plan(case_id, actor=clinic.coordinator)
    assert clinic.snapshot(case_id) == before


def test_a_safety_plan_in_the_future_is_refused(clinic):
    case_id = clinic.open_case()
    with pytest.raises(ValidationFailed) as refused:
        clinic.safety_plan(case_id, reviewed_at=clinic.now + timedelta(minutes=5))
    assert refused.value.errors[0]["loc"] == ["body", "reviewed_with_patient_at"]


def test_a_closed_case_takes_no_safety_plan(clinic, case_in):
    """SPEC.md 4: after discharge, the ideation's safety_review reaches a clinician, who
    resolves it with a note; the case itself takes no new plan."""
    case_id = case_in("discharged")
    clinic.adverse_event(case_id, "suicidal_ideation", "moderate")
    before = clinic.snapshot(case_id)
    with pytest.raises(Conflict):
        clinic.safety_plan(case_id)
    assert clinic.snapshot(case_id) == before
