"""What a declined case is referred to instead (SPEC.md 4.7), each row of the table alone.

Expected referrals are written out from the SPEC's table, not read from
``workflow.referrals``, so that a wrong row fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflow.conftest import Clinic
from workflow.referrals import REFERRAL_RULES, referrals_for


def refs(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"referral": referral, "answers": answers} for referral, answers in pairs]


def decline(clinic: Clinic, case_id: int) -> list[dict[str, Any]]:
    case = clinic.fire(case_id, "decline")
    assert (case.state, case.phase) == ("ineligible", "closed")
    event = clinic.events(case_id)[-1]
    assert (event.trigger, event.data) == ("decline", {"reason": "Recorded by the test."})
    assert clinic.case(case_id).referrals == case.referrals
    return case.referrals


CBTI = "criteria.cbti_trial"
MOOD = "criteria.mood_disorder"
SUBSTANCE = "contraindication.substance_use"
ROWS = [
    ({}, []),
    ({"history": {"cbti_completed": False}}, refs(("cbt_i", CBTI))),
    (
        {"history": {"seeking_sleep_med_replacement": True}},
        refs(("cbt_i", "criteria.not_sleep_med_replacement")),
    ),
    (
        {"history": {"diagnoses": ["other"]}},
        refs(("orexin_antagonist", MOOD), ("cbt_i", MOOD)),
    ),
    ({"scores": {"phq9": 4, "gad7": 3}}, refs(("orexin_antagonist", MOOD), ("cbt_i", MOOD))),
    (
        {"history": {"failed_antidepressant_trials": 1}},
        refs(("psychiatric_care", "criteria.treatment_resistant")),
    ),
    (
        {"history": {"active_psychosis": True}},
        refs(("psychiatric_care", "contraindication.psychosis")),
    ),
    (
        {"history": {"severe_psychiatric_instability": True}},
        refs(("psychiatric_care", "contraindication.psychosis")),
    ),
    (
        {"history": {"substance_use_disorder_history": True}},
        refs(("psychiatric_care", SUBSTANCE), ("addiction_medicine", SUBSTANCE)),
    ),
    ({"history": {"sleep_apnea": True}}, refs(("sleep_medicine", "contraindication.respiratory"))),
    (
        {"history": {"significant_breathing_problems": True}},
        refs(("sleep_medicine", "contraindication.respiratory")),
    ),
    (
        {"history": {"uncontrolled_hypertension": True}},
        refs(("primary_care", "contraindication.hypertension")),
    ),
    ({"vital": (172, 104)}, refs(("primary_care", "contraindication.hypertension"))),
    # The orexin rule: not when substance use failed too.
    (
        {"history": {"diagnoses": ["ptsd"], "substance_use_disorder_history": True}},
        refs(("psychiatric_care", SUBSTANCE), ("addiction_medicine", SUBSTANCE)),
    ),
    (
        {"history": {"cbti_completed": False, "diagnoses": ["ptsd"], "sleep_apnea": True}},
        refs(
            ("cbt_i", CBTI),
            ("orexin_antagonist", MOOD),
            ("cbt_i", MOOD),
            ("sleep_medicine", "contraindication.respiratory"),
        ),
    ),
    # A stale but normal reading is no referral reason.
    ({"vital_days_ago": 45}, []),
]


@pytest.mark.parametrize(("eligible", "expected"), ROWS)
def test_decline_records_the_referrals_the_guide_recommends(clinic, eligible, expected):
    case_id = clinic.case_in("evaluation", **eligible)
    assert decline(clinic, case_id) == expected


# -- no referral from missing data alone ------------------------------------------------------


def test_a_case_declined_before_anything_was_recorded_is_referred_nowhere(clinic):
    assert decline(clinic, clinic.open_case()) == []


def test_a_history_without_scores_or_readings_refers_only_what_it_shows(clinic):
    """The mood and blood-pressure requirements fail for want of data: no referral."""
    case_id = clinic.open_case()
    clinic.history(case_id, diagnoses=["other"])
    assert decline(clinic, case_id) == []


def test_the_orexin_rule_needs_both_a_phq9_and_a_gad7(clinic):
    case_id = clinic.open_case()
    clinic.history(case_id, diagnoses=["other"])
    clinic.assess(case_id, "phq9", 4)
    assert decline(clinic, case_id) == []


def test_scores_without_a_history_refer_nowhere(clinic):
    case_id = clinic.open_case()
    clinic.assess(case_id, "phq9", 4)
    clinic.assess(case_id, "gad7", 3)
    assert decline(clinic, case_id) == []


# -- the table and when it is read -------------------------------------------------------------


def test_the_table_is_exactly_the_spec_s():
    table = {(rule.answers, rule.referrals, rule.unless) for rule in REFERRAL_RULES}
    assert table == {
        ("criteria.cbti_trial", ("cbt_i",), ()),
        ("criteria.not_sleep_med_replacement", ("cbt_i",), ()),
        ("criteria.mood_disorder", ("orexin_antagonist", "cbt_i"), (SUBSTANCE,)),
        ("criteria.treatment_resistant", ("psychiatric_care",), ()),
        ("contraindication.psychosis", ("psychiatric_care",), ()),
        (SUBSTANCE, ("psychiatric_care", "addiction_medicine"), ()),
        ("contraindication.respiratory", ("sleep_medicine",), ()),
        ("contraindication.hypertension", ("primary_care",), ()),
        ("contraindication.cardiovascular", ("primary_care",), ()),
    }


def test_referrals_are_computed_from_the_facts_at_the_time(clinic):
    case_id = clinic.case_in("evaluation", history={"cbti_completed": False})
    assert referrals_for(clinic.facts(case_id)) == refs(("cbt_i", CBTI))
    clinic.history(case_id)
    assert referrals_for(clinic.facts(case_id)) == []


def test_a_case_held_from_evaluation_is_declined_with_its_referrals(clinic, case_in):
    case_id = case_in("on_hold", held_from="evaluation", history={"sleep_apnea": True})
    assert decline(clinic, case_id) == refs(("sleep_medicine", "contraindication.respiratory"))


def test_only_decline_records_referrals(clinic, case_in):
    case_id = case_in("evaluation", history={"cbti_completed": False})
    assert clinic.fire(case_id, "withdraw").referrals == []
