"""Every (state, trigger) pair through ``workflow.cases.fire_trigger`` on a real case.

The pairs are generated from ``workflow.definition``, so a new state or
trigger is covered without touching this file; ``case_in`` (conftest) must
learn how to reach a new state, or these tests fail with a KeyError.
"""

from __future__ import annotations

import pytest

from models.facts import Dispense
from models.schemas import TransitionBody
from workflow.definition import ACTIVE_STATES, STATES, TRIGGER_BY_NAME, TRIGGERS
from workflow.errors import Conflict, InvalidTransition

PAIRS = [(s.name, t.name) for s in STATES for t in TRIGGERS]
ALLOWED = [(s, t) for s, t in PAIRS if s in TRIGGER_BY_NAME[t].sources]
REFUSED = [(s, t) for s, t in PAIRS if s not in TRIGGER_BY_NAME[t].sources]
TERMINAL = [s.name for s in STATES if s.terminal]
# SPEC.md section 2: triggers that leave on_hold only for a case held from some states.
HELD_EXITS = {"decline": ("evaluation",), "discharge": ("integration", "monitoring")}
# Adjusting a dose on hold needs a prescription: a case held from integration has one.
HELD_FOR = {**HELD_EXITS, "adjust_dose": ("integration",)}


def held_from_for(state: str, trigger: str) -> str:
    """Where a case ``case_in(state)`` is held from, so that ``trigger`` may leave it."""
    return HELD_FOR.get(trigger, ("evaluation",))[0] if state == "on_hold" else "evaluation"


def expected_destination(state: str, trigger: str, held_from: str | None) -> str | None:
    dest = TRIGGER_BY_NAME[trigger].dest
    if dest is None:  # an internal transition
        return state
    if trigger == "resume":
        return held_from
    return dest


def test_the_matrix_covers_both_kinds_of_pair():
    assert len(PAIRS) == len(ALLOWED) + len(REFUSED) == len(STATES) * len(TRIGGERS)
    assert ("evaluation", "approve") in ALLOWED
    assert ("on_hold", "hold") in REFUSED


def records_made_by(clinic, case_id: int, trigger: str) -> list[str]:
    """The facts a move records after its transition (``TriggerDef.then``, SPEC.md 4.5): the
    first dispense, its receipt, and the event of a withdrawal that leaves units behind."""
    if trigger == "ship":
        return ["dispense"]
    if trigger == "confirm_delivery":
        return ["dispense_receipt"]
    in_transit = any(d.received_at is None for d in clinic.rows(Dispense, case_id))
    if trigger == "withdraw" and (clinic.units(case_id) or in_transit):
        return ["adverse_event"]
    return []


@pytest.mark.parametrize(("state", "trigger"), ALLOWED)
def test_an_allowed_pair_moves_the_case_and_audits_it(clinic, case_in, state, trigger):
    case_id = case_in(state, held_from=held_from_for(state, trigger))
    if trigger == "discharge":
        clinic.reconcile(case_id)  # medication.reconciled
    before = clinic.case(case_id)
    events_before = clinic.events(case_id)
    then = records_made_by(clinic, case_id, trigger)

    case = clinic.fire(case_id, trigger)

    expected = expected_destination(state, trigger, before.held_from)
    assert case.state == expected
    assert clinic.case(case_id).state == expected
    events = clinic.events(case_id)
    assert case.version == before.version + len(events) - len(events_before)
    assert events[: len(events_before)] == events_before
    event, *made = events[len(events_before) :]
    assert [(e.kind, e.data["fact"]) for e in made] == [("fact", fact) for fact in then]
    assert (event.kind, event.trigger, event.from_state, event.to_state) == (
        "transition",
        trigger,
        state,
        expected,
    )
    assert (event.actor_id, event.actor_role, event.at) == (
        clinic.clinician.id,
        "clinician",
        clinic.now,
    )


