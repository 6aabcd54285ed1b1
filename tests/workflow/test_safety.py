"""The service's own safety rules (SPEC.md 4.6): holds, and every event it records itself.

Expectations are written out from the SPEC, not read from ``workflow.risk``, so that
a wrong row of its tables fails here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

import pytest

from models.db import session_scope
from models.facts import AdverseEvent, Assessment, CareSession
from models.schemas import AdverseEventKind, Severity
from models.settings import Settings
from tests.workflow.conftest import Clinic
from workflow import cases, risk, safety, unit
from workflow.definition import ACTIVE_STATES

KINDS: tuple[str, ...] = get_args(AdverseEventKind)
SEVERITIES: tuple[str, ...] = get_args(Severity)


def spec_holds(kind: str, severity: str) -> bool:
    """SPEC.md 4.6, word for word: a severe event; any respiratory depression or suicidal
    ideation; a moderate substance misuse or psychiatric event."""
    if severity == "severe" or kind in ("respiratory_depression", "suicidal_ideation"):
        return True
    return severity == "moderate" and kind in ("substance_misuse", "psychiatric_event")


def new_events(clinic: Clinic, case_id: int, since: int) -> list[tuple]:
    return [
        (e.kind, e.actor_role, e.trigger or e.data.get("fact"), e.to_state)
        for e in clinic.events(case_id)[since:]
    ]


def system_events(clinic: Clinic, case_id: int) -> list[tuple[str, str]]:
    return [
        (e.kind, e.severity) for e in clinic.rows(AdverseEvent, case_id) if e.recorded_by_system
    ]


# -- holds -----------------------------------------------------------------------------------


def test_the_kinds_are_the_spec_s_fifteen():
    assert len(KINDS) == 15 and {"worsened_depression", "hypnotic_restarted"} <= set(KINDS)
    assert [row.kind for row in risk.EVENT_KINDS] == list(KINDS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("severity", SEVERITIES)
def test_each_kind_and_severity_holds_an_active_case_as_the_spec_says(
    clinic, case_in, kind, severity
):
    case_id = case_in("evaluation", prepared=False)
    seen = len(clinic.events(case_id))

    event = clinic.adverse_event(case_id, kind, severity)

    held = spec_holds(kind, severity)
    assert safety.needs_hold(event) is held
    expected = [("fact", "coordinator", "adverse_event", None)]
    if held:
        expected.append(("transition", "system", "hold", "on_hold"))
    assert new_events(clinic, case_id, seen) == expected
    case = clinic.case(case_id)
    assert (case.state, case.held_from) == (
        ("on_hold", "evaluation") if held else ("evaluation", None)
    )


def test_a_hold_names_the_event_and_has_no_user(clinic, case_in):
    case_id = case_in("monitoring")
    event = clinic.adverse_event(case_id, "substance_misuse", "moderate")
    hold = clinic.events(case_id)[-1]
    assert (hold.trigger, hold.actor_id, hold.actor_role) == ("hold", None, "system")
    assert f"#{event.id}" in hold.data["reason"]


@pytest.mark.parametrize("state", ACTIVE_STATES)
def test_every_active_state_is_held_by_a_severe_event(clinic, case_in, state):
    case_id = case_in(state)
    clinic.adverse_event(case_id, "psychiatric_event", "severe")
    case = clinic.case(case_id)
    assert (case.state, case.held_from) == ("on_hold", state)


@pytest.mark.parametrize("state", ["on_hold", "withdrawn", "discharged", "ineligible"])
def test_an_event_that_holds_on_a_held_or_closed_case_is_recorded_only(clinic, case_in, state):
    case_id = case_in(state)
    seen = len(clinic.events(case_id))

    clinic.adverse_event(case_id, "suicidal_ideation", "severe")

    assert clinic.case(case_id).state == state
    assert new_events(clinic, case_id, seen) == [("fact", "coordinator", "adverse_event", None)]


# -- PHQ-9 item 9 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("item9", "severity"), [(0, None), (1, "moderate"), (2, "severe")])
def test_phq9_item9_records_suicidal_ideation_by_the_system_and_holds(
    clinic, case_in, item9, severity
):
    case_id = case_in("delivery.shipped")
    seen = len(clinic.events(case_id))

    phq9 = clinic.assess(case_id, "phq9", 8, item9=item9, taken_at=clinic.now - timedelta(hours=2))

    if severity is None:
        assert clinic.rows(AdverseEvent, case_id) == []
        assert new_events(clinic, case_id, seen) == [("fact", "coordinator", "assessment", None)]
        assert clinic.case(case_id).state == "delivery.shipped"
        return
    (event,) = clinic.rows(AdverseEvent, case_id)
    assert (event.kind, event.severity, event.recorded_by_system) == (
        "suicidal_ideation",
        severity,
        True,
    )
    assert (event.assessment_id, event.onset_at) == (phq9.id, phq9.taken_at)
    assert f"#{phq9.id}" in event.description
    assert new_events(clinic, case_id, seen) == [
        ("fact", "coordinator", "assessment", None),
        ("fact", "system", "adverse_event", None),
        ("transition", "system", "hold", "on_hold"),
    ]
    case = clinic.case(case_id)
    assert (case.state, case.held_from) == ("on_hold", "delivery.shipped")


def test_item9_of_3_is_severe(clinic, case_in):
    case_id = case_in("evaluation")
    clinic.assess(case_id, "phq9", 27, item9=3)
    assert system_events(clinic, case_id) == [("suicidal_ideation", "severe")]


def test_phq9_item9_on_a_held_case_records_the_event_without_another_hold(clinic, case_in):
    case_id = case_in("on_hold", held_from="integration")
    seen = len(clinic.events(case_id))

    clinic.assess(case_id, "phq9", 8, item9=1)

    assert [e[2] for e in new_events(clinic, case_id, seen)] == ["assessment", "adverse_event"]
    assert clinic.case(case_id).held_from == "integration"


def test_the_item9_threshold_comes_from_the_rules_and_one_phq9_makes_one_event(clinic, case_in):
    case_id = case_in("on_hold", held_from="evaluation")
    phq9 = clinic.assess(case_id, "phq9", 8, item9=1)
    assert len(clinic.rows(AdverseEvent, case_id)) == 1

    def apply(rules: Settings) -> None:
        with session_scope(clinic.engine) as session:
            write = unit.begin(
                session,
                case_id=case_id,
                action="assessment",
                actor=clinic.coordinator,
                now=clinic.now,
                rules=rules,
            )
            safety.after_assessment(write, session.get_one(Assessment, phq9.id))

    apply(Settings(phq9_item9_min=1))  # looked at again: no second event for the same PHQ-9
    assert len(clinic.rows(AdverseEvent, case_id)) == 1

    other = clinic.open_case()
    clinic.assess(other, "phq9", 8, item9=1)
    assert clinic.rows(AdverseEvent, other) != []
    with session_scope(clinic.engine) as session:
        write = unit.begin(
            session,
            case_id=other,
            action="assessment",
            actor=clinic.coordinator,
            now=clinic.now,
            rules=Settings(phq9_item9_min=2),
        )
        assert not risk.SUICIDE_ITEM.fires(1, write.rules)
        assert risk.SUICIDE_ITEM.fires(2, write.rules)


def test_resume_waits_for_the_resolution_and_the_reassessment(clinic, case_in):
    case_id = case_in("monitoring")
    clinic.assess(case_id, "phq9", 8, item9=2)
    (event,) = clinic.rows(AdverseEvent, case_id)

    options = clinic.call(_list_triggers, case_id=case_id, actor=clinic.clinician)
    assert options["resume"] == ["adverse_events.resolved", "safety.reassessed"]
    clinic.resolve(case_id, event.id)
    clinic.tick(hours=1)
    clinic.safety_plan(case_id)

    assert clinic.fire(case_id, "resume").state == "monitoring"


def _list_triggers(session, **kwargs) -> dict[str, list[str]]:
    return {o.trigger: [u.code for u in o.unmet] for o in cases.list_triggers(session, **kwargs)}


# -- worsening against the baselines ---------------------------------------------------------


def dosed_case(clinic: Clinic, **baselines: int) -> int:
    """A case in integration, dosed once; its baselines are ELIGIBLE_SCORES (PHQ-9 18, ISI 20)
    unless ``baselines`` records others just before the dose."""
    case_id = clinic.case_in("integration", prepared=False)
    for instrument, score in baselines.items():
        clinic.assess(case_id, instrument, score)  # type: ignore[arg-type]
    clinic.tick(minutes=5)
    clinic.session(case_id, "preparation")
    clinic.dose(case_id)
    clinic.tick(days=1)
    return case_id


@pytest.mark.parametrize(
    ("baseline", "score", "worsened"),
    [
        (20, 25, False),
        (20, 26, True),
        (22, 27, False),
        (22, 28, True),
        (23, 27, False),
        (23, 28, True),  # a baseline above 22 cannot rise 6 points: 28 counts
        (28, 28, True),
    ],
)
def test_an_isi_after_the_first_dose_is_worsened_insomnia_at_the_spec_s_threshold(
    clinic, baseline, score, worsened
):
    case_id = dosed_case(clinic, isi=baseline)
    seen = len(clinic.events(case_id))

    isi = clinic.assess(case_id, "isi", score)

    events = clinic.rows(AdverseEvent, case_id)
    if not worsened:
        assert events == []
        assert new_events(clinic, case_id, seen) == [("fact", "coordinator", "assessment", None)]
        return
    (event,) = events
    assert (event.kind, event.severity, event.recorded_by_system) == (
        "worsened_insomnia",
        "moderate",
        True,
    )
    assert (event.assessment_id, event.onset_at) == (isi.id, isi.taken_at)
    assert f"{score - baseline} above the baseline of {baseline}" in event.description
    assert clinic.case(case_id).state == "integration"  # moderate: no hold


@pytest.mark.parametrize(
    ("baseline", "score", "worsened"),
    [
        (10, 14, False),
        (10, 15, True),  # 5 points above the baseline
        (17, 19, False),
        (17, 20, True),  # reaches 20 from a baseline below it
        (20, 24, False),  # a baseline of 20 is not below 20: only +5 counts
        (20, 25, True),
        (2, 6, False),
        (2, 7, True),
    ],
)
def test_a_phq9_after_the_first_dose_is_worsened_depression_at_the_spec_s_threshold(
    clinic, baseline, score, worsened
):
    case_id = dosed_case(clinic, phq9=baseline)
    item9 = max(0, score - 24)
    clinic.assess(case_id, "phq9", score, item9=item9)

    found = [e for e in system_events(clinic, case_id) if e[0] == "worsened_depression"]
    assert found == ([("worsened_depression", "moderate")] if worsened else [])


def test_the_baseline_is_the_latest_score_before_the_first_dose(clinic):
    case_id = clinic.case_in("integration", prepared=False)
    clinic.assess(case_id, "isi", 10)  # a better score, after the eligibility ISI of 20
    clinic.tick(minutes=5)
    clinic.session(case_id, "preparation")
    clinic.dose(case_id)
    clinic.tick(days=1)

    clinic.assess(case_id, "isi", 16)

    (event,) = clinic.rows(AdverseEvent, case_id)
    assert "6 above the baseline of 10" in event.description


def test_a_score_before_any_dose_or_dated_before_it_is_not_compared(clinic):
    case_id = clinic.case_in("integration", prepared=False)
    clinic.assess(case_id, "isi", 28)  # no dose yet
    clinic.assess(case_id, "phq9", 24, item9=0)
    assert system_events(clinic, case_id) == []

    clinic.session(case_id, "preparation")
    dose = clinic.dose(case_id)
    clinic.tick(days=1)
    clinic.assess(case_id, "isi", 12, taken_at=dose.completed_at - timedelta(minutes=1))

    assert system_events(clinic, case_id) == []


def test_a_dosing_session_entered_late_checks_the_scores_taken_since(clinic):
    """An ISI of 26 recorded before anyone entered the dose it followed: the late session
    makes it a post-dose score, six above the baseline of 20."""
    case_id = clinic.case_in("integration", prepared=False)
    clinic.session(case_id, "preparation")
    clearance = clinic.clearance(case_id)
    fields = clinic.dosing_fields(case_id, clearance.created_at)
    clinic.now = fields["completed_at"] + timedelta(hours=1)
    isi = clinic.assess(case_id, "isi", 26)
    assert clinic.rows(AdverseEvent, case_id) == []

    clinic.session(case_id, "dosing", clearance_id=clearance.id, **fields)

    (event,) = clinic.rows(AdverseEvent, case_id)
    assert (event.kind, event.assessment_id, event.onset_at) == (
        "worsened_insomnia",
        isi.id,
        isi.taken_at,
    )
    last = clinic.events(case_id)[-1]
    assert (last.actor_role, last.data["fact"]) == ("system", "adverse_event")


def test_a_late_baseline_checks_the_scores_after_the_first_dose_again(clinic):
    case_id = dosed_case(clinic)  # baseline ISI 20
    first_dose = clinic.rows(CareSession, case_id)[-1].dosed_at
    clinic.assess(case_id, "isi", 25)  # +5: nothing yet
    assert clinic.rows(AdverseEvent, case_id) == []

    clinic.assess(case_id, "isi", 19, taken_at=first_dose - timedelta(minutes=10))

    assert system_events(clinic, case_id) == [("worsened_insomnia", "moderate")]


def test_a_score_is_flagged_once_however_often_the_rules_run(clinic):
    case_id = dosed_case(clinic)
    clinic.assess(case_id, "isi", 27)
    clinic.assess(case_id, "gad7", 9)
    clinic.add_med(case_id, "sertraline")
    clinic.session(case_id, "integration")
    assert system_events(clinic, case_id) == [("worsened_insomnia", "moderate")]
    clinic.assess(case_id, "isi", 27)  # a second worsened score is a second event
    assert system_events(clinic, case_id) == [("worsened_insomnia", "moderate")] * 2


def test_the_worsening_thresholds_come_from_the_rules(clinic):
    case_id = dosed_case(clinic)
    clinic.assess(case_id, "isi", 23)  # +3: nothing under the defaults
    clinic.assess(case_id, "phq9", 21, item9=0)  # +3 from 18, which is below 20: fires
    assert system_events(clinic, case_id) == [("worsened_depression", "moderate")]

    with session_scope(clinic.engine) as session:
        write = unit.begin(
            session,
            case_id=case_id,
            action="assessment",
            actor=clinic.coordinator,
            now=clinic.now,
            rules=Settings(isi_worsening_points=3),
        )
        safety.check_scores(write)

    assert system_events(clinic, case_id) == [
        ("worsened_depression", "moderate"),
        ("worsened_insomnia", "moderate"),
    ]


def test_the_worsening_rows_read_their_settings():
    isi, phq9 = risk.WORSENING
    rules = Settings(isi_worsening_points=4, phq9_worsening_points=3, phq9_severe_score=15)
    assert (isi.threshold(20, rules), isi.threshold(25, rules)) == (24, 28)
    assert (phq9.threshold(10, rules), phq9.threshold(14, rules)) == (13, 15)
    assert phq9.threshold(16, rules) == 19


# -- medications -------------------------------------------------------------------------------


def test_a_benzodiazepine_added_on_an_approved_case_is_a_hypnotic_restarted(clinic, case_in):
    case_id = case_in("delivery.prescribed")
    clinic.add_med(case_id, "lorazepam")
    (event,) = clinic.rows(AdverseEvent, case_id)
    assert (event.kind, event.severity, event.recorded_by_system) == (
        "hypnotic_restarted",
        "moderate",
        True,
    )
    assert "lorazepam" in event.description and "benzodiazepine" in event.description
    assert clinic.case(case_id).state == "delivery.prescribed"  # moderate: no hold


def test_a_z_drug_made_active_again_on_a_held_approved_case_is_one_too(clinic, case_in):
    case_id = case_in("integration")
    medication = clinic.add_med(case_id, "zolpidem")
    assert system_events(clinic, case_id) == [("hypnotic_restarted", "moderate")]
    clinic.set_med_status(case_id, medication.id, "stopped", actor=clinic.clinician)
    clinic.fire(case_id, "hold")

    clinic.set_med_status(case_id, medication.id, "active")

    assert system_events(clinic, case_id) == [("hypnotic_restarted", "moderate")] * 2


def test_a_hypnotic_before_approval_is_the_taper_track_s_not_an_event(clinic, case_in):
    case_id = case_in("evaluation", prepared=False)
    clinic.add_med(case_id, "Xanax")
    assert clinic.rows(AdverseEvent, case_id) == []


def test_a_blocking_medication_on_an_approved_case_is_a_new_interacting_medication(clinic, case_in):
    case_id = case_in("monitoring")
    clinic.add_med(case_id, "oxycodone")
    (event,) = clinic.rows(AdverseEvent, case_id)
    assert (event.kind, event.severity) == ("other", "moderate")
    assert event.description.startswith("new interacting medication: oxycodone")
