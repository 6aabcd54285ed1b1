"""The one shared machine, fired directly on plain ``CaseModel`` wrappers (no database)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from models.facts import AdverseEvent, Assessment
from models.tables import Case
from tests.workflow.conftest import ongoing_met
from workflow.casefacts import CaseFacts
from workflow.definition import ACTIVE_STATES, TRIGGER_BY_NAME, Actor
from workflow.machine import MACHINE, CaseModel, MachineError, fire, is_invalid

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
LICENSED = Actor(id=1, role="clinician", license_states=("CA",))


def model(state: str, held_from: str | None = None, **preloaded) -> CaseModel:
    """A model whose facts meet the ongoing-safety set, with no adverse event open."""
    case = Case(id=1, patient_ref="p", patient_state="CA", state=state, phase="x")
    safe: dict[str, Any] = ongoing_met(NOW) | {"open_adverse_events": []}
    facts = CaseFacts(case=case, now=NOW, actor=LICENSED, preloaded=safe | preloaded)
    return CaseModel(state=state, held_from=held_from, facts=facts)


def open_event() -> AdverseEvent:
    return AdverseEvent(
        id=3, case_id=1, kind="nausea", severity="mild", description="x", onset_at=NOW
    )


def test_a_trigger_without_guards_moves_the_model():
    m = model("delivery.shipped", history=None, profile=None)
    assert fire(m, TRIGGER_BY_NAME["confirm_delivery"]) is True
    assert (m.state, m.unmet) == ("integration", [])


def test_a_guarded_trigger_moves_the_model_when_its_guards_are_met():
    m = model("delivery.prescribed")
    assert fire(m, TRIGGER_BY_NAME["ship"]) is True
    assert (m.state, m.unmet) == ("delivery.shipped", [])


def test_an_unmet_guard_leaves_the_model_and_lists_every_unmet_code():
    m = model("monitoring", open_adverse_events=[open_event()])

    assert fire(m, TRIGGER_BY_NAME["discharge"]) is False

    assert m.state == "monitoring"
    assert [u.code for u in m.unmet] == ["adverse_events.resolved", "assessments.recent"]


def test_a_trigger_from_the_wrong_state_raises_machine_error():
    m = model("evaluation")
    assert is_invalid("evaluation", TRIGGER_BY_NAME["ship"])
    with pytest.raises(MachineError):
        fire(m, TRIGGER_BY_NAME["ship"])
    assert m.state == "evaluation"


@pytest.mark.parametrize("held_from", ACTIVE_STATES)
def test_resume_goes_back_to_the_state_held_from(held_from):
    m = model("on_hold", held_from=held_from)
    assert fire(m, TRIGGER_BY_NAME["resume"]) is True
    assert m.state == held_from


def test_resume_with_an_open_event_is_refused_by_its_guard_only():
    m = model("on_hold", held_from="integration", open_adverse_events=[open_event()])
    assert fire(m, TRIGGER_BY_NAME["resume"]) is False
    assert (m.state, [u.code for u in m.unmet]) == ("on_hold", ["adverse_events.resolved"])


def test_resume_without_a_held_from_state_has_nowhere_to_go():
    m = model("on_hold", held_from=None)
    assert fire(m, TRIGGER_BY_NAME["resume"]) is False
    assert (m.state, m.unmet) == ("on_hold", [])


def test_adjust_dose_is_internal():
    latest = {f"latest_assessment:{i}": _assessment(i) for i in ("phq9", "isi")}
    m = model("monitoring", **latest)
    assert fire(m, TRIGGER_BY_NAME["adjust_dose"]) is True
    assert m.state == "monitoring"


def _assessment(instrument: str) -> Assessment:
    return Assessment(id=1, case_id=1, instrument=instrument, score=10, taken_at=NOW)


def test_firing_keeps_no_model_on_the_shared_machine():
    fire(model("delivery.prescribed"), TRIGGER_BY_NAME["ship"])
    assert MACHINE.models == []


def test_the_shared_machine_is_safe_to_fire_from_many_threads():
    """Each thread's model ends where its own trigger leads, never another's."""
    cases = [
        ("delivery.prescribed", None, "ship", "delivery.shipped"),
        ("delivery.shipped", None, "confirm_delivery", "integration"),
        ("on_hold", "monitoring", "resume", "monitoring"),
        ("on_hold", "evaluation", "resume", "evaluation"),
        ("integration", None, "hold", "on_hold"),
    ]

    def run(i: int) -> tuple[str, str]:
        state, held_from, trigger, expected = cases[i % len(cases)]
        m = model(state, held_from)
        fire(m, TRIGGER_BY_NAME[trigger])
        return m.state, expected

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, range(500)))

    assert all(got == expected for got, expected in results)