@pytest.mark.parametrize(("state", "trigger"), REFUSED)
def test_every_other_pair_is_refused_and_changes_nothing(clinic, case_in, state, trigger):
    case_id = case_in(state)
    before = clinic.snapshot(case_id)

    with pytest.raises(InvalidTransition):
        clinic.fire(case_id, trigger)

    assert clinic.snapshot(case_id) == before


HELD_PAIRS = [(t, h) for t in HELD_EXITS for h in ACTIVE_STATES]


@pytest.mark.parametrize(("trigger", "held_from"), HELD_PAIRS)
def test_decline_and_discharge_leave_a_hold_only_from_where_the_spec_says(
    clinic, case_in, trigger, held_from
):
    case_id = case_in("on_hold", held_from=held_from)
    if held_from not in HELD_EXITS[trigger]:
        before = clinic.snapshot(case_id)
        with pytest.raises(InvalidTransition) as refused:
            clinic.fire(case_id, trigger)
        assert f"held from {held_from}" in refused.value.detail
        assert clinic.snapshot(case_id) == before
        return
    if trigger == "discharge":
        clinic.reconcile(case_id)
    case = clinic.fire(case_id, trigger)
    assert (case.state, case.held_from) == (TRIGGER_BY_NAME[trigger].dest, None)


@pytest.mark.parametrize("held_from", ACTIVE_STATES)
def test_hold_then_resume_returns_to_the_state_it_was_held_from(clinic, case_in, held_from):
    case_id = case_in(held_from)

    held = clinic.fire(case_id, "hold")
    assert (held.state, held.phase, held.held_from) == ("on_hold", "on_hold", held_from)

    resumed = clinic.fire(case_id, "resume")
    assert (resumed.state, resumed.held_from) == (held_from, None)
    assert resumed.phase == clinic.case(case_id).phase != "on_hold"
    last = clinic.events(case_id)[-1]
    assert (last.trigger, last.from_state, last.to_state) == ("resume", "on_hold", held_from)


@pytest.mark.parametrize("held_from", ACTIVE_STATES)
def test_withdraw_from_hold_closes_the_case_and_forgets_where_it_was(clinic, case_in, held_from):
    case_id = case_in("on_hold", held_from=held_from)

    case = clinic.fire(case_id, "withdraw")

    assert (case.state, case.phase, case.held_from) == ("withdrawn", "closed", None)


def test_adjust_dose_is_internal_the_state_stays_and_the_version_and_trail_move(clinic, case_in):
    case_id = case_in("monitoring")
    before = clinic.case(case_id)
    trail = clinic.events(case_id)

    case = clinic.fire(case_id, "adjust_dose")

    assert (case.state, case.phase, case.held_from) == ("monitoring", "monitoring", None)
    assert case.version == before.version + 1
    (event,) = clinic.events(case_id)[len(trail) :]
    assert (event.trigger, event.from_state, event.to_state) == (
        "adjust_dose",
        "monitoring",
        "monitoring",
    )
    assert event.data == {"dose_mg": 100.0, "rationale": "Partial response at the current dose."}
    assert case.prescription is not None and case.prescription["dose_mg"] == 100.0


def test_adjust_dose_on_a_case_held_before_prescribing_has_nothing_to_adjust(clinic, case_in):
    case_id = case_in("on_hold", held_from="delivery.awaiting_prescription")
    before = clinic.snapshot(case_id)

    with pytest.raises(Conflict, match="no prescription"):
        clinic.fire(case_id, "adjust_dose")

    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize("state", TERMINAL)
def test_a_terminal_state_refuses_every_trigger(clinic, case_in, state):
    case_id = case_in(state)
    before = clinic.snapshot(case_id)

    for trigger in TRIGGERS:
        with pytest.raises(InvalidTransition):
            clinic.fire(case_id, trigger.name)

    assert clinic.snapshot(case_id) == before
    assert before.case["phase"] == "closed"


def test_a_refused_pair_is_refused_before_the_body_is_checked(clinic, case_in):
    """An invalid transition is reported as such, even with a body it would also reject."""
    case_id = case_in("monitoring")

    with pytest.raises(InvalidTransition):
        clinic.fire(case_id, "decline", body=TransitionBody())
