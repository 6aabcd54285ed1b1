"""The patient's record (SPEC.md 4.1) and the ongoing-safety codes that read it (3.1, 3.2).

History, profile and consent through the real services; each new code met and
unmet at its boundary; who may write what once a case is approved; the severe
adverse event that a newly found contraindication records; the requirements
that apply to some moves only (``TriggerDef.also``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from models.facts import AdverseEvent, Consent, History, Profile
from models.schemas import ProfileIn
from models.settings import Settings
from models.tables import Case
from tests.workflow.conftest import ELIGIBLE_HISTORY, Clinic, body_for, ongoing_met
from workflow import cases, patient
from workflow.casefacts import CaseFacts
from workflow.definition import FACT_BY_NAME, ONGOING, TRIGGER_BY_NAME
from workflow.errors import Forbidden, NotFound, TransitionBlocked, ValidationFailed
from workflow.guards import GUARDS, evaluate


def unmet(clinic: Clinic, case_id: int, *codes: str, rules: Settings | None = None) -> list[str]:
    facts = clinic.facts(case_id)
    if rules is not None:
        facts.rules = rules
    return [u.code for u in evaluate(codes, facts)]


def fire_codes(clinic: Clinic, case_id: int, trigger: str, **kwargs: Any) -> list[str]:
    """The codes that block ``trigger``; [] when it fired."""
    try:
        clinic.fire(case_id, trigger, **kwargs)
    except TransitionBlocked as refused:
        return [u.code for u in refused.unmet]
    return []


# -- profile ---------------------------------------------------------------------------


def test_the_profile_is_put_once_replaced_after_and_read_back(clinic):
    case_id = clinic.open_case()
    with pytest.raises(NotFound):
        clinic.read(patient.get_profile, case_id=case_id)

    first = clinic.profile(case_id)
    clinic.tick(days=1)
    clinic.profile(case_id, breastfeeding=True)

    stored = clinic.read(patient.get_profile, case_id=case_id)
    assert stored.id == first.id
    assert (stored.date_of_birth, stored.pregnant, stored.breastfeeding) == (
        date(1984, 6, 15),
        False,
        True,
    )
    assert (stored.created_at, stored.updated_at) == (first.created_at, clinic.now)
    assert len(clinic.rows(Profile, case_id)) == 1


@pytest.mark.parametrize(
    ("zone", "born", "accepted"),
    [
        # 2026-11-02T15:00Z is already 3 November in Kiritimati (UTC+14), not yet in UTC.
        ("UTC", date(2026, 11, 2), True),
        ("UTC", date(2026, 11, 3), False),
        ("Pacific/Kiritimati", date(2026, 11, 3), True),
        ("Pacific/Kiritimati", date(2026, 11, 4), False),
    ],
)
def test_a_date_of_birth_in_the_future_is_refused_by_today_in_the_timezone(
    clinic, zone, born, accepted
):
    case_id = clinic.open_case()
    rules = Settings(timezone=zone)
    data = ProfileIn(date_of_birth=born, pregnant=False, breastfeeding=False)
    before = clinic.snapshot(case_id)

    def put() -> Profile:
        return clinic.call(
            patient.put_profile, case_id=case_id, data=data, actor=clinic.coordinator, rules=rules
        )

    if accepted:
        assert put().date_of_birth == born
        return
    with pytest.raises(ValidationFailed) as refused:
        put()
    assert refused.value.errors[0]["loc"] == ["body", "date_of_birth"]
    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize(("born", "valid"), [("1900-01-01", False), ("1900-01-02", True)])
def test_a_date_of_birth_is_after_1900(born, valid):
    body = {"date_of_birth": born, "pregnant": False, "breastfeeding": False}
    if valid:
        ProfileIn.model_validate(body)
    else:
        with pytest.raises(ValueError, match="after 1900-01-01"):
            ProfileIn.model_validate(body)


# -- history: the new fields and insomnia_mood_driven ---------------------------------


def test_a_coordinator_may_leave_insomnia_mood_driven_false_but_not_set_it_true(clinic):
    case_id = clinic.open_case()
    coordinator = clinic.coordinator
    clinic.history(case_id, actor=coordinator, insomnia_mood_driven=False)
    before = clinic.snapshot(case_id)

    with pytest.raises(Forbidden, match="insomnia_mood_driven"):
        clinic.history(case_id, actor=coordinator, insomnia_mood_driven=True)

    assert clinic.snapshot(case_id) == before
    assert clinic.history(case_id).insomnia_mood_driven is True  # the clinician's judgement


def test_a_coordinator_keeps_a_clinicians_judgement_when_rewriting_the_history(clinic):
    case_id = clinic.open_case()
    clinic.history(case_id)  # the clinician judges the insomnia mood-driven

    kept = clinic.history(case_id, actor=clinic.coordinator, insomnia_mood_driven=None)
    assert kept.insomnia_mood_driven is True
    resent = clinic.history(case_id, actor=clinic.coordinator, insomnia_nights_per_week=6)
    assert (resent.insomnia_mood_driven, resent.insomnia_nights_per_week) == (True, 6)
    cleared = clinic.history(case_id, actor=clinic.coordinator, insomnia_mood_driven=False)
    assert cleared.insomnia_mood_driven is False


def test_left_out_insomnia_mood_driven_starts_false(clinic):
    case_id = clinic.open_case()
    history = clinic.history(case_id, actor=clinic.coordinator, insomnia_mood_driven=None)
    assert history.insomnia_mood_driven is False
    assert unmet(clinic, case_id, "criteria.mood_disorder") == ["criteria.mood_disorder"]


def test_only_a_write_that_changes_a_value_bumps_the_clinical_version(clinic):
    case_id = clinic.open_case()
    clinic.history(case_id)
    clinic.profile(case_id)
    assert clinic.case(case_id).clinical_version == 2
    version = clinic.case(case_id).version

    clinic.tick(hours=1)
    same = clinic.history(case_id)
    clinic.profile(case_id)

    case = clinic.case(case_id)
    assert (case.clinical_version, case.version) == (2, version + 2)  # audited, not a change
    assert same.updated_at == same.created_at
    clinic.history(case_id, sleep_apnea=True)
    clinic.profile(case_id, date_of_birth=date(1984, 6, 16))
    assert clinic.case(case_id).clinical_version == 4
    assert [e.data["fact"] for e in clinic.events(case_id)[-6:]] == ["history", "profile"] * 3


# -- consent ---------------------------------------------------------------------------


def test_a_consent_of_the_current_version_is_what_counts(clinic):
    case_id = clinic.open_case()
    assert unmet(clinic, case_id, "consent.signed") == ["consent.signed"]
    clinic.consent(case_id, "2025-1")
    assert unmet(clinic, case_id, "consent.signed") == ["consent.signed"]
    clinic.consent(case_id, "2026-1")
    assert unmet(clinic, case_id, "consent.signed") == []
    assert [c.version for c in clinic.rows(Consent, case_id)] == ["2025-1", "2026-1"]


def test_a_new_consent_version_makes_older_consents_lapse_until_the_patient_reconsents(clinic):
    case_id = clinic.case_in("delivery.awaiting_prescription")
    newer = Settings(consent_version="2027-1")

    with pytest.raises(TransitionBlocked) as refused:
        clinic.fire(case_id, "prescribe", rules=newer)
    assert [u.code for u in refused.value.unmet] == ["consent.signed"]
    assert "version 2027-1" in refused.value.unmet[0].message

    clinic.consent(case_id, "2027-1")
    assert clinic.fire(case_id, "prescribe", rules=newer).state == "delivery.prescribed"


def test_a_consent_signed_in_the_future_is_refused(clinic):
    case_id = clinic.open_case()
    # Signed at the clinic's time, recorded by a service whose clock is 2 minutes behind.
    with pytest.raises(ValidationFailed) as refused:
        clinic.consent(case_id, now=clinic.now - timedelta(minutes=2))
    assert refused.value.errors[0]["loc"] == ["body", "signed_at"]
    assert clinic.rows(Consent, case_id) == []


# -- criteria.adult: today, in the timezone setting ---------------------------------------

EARLY_UTC = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
"""2 November in UTC; still 1 November in Los Angeles."""


def facts_with_birthday(born: date, zone: str, now: datetime = EARLY_UTC) -> CaseFacts:
    case = Case(id=1, patient_ref="p", patient_state="CA", state="x", phase="x")
    profile = Profile(id=1, case_id=1, date_of_birth=born, pregnant=False, breastfeeding=False)
    return CaseFacts(
        case=case, now=now, rules=Settings(timezone=zone), preloaded={"profile": profile}
    )


@pytest.mark.parametrize(
    ("zone", "born", "adult"),
    [
        ("UTC", date(2008, 11, 2), True),  # the 18th birthday is today
        ("UTC", date(2008, 11, 3), False),  # tomorrow
        ("America/Los_Angeles", date(2008, 11, 2), False),  # still the day before there
        ("America/Los_Angeles", date(2008, 11, 1), True),
        ("Pacific/Kiritimati", date(2008, 11, 2), True),
    ],
)
def test_adult_from_the_18th_birthday_as_the_timezone_setting_dates_it(zone, born, adult):
    message = GUARDS["criteria.adult"](facts_with_birthday(born, zone))
    assert (message is None) is adult
    if not adult:
        assert "at least 18 years old" in message


@pytest.mark.parametrize(("today", "adult"), [(date(2026, 2, 28), False), (date(2026, 3, 1), True)])
def test_born_on_29_february_is_of_age_on_1_march(today, adult):
    now = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    facts = facts_with_birthday(date(2008, 2, 29), "UTC", now)
    assert (GUARDS["criteria.adult"](facts) is None) is adult


def test_the_adult_age_is_a_setting(clinic):
    case_id = clinic.case_in("evaluation", profile={"date_of_birth": date(2006, 1, 1)})
    assert unmet(clinic, case_id, "criteria.adult") == []
    older = Settings(adult_age_years=21)
    assert unmet(clinic, case_id, "criteria.adult", rules=older) == ["criteria.adult"]


# -- contraindication.hypertension: the mean of the window, else the latest reading --------


@pytest.mark.parametrize(
    ("readings", "met"),
    [
        ([(139, 89), (141, 85)], False),  # systolic mean exactly 140
        ([(130, 89), (120, 91)], False),  # diastolic mean exactly 90
        ([(139, 89), (140, 88)], True),  # 139.5/88.5
        ([(139, 89)], True),
    ],
)
def test_the_mean_is_below_the_limit_only_when_both_means_are_below_it(clinic, readings, met):
    case_id = clinic.open_case()
    clinic.history(case_id)
    for systolic, diastolic in readings:
        clinic.vital(case_id, systolic, diastolic, days_ago=1)
    expected = [] if met else ["contraindication.hypertension"]
    assert unmet(clinic, case_id, "contraindication.hypertension") == expected


def test_readings_older_than_the_window_leave_the_mean(clinic):
    case_id = clinic.open_case()
    clinic.history(case_id)
    clinic.vital(case_id, 170, 100, days_ago=30.01)
    clinic.vital(case_id, 130, 80, days_ago=30)  # exactly 30 days: in the window
    assert unmet(clinic, case_id, "contraindication.hypertension") == []


@pytest.mark.parametrize(("reading", "met"), [((150, 85), False), ((125, 80), True)])
def test_without_a_recent_reading_the_latest_decides(clinic, reading, met):
    case_id = clinic.open_case()
    clinic.history(case_id)
    clinic.vital(case_id, 110, 70, days_ago=45)
    clinic.vital(case_id, *reading, days_ago=31)
    facts = clinic.facts(case_id)
    message = GUARDS["contraindication.hypertension"](facts)
    assert (message is None) is met
    if not met:
        assert message.startswith("The latest blood pressure (")
        assert "150/85" in message and "none within the last 30 days" in message


def test_with_no_reading_at_all_a_reading_is_asked_for(clinic):
    case_id = clinic.open_case()
    clinic.history(case_id)
    assert GUARDS["contraindication.hypertension"](clinic.facts(case_id)) == (
        "Record a blood-pressure reading."
    )


# -- vitals.recent and screening.interactions at their boundaries ---------------------------


@pytest.mark.parametrize(("days", "met"), [(6.99, True), (7, True), (7.01, False)])
def test_vitals_recent_boundary(clinic, days, met):
    case_id = clinic.open_case()
    clinic.vital(case_id, days_ago=days)
    assert unmet(clinic, case_id, "vitals.recent") == ([] if met else ["vitals.recent"])


def test_vitals_recent_window_is_a_setting(clinic):
    case_id = clinic.open_case()
    clinic.vital(case_id, days_ago=10)
    assert unmet(clinic, case_id, "vitals.recent") == ["vitals.recent"]
    assert unmet(clinic, case_id, "vitals.recent", rules=Settings(vitals_recent_days=10)) == []


@pytest.mark.parametrize(("minutes", "met"), [(0, True), (1, False)])
def test_a_screening_counts_for_30_days_and_no_longer(clinic, minutes, met):
    case_id = clinic.open_case()
    clinic.screen(case_id)
    clinic.tick(days=30, minutes=minutes)
    expected = [] if met else ["screening.interactions"]
    assert unmet(clinic, case_id, "screening.interactions") == expected


# -- contraindications from the new fields ----------------------------------------------------


@pytest.mark.parametrize(
    ("fact", "field", "code"),
    [
        ("history", "psychosis_or_mania_history", "contraindication.psychosis"),
        ("history", "aneurysm_avm_or_ich", "contraindication.cardiovascular"),
        ("history", "recent_mi_or_stroke", "contraindication.cardiovascular"),
        ("profile", "pregnant", "contraindication.pregnancy"),
        ("profile", "breastfeeding", "contraindication.pregnancy"),
    ],
)
def test_each_new_flag_fails_its_contraindication_alone(clinic, fact, field, code):
    case_id = clinic.case_in("evaluation", **{fact: {field: True}})
    contraindications = [c for c in ONGOING if c.startswith("contraindication.")]
    assert unmet(clinic, case_id, *contraindications) == [code]
    assert GUARDS[code](clinic.facts(case_id))


# -- once approved: who writes, and what a new contraindication does ------------------------


@pytest.mark.parametrize("fact", ["history", "profile"])
def test_once_approved_only_a_clinician_writes_history_and_profile(clinic, fact):
    case_id = clinic.case_in("delivery.awaiting_prescription")
    write = getattr(clinic, fact)
    before = clinic.snapshot(case_id)

    with pytest.raises(Forbidden, match="only a clinician"):
        write(case_id, actor=clinic.coordinator)

    assert clinic.snapshot(case_id) == before
    write(case_id, actor=clinic.clinician)
    assert FACT_BY_NAME[fact].approved_roles == ("clinician",)


def test_before_approval_a_hold_does_not_make_the_history_clinician_only(clinic):
    case_id = clinic.case_in("on_hold", held_from="evaluation")
    clinic.profile(case_id, actor=clinic.coordinator)
    clinic.history(case_id, actor=clinic.coordinator, insomnia_mood_driven=None)


def test_a_coordinator_still_records_consent_on_an_approved_case(clinic):
    case_id = clinic.case_in("delivery.awaiting_prescription")
    assert clinic.consent(case_id, "2027-1").version == "2027-1"
    assert {f.name for f in FACT_BY_NAME.values() if f.approved_roles} == {"history", "profile"}


def new_contraindication_events(clinic: Clinic, case_id: int) -> list[tuple[str, str, bool]]:
    return [
        (e.description, e.severity, e.recorded_by_system)
        for e in clinic.rows(AdverseEvent, case_id)
        if e.description.startswith("new contraindication")
    ]


@pytest.mark.parametrize(
    ("fact", "change", "code"),
    [
        ("history", {"recent_mi_or_stroke": True}, "contraindication.cardiovascular"),
        ("history", {"psychosis_or_mania_history": True}, "contraindication.psychosis"),
        ("history", {"uncontrolled_hypertension": True}, "contraindication.hypertension"),
        ("profile", {"pregnant": True}, "contraindication.pregnancy"),
    ],
)
def test_a_new_contraindication_on_an_approved_case_holds_it(clinic, fact, change, code):
    case_id = clinic.case_in("integration")
    getattr(clinic, fact)(case_id, **change)

    assert new_contraindication_events(clinic, case_id) == [
        (f"new contraindication: {code}", "severe", True)
    ]
    case = clinic.case(case_id)
    assert (case.state, case.held_from) == ("on_hold", "integration")
    kinds = [(e.kind, e.actor_role, e.trigger) for e in clinic.events(case_id)[-3:]]
    assert kinds == [
        ("fact", "clinician", None),
        ("fact", "system", None),
        ("transition", "system", "hold"),
    ]
    (event,) = [e for e in clinic.rows(AdverseEvent, case_id) if e.resolved_at is None]
    assert event.kind == "other"


def test_each_contraindication_found_at_once_is_its_own_event(clinic):
    case_id = clinic.case_in("delivery.awaiting_prescription")
    clinic.history(case_id, sleep_apnea=True, substance_use_disorder_history=True)
    assert [d for d, _, _ in new_contraindication_events(clinic, case_id)] == [
        "new contraindication: contraindication.substance_use",
        "new contraindication: contraindication.respiratory",
    ]
    assert clinic.case(case_id).state == "on_hold"


def test_no_event_when_nothing_newly_fails(clinic):
    case_id = clinic.case_in("delivery.awaiting_prescription")
    clinic.history(case_id, insomnia_nights_per_week=6, sleep_apnea=True)
    clinic.resolve(case_id, clinic.rows(AdverseEvent, case_id)[0].id)

    clinic.history(case_id, insomnia_nights_per_week=7, sleep_apnea=True)  # still failing
    clinic.history(case_id, insomnia_nights_per_week=7, sleep_apnea=False)  # met again
    clinic.profile(case_id, date_of_birth=date(1984, 6, 16))

    assert len(new_contraindication_events(clinic, case_id)) == 1


def test_no_event_before_approval(clinic):
    case_id = clinic.case_in("evaluation")
    clinic.profile(case_id, pregnant=True)
    assert new_contraindication_events(clinic, case_id) == []
    assert clinic.case(case_id).state == "evaluation"


def test_a_first_profile_on_an_approved_case_that_shows_a_contraindication_holds(clinic):
    """A case approved before profiles existed: the missing record was no finding."""
    from sqlalchemy import delete
    from sqlmodel import col

    from models.db import session_scope

    case_id = clinic.case_in("delivery.awaiting_prescription")
    with session_scope(clinic.engine) as session:
        session.execute(delete(Profile).where(col(Profile.case_id) == case_id))
    clinic.profile(case_id, breastfeeding=True)
    assert [d for d, _, _ in new_contraindication_events(clinic, case_id)] == [
        "new contraindication: contraindication.pregnancy"
    ]


# -- requirements of some moves only ------------------------------------------------------


def test_resume_checks_the_ongoing_set_only_past_prescribing(clinic):
    evaluation = clinic.case_in("on_hold", held_from="evaluation")
    integration = clinic.case_in("on_hold", held_from="integration")
    minor = {"date_of_birth": date(2010, 1, 1)}
    for case_id in (evaluation, integration):
        clinic.profile(case_id, **minor)  # criteria.adult is not a contraindication: no event

    assert fire_codes(clinic, integration, "resume") == ["criteria.adult"]
    assert fire_codes(clinic, evaluation, "resume") == []
    assert clinic.case(evaluation).state == "evaluation"


def test_the_listing_shows_what_resume_to_its_destination_needs(clinic):
    case_id = clinic.case_in("on_hold", held_from="monitoring")
    clinic.profile(case_id, date_of_birth=date(2010, 1, 1))
    options = clinic.call(cases.list_triggers, case_id=case_id, actor=clinic.clinician)
    (resume,) = [o for o in options if o.trigger == "resume"]
    assert (resume.dest, [u.code for u in resume.unmet]) == ("monitoring", ["criteria.adult"])


@pytest.mark.parametrize(
    ("dose_mg", "blocked"), [(50.0, []), (100.0, []), (150.0, ["adverse_events.resolved"])]
)
def test_a_raise_checks_more_than_a_lower_or_equal_dose(clinic, dose_mg, blocked):
    case_id = clinic.case_in("monitoring")  # prescribed 100 mg
    clinic.adverse_event(case_id, "nausea", "mild")
    body = body_for("adjust_dose", dose_mg=dose_mg)
    assert fire_codes(clinic, case_id, "adjust_dose", body=body) == blocked


def test_a_raise_checks_the_ongoing_set(clinic):
    case_id = clinic.case_in("monitoring")
    clinic.add_med(case_id, "sertraline")  # the screening is stale now
    raise_ = body_for("adjust_dose", dose_mg=150.0)
    lower = body_for("adjust_dose", dose_mg=75.0)
    assert fire_codes(clinic, case_id, "adjust_dose", body=raise_) == ["screening.interactions"]
    assert fire_codes(clinic, case_id, "adjust_dose", body=lower) == []
    # The new dose is now 75 mg: going back to 100 is a raise.
    assert fire_codes(clinic, case_id, "adjust_dose", body=body_for("adjust_dose")) == [
        "screening.interactions"
    ]


def test_the_ongoing_set_is_met_by_the_plain_facts_helper(now):
    case = Case(id=1, patient_ref="p", patient_state="CA", state="x", phase="x")
    facts = CaseFacts(case=case, now=now, preloaded=ongoing_met(now))
    assert evaluate(ONGOING, facts) == []
    assert set(ONGOING) <= set(TRIGGER_BY_NAME["ship"].requires)


def test_history_defaults_for_rows_written_before_the_new_fields(clinic):
    """A history stored without the new flags reads them as false (migration 0009)."""
    history = History(case_id=1, **{k: v for k, v in ELIGIBLE_HISTORY.items() if k in OLD_FIELDS})
    assert (history.insomnia_mood_driven, history.recent_mi_or_stroke) == (False, False)


OLD_FIELDS = {
    "insomnia_nights_per_week",
    "insomnia_duration_months",
    "diagnoses",
    "failed_antidepressant_trials",
    "cbti_completed",
    "seeking_sleep_med_replacement",
    "substance_use_disorder_history",
    "uncontrolled_hypertension",
    "active_psychosis",
    "severe_psychiatric_instability",
    "significant_breathing_problems",
    "sleep_apnea",
}
