"""What a declined case is referred to instead (SPEC.md section 4)."""

from __future__ import annotations

import pytest

from tests.workflow.conftest import Clinic
from workflow.referrals import referrals_for


def decline(clinic: Clinic, case_id: int) -> list[str]:
    case = clinic.fire(case_id, "decline")
    assert (case.state, case.phase) == ("ineligible", "closed")
    event = clinic.events(case_id)[-1]
    assert (event.trigger, event.data) == ("decline", {"reason": "Recorded by the test."})
    assert clinic.case(case_id).referrals == case.referrals
    return case.referrals


@pytest.mark.parametrize(
    ("eligible", "referrals"),
    [
        ({}, []),
        ({"history": {"cbti_completed": False}}, ["cbt_i"]),
        ({"history": {"diagnoses": ["other"]}}, ["orexin_antagonist"]),
        ({"scores": {"phq9": 4, "gad7": 3}}, ["orexin_antagonist"]),
        ({"history": {"substance_use_disorder_history": True}}, ["psychiatric_care"]),
        ({"history": {"active_psychosis": True}}, ["psychiatric_care"]),
        ({"history": {"severe_psychiatric_instability": True}}, ["psychiatric_care"]),
        ({"history": {"sleep_apnea": True}}, ["psychiatric_care"]),
        ({"history": {"significant_breathing_problems": True}}, ["psychiatric_care"]),
        ({"history": {"uncontrolled_hypertension": True}}, ["psychiatric_care"]),
        ({"vital": (172, 104)}, ["psychiatric_care"]),
        (
            {"history": {"cbti_completed": False, "diagnoses": ["ptsd"], "sleep_apnea": True}},
            ["cbt_i", "orexin_antagonist", "psychiatric_care"],
        ),
        # Not referral reasons: a failed criterion other than these, or a stale reading.
        ({"history": {"failed_antidepressant_trials": 0}}, []),
        ({"history": {"seeking_sleep_med_replacement": True}}, []),
        ({"vital_days_ago": 45}, []),
    ],
)
def test_decline_records_the_referrals_the_guide_recommends(clinic, eligible, referrals):
    case_id = clinic.case_in("evaluation", **eligible)
    assert decline(clinic, case_id) == referrals


def test_a_case_declined_before_anything_was_recorded(clinic):
    """No history: no CBT-I on record and no mood disorder shown; no contraindication found."""
    assert decline(clinic, clinic.open_case()) == ["cbt_i", "orexin_antagonist"]


def test_a_missing_reading_is_not_a_contraindication(clinic):
    case_id = clinic.open_case()
    clinic.history(case_id)
    clinic.assess(case_id, "phq9", 15)
    assert decline(clinic, case_id) == []


def test_referrals_are_computed_from_the_facts_at_the_time(clinic):
    case_id = clinic.case_in("evaluation", history={"cbti_completed": False})
    assert referrals_for(clinic.facts(case_id)) == ["cbt_i"]
    clinic.history(case_id)
    assert referrals_for(clinic.facts(case_id)) == []


def test_only_decline_records_referrals(clinic, case_in):
    case_id = case_in("evaluation", history={"cbti_completed": False})
    assert clinic.fire(case_id, "withdraw").referrals == []
