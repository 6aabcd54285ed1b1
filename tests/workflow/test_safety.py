"""The service's own safety rules: holds on serious events, PHQ-9 item 9, worsened ISI."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.db import session_scope
from models.facts import AdverseEvent, Assessment
from models.settings import Settings
from tests.workflow.conftest import Clinic
from workflow import cases, safety, unit
from workflow.definition import ACTIVE_STATES

HOLDS = [
    ("nausea", "severe"),
    ("dissociation", "severe"),
    ("respiratory_depression", "mild"),
    ("respiratory_depression", "moderate"),
    ("suicidal_ideation", "mild"),
]
NO_HOLD = [("nausea", "mild"), ("dissociation", "moderate"), ("worsened_insomnia", "moderate")]


def new_events(clinic: Clinic, case_id: int, since: int) -> list[tuple]:
    return [
        (e.kind, e.actor_role, e.trigger or e.data.get("fact"), e.to_state)
        for e in clinic.events(case_id)[since:]
    ]


@pytest.mark.parametrize(("kind", "severity"), HOLDS)
def test_a_serious_event_puts_an_active_case_on_hold_at_once(clinic, case_in, kind, severity):
    case_id = case_in("monitoring")
    seen = len(clinic.events(case_id))
    version = clinic.case(case_id).version

    event = clinic.adverse_event(case_id, kind, severity)

    case = clinic.case(case_id)
    assert (case.state, case.held_from, case.version) == ("on_hold", "monitoring", version + 2)
    assert new_events(clinic, case_id, seen) == [
        ("fact", "coordinator", "adverse_event", None),
        ("transition", "system", "hold", "on_hold"),
    ]
    hold = clinic.events(case_id)[-1]
    assert hold.actor_id is None
    assert f"#{event.id}" in hold.data["reason"]


@pytest.mark.parametrize(("kind", "severity"), NO_HOLD)
def test_a_lesser_event_is_recorded_without_a_hold(clinic, case_in, kind, severity):
    case_id = case_in("integration")
    seen = len(clinic.events(case_id))

    clinic.adverse_event(case_id, kind, severity)

    assert clinic.case(case_id).state == "integration"
    assert new_events(clinic, case_id, seen) == [("fact", "coordinator", "adverse_event", None)]


@pytest.mark.parametrize("state", ACTIVE_STATES)
def test_every_active_state_is_held_by_a_severe_event(clinic, case_in, state):
    case_id = case_in(state)
    clinic.adverse_event(case_id, "psychiatric_event", "severe")
    case = clinic.case(case_id)
    assert (case.state, case.held_from) == ("on_hold", state)


@pytest.mark.parametrize("state", ["on_hold", "withdrawn", "discharged"])
def test_a_severe_event_on_a_held_or_closed_case_is_recorded_only(clinic, case_in, state):
    case_id = case_in(state)
    seen = len(clinic.events(case_id))

    clinic.adverse_event(case_id, "respiratory_depression", "severe")

    assert clinic.case(case_id).state == state
    assert new_events(clinic, case_id, seen) == [("fact", "coordinator", "adverse_event", None)]


# -- PHQ-9 item 9 --------------------------------------------------------------------------


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_item9_records_severe_suicidal_ideation_by_the_system_and_holds(
    clinic, case_in, item9
):
    case_id = case_in("delivery.shipped")
    seen = len(clinic.events(case_id))

    phq9 = clinic.assess(case_id, "phq9", 8, item9=item9)

    (event,) = clinic.rows(AdverseEvent, case_id)
    assert (event.kind, event.severity, event.recorded_by_system) == (
        "suicidal_ideation",
        "severe",
        True,
    )
    assert f"#{phq9.id}" in event.description
    assert new_events(clinic, case_id, seen) == [
        ("fact", "coordinator", "assessment", None),
        ("fact", "system", "adverse_event", None),
        ("transition", "system", "hold", "on_hold"),
    ]
    case = clinic.case(case_id)
    assert (case.state, case.held_from) == ("on_hold", "delivery.shipped")


@pytest.mark.parametrize("item9", [None, 0])
def test_phq9_without_a_positive_item9_records_nothing_more(clinic, case_in, item9):
    case_id = case_in("evaluation")
    seen = len(clinic.events(case_id))
    clinic.assess(case_id, "phq9", 22, item9=item9)
    assert clinic.rows(AdverseEvent, case_id) == []
    assert new_events(clinic, case_id, seen) == [("fact", "coordinator", "assessment", None)]


def test_phq9_item9_on_a_held_case_records_the_event_without_another_hold(clinic, case_in):
    case_id = case_in("on_hold", held_from="integration")
    seen = len(clinic.events(case_id))

    clinic.assess(case_id, "phq9", 8, item9=1)

    assert [e[2] for e in new_events(clinic, case_id, seen)] == ["assessment", "adverse_event"]
    assert clinic.case(case_id).held_from == "integration"


def test_the_held_case_cannot_resume_until_the_event_is_resolved(clinic, case_in):
    case_id = case_in("monitoring")
    clinic.assess(case_id, "phq9", 8, item9=2)
    (event,) = clinic.rows(AdverseEvent, case_id)

    options = clinic.call(_list_triggers, case_id=case_id, actor=clinic.clinician)
    assert options["resume"] == ["adverse_events.resolved"]
    clinic.resolve(case_id, event.id)

    assert clinic.fire(case_id, "resume").state == "monitoring"


def _list_triggers(session, **kwargs) -> dict[str, list[str]]:
    return {o.trigger: [u.code for u in o.unmet] for o in cases.list_triggers(session, **kwargs)}


# -- worsened insomnia ----------------------------------------------------------------------


def dosed_case(clinic: Clinic) -> int:
    """A case in integration whose baseline ISI was 20, dosed once."""
    case_id = clinic.case_in("integration", prepared=False)
    clinic.session(case_id, "preparation")
    clinic.dose(case_id)
    clinic.tick(days=1)
    return case_id


@pytest.mark.parametrize(("score", "worsened"), [(25, False), (26, True), (28, True)])
def test_an_isi_after_the_first_dose_six_points_above_baseline_is_worsened_insomnia(
    clinic, score, worsened
):
    case_id = dosed_case(clinic)
    seen = len(clinic.events(case_id))

    clinic.assess(case_id, "isi", score)

    events = clinic.rows(AdverseEvent, case_id)
    if worsened:
        (event,) = events
        assert (event.kind, event.severity, event.recorded_by_system) == (
            "worsened_insomnia",
            "moderate",
            True,
        )
        assert f"{score - 20} above the baseline of 20" in event.description
    else:
        assert events == []
    assert clinic.case(case_id).state == "integration"  # moderate: no hold
    assert [e[1] for e in new_events(clinic, case_id, seen)] == ["coordinator"] + (
        ["system"] if worsened else []
    )


def test_the_baseline_is_the_latest_isi_before_the_first_dose(clinic):
    case_id = clinic.case_in("integration", prepared=False)
    clinic.assess(case_id, "isi", 10)  # a better score, after the baseline of 20
    clinic.tick(minutes=5)
    clinic.session(case_id, "preparation")
    clinic.dose(case_id)
    clinic.tick(days=1)

    clinic.assess(case_id, "isi", 16)

    (event,) = clinic.rows(AdverseEvent, case_id)
    assert "6 above the baseline of 10" in event.description


def test_an_isi_before_any_dose_or_dated_before_it_is_not_compared(clinic):
    case_id = clinic.case_in("integration", prepared=False)
    clinic.assess(case_id, "isi", 28)  # no dose yet
    assert clinic.rows(AdverseEvent, case_id) == []

    clinic.session(case_id, "preparation")
    dose = clinic.dose(case_id)
    clinic.tick(days=1)
    clinic.assess(case_id, "isi", 28, taken_at=dose.completed_at - timedelta(minutes=1))

    assert clinic.rows(AdverseEvent, case_id) == []


def test_the_worsening_threshold_comes_from_the_rules(clinic):
    case_id = dosed_case(clinic)
    isi = clinic.assess(case_id, "isi", 23)  # +3: nothing under the defaults
    assert clinic.rows(AdverseEvent, case_id) == []

    with session_scope(clinic.engine) as session:
        write = unit.begin(
            session,
            case_id=case_id,
            action="assessment",
            actor=clinic.coordinator,
            now=clinic.now,
            rules=Settings(isi_worsening_points=3),
        )
        safety.after_assessment(write, session.get_one(Assessment, isi.id))

    assert [e.kind for e in clinic.rows(AdverseEvent, case_id)] == ["worsened_insomnia"]


def test_the_item9_threshold_comes_from_the_rules(clinic, case_in):
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

    apply(Settings(phq9_item9_min=2))
    assert len(clinic.rows(AdverseEvent, case_id)) == 1
    apply(Settings(phq9_item9_min=1))
    assert len(clinic.rows(AdverseEvent, case_id)) == 2


def test_needs_hold_follows_severity_and_kind():
    def event(kind: str, severity: str) -> AdverseEvent:
        return AdverseEvent(case_id=1, kind=kind, severity=severity, description="x")

    assert all(safety.needs_hold(event(k, s)) for k, s in HOLDS)
    assert not any(safety.needs_hold(event(k, s)) for k, s in NO_HOLD)
