"""Cases: creating, reading, listing, and what ``fire_trigger`` refuses and records."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Row

from models.db import session_scope
from models.schemas import CaseCreate, TransitionBody
from models.tables import Case
from tests.workflow.conftest import body_for
from workflow import cases
from workflow.definition import TRIGGER_BY_NAME, TRIGGERS, may_fire
from workflow.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    TransitionBlocked,
    ValidationFailed,
    VersionConflict,
)

COORDINATOR_REFUSED = [t.name for t in TRIGGERS if not may_fire("coordinator", t)]


def test_a_new_case_starts_in_evaluation_with_a_create_event(clinic):
    case_id = clinic.open_case(patient_state="NY", patient_ref="p-42")

    case = clinic.case(case_id)
    assert (case.state, case.phase, case.version, case.held_from) == (
        "evaluation",
        "evaluation",
        1,
        None,
    )
    assert (case.patient_ref, case.patient_state) == ("p-42", "NY")
    assert case.created_at == case.updated_at == clinic.now
    (event,) = clinic.events(case_id)
    assert (event.kind, event.trigger, event.from_state, event.to_state) == (
        "transition",
        "create",
        None,
        "evaluation",
    )
    assert (event.actor_id, event.actor_role) == (clinic.coordinator.id, "coordinator")


def test_a_second_open_case_for_a_patient_is_a_conflict(clinic):
    clinic.open_case(patient_ref="p-1")

    with pytest.raises(Conflict):
        clinic.open_case(patient_ref="p-1")

    rows, _ = clinic.read(cases.list_cases)
    assert [(c.id, c.patient_ref) for c in rows] == [(1, "p-1")]
    assert clinic.open_case(patient_ref="p-2") == 2


@pytest.mark.parametrize("closing", ["withdrawn", "ineligible", "discharged"])
def test_a_patient_may_have_a_new_case_once_the_first_is_closed(clinic, case_in, closing):
    first = case_in(closing)
    ref = clinic.case(first).patient_ref

    second = clinic.open_case(patient_ref=ref)

    assert second != first
    assert clinic.case(second).state == "evaluation"
    with pytest.raises(Conflict):
        clinic.open_case(patient_ref=ref)


@pytest.mark.parametrize("state", ["on_hold", "monitoring"])
def test_a_held_or_late_case_is_still_open(clinic, case_in, state):
    ref = clinic.case(case_in(state)).patient_ref
    with pytest.raises(Conflict):
        clinic.open_case(patient_ref=ref)


@pytest.mark.parametrize("role", ["clinician", "coordinator"])
def test_a_clinician_or_a_coordinator_may_open_a_case(clinic, role):
    actor = clinic.coordinator if role == "coordinator" else clinic.clinician
    data = CaseCreate(patient_ref="p-9", patient_state="CA")

    case = clinic.call(cases.create_case, data=data, actor=actor)

    assert case.state == "evaluation"
    assert clinic.events(case.id)[0].actor_role == role


def test_an_admin_may_not_open_a_case(clinic, admin):
    data = CaseCreate(patient_ref="p-9", patient_state="CA")
    with pytest.raises(Forbidden):
        clinic.call(cases.create_case, data=data, actor=admin)
    assert clinic.read(lambda s: cases.list_cases(s)[0]) == []


def test_unknown_case_and_unknown_trigger_are_not_found(clinic):
    case_id = clinic.open_case()
    with pytest.raises(NotFound):
        clinic.read(lambda s: cases.get_case(s, 999))
    with pytest.raises(NotFound):
        clinic.fire(999, "hold")
    with pytest.raises(NotFound):
        clinic.fire(case_id, "teleport", body=TransitionBody())


def test_list_cases_filters_by_phase_and_state_and_pages(clinic, case_in):
    evaluation = [clinic.open_case() for _ in range(3)]
    prescribed = case_in("delivery.prescribed")
    awaiting = case_in("delivery.awaiting_prescription")

    def ids(**kwargs):
        rows, after = clinic.read(lambda s: cases.list_cases(s, **kwargs))
        return [c.id for c in rows], after

    assert ids(phase="delivery") == ([prescribed, awaiting], None)
    assert ids(state="delivery.prescribed") == ([prescribed], None)
    assert ids(state="evaluation") == (evaluation, None)
    first_page = ids(limit=2)
    assert first_page == (evaluation[:2], evaluation[1])
    assert ids(limit=2, after_id=first_page[1]) == ([evaluation[2], prescribed], prescribed)
    assert ids(limit=2, after_id=prescribed) == ([awaiting], None)


@pytest.mark.parametrize("trigger", COORDINATOR_REFUSED)
def test_a_coordinator_may_not_fire_clinician_triggers(clinic, case_in, trigger):
    case_id = case_in(TRIGGER_BY_NAME[trigger].sources[0])
    before = clinic.snapshot(case_id)

    with pytest.raises(Forbidden):
        clinic.fire(case_id, trigger, actor=clinic.coordinator)

    assert clinic.snapshot(case_id) == before


def test_the_coordinator_refusals_are_the_clinician_triggers_of_spec_section_1():
    assert set(COORDINATOR_REFUSED) == {
        "approve",
        "decline",
        "prescribe",
        "adjust_dose",
        "discharge",
        "resume",
    }


@pytest.mark.parametrize("trigger", ["ship", "confirm_delivery", "start_monitoring", "hold"])
def test_a_coordinator_may_fire_the_logistics_triggers(clinic, case_in, trigger):
    case_id = case_in(TRIGGER_BY_NAME[trigger].sources[-1])

    case = clinic.fire(case_id, trigger, actor=clinic.coordinator)

    assert case.state == TRIGGER_BY_NAME[trigger].dest
    moved = [e for e in clinic.events(case_id) if e.kind == "transition"][-1]
    assert (moved.trigger, moved.actor_role) == (trigger, "coordinator")


@pytest.mark.parametrize("trigger", [t.name for t in TRIGGERS])
def test_an_admin_may_fire_no_trigger(clinic, case_in, admin, trigger):
    case_id = case_in(TRIGGER_BY_NAME[trigger].sources[0])
    before = clinic.case(case_id).version
    with pytest.raises(Forbidden):
        clinic.fire(case_id, trigger, actor=admin)
    assert clinic.case(case_id).version == before


def test_approve_assigns_the_approving_clinician(clinic, case_in):
    case = clinic.fire(case_in("evaluation"), "approve")
    assert case.assigned_clinician_id == clinic.clinician.id


@pytest.mark.parametrize(
    ("trigger", "missing"),
    [(t.name, field) for t in TRIGGERS for field in t.body],
)
def test_a_required_body_field_missing_is_refused_and_changes_nothing(
    clinic, case_in, trigger, missing
):
    case_id = case_in(TRIGGER_BY_NAME[trigger].sources[0])
    before = clinic.snapshot(case_id)
    body = {f: v for f, v in _body(trigger).items() if f != missing}

    with pytest.raises(ValidationFailed) as refused:
        clinic.fire(case_id, trigger, body=TransitionBody(**body))

    assert refused.value.errors[0]["loc"] == ["body", missing]
    assert clinic.snapshot(case_id) == before


def _body(trigger: str) -> dict:
    return body_for(trigger).model_dump(exclude_none=True)


def test_the_transition_event_keeps_the_body(clinic, case_in):
    case_id = case_in("delivery.prescribed")
    body = TransitionBody(quantity_units=6, lot="L-9", carrier="FedEx", tracking_number="7777")

    clinic.fire(case_id, "ship", body=body)

    shipped = next(e for e in reversed(clinic.events(case_id)) if e.kind == "transition")
    assert shipped.data == {
        "quantity_units": 6,
        "lot": "L-9",
        "carrier": "FedEx",
        "tracking_number": "7777",
    }


def test_a_stale_expected_version_is_a_version_conflict_and_changes_nothing(clinic, case_in):
    case_id = case_in("integration")
    version = clinic.case(case_id).version
    clinic.tick(minutes=1)
    clinic.vital(case_id)  # someone else wrote meanwhile
    before = clinic.snapshot(case_id)

    with pytest.raises(VersionConflict):
        clinic.fire(case_id, "hold", expected_version=version)

    assert clinic.snapshot(case_id) == before
    case = clinic.fire(case_id, "hold", expected_version=version + 1)
    assert (case.state, case.version) == ("on_hold", version + 2)


def test_a_blocked_trigger_changes_nothing(clinic):
    case_id = clinic.open_case()
    before = clinic.snapshot(case_id)
    with pytest.raises(TransitionBlocked):
        clinic.fire(case_id, "approve")
    assert clinic.snapshot(case_id) == before


def test_list_triggers_shows_each_trigger_from_the_state_with_its_unmet_codes(clinic, case_in):
    case_id = case_in("monitoring")
    clinic.reconcile(case_id)
    clinic.adverse_event(case_id, "nausea", "mild")

    def listing(actor):
        options = clinic.call(cases.list_triggers, case_id=case_id, actor=actor)
        return {o.trigger: (o.dest, o.allowed, [u.code for u in o.unmet]) for o in options}

    # The listing has no body: adjust_dose shows what a raise needs (a lower dose needs less).
    assert listing(clinic.clinician) == {
        "adjust_dose": ("monitoring", False, ["adverse_events.resolved"]),
        "discharge": ("discharged", False, ["adverse_events.resolved"]),
        "hold": ("on_hold", True, []),
        "withdraw": ("withdrawn", True, []),
    }
    # A coordinator may not fire it, and holds no license for it either.
    assert listing(clinic.coordinator)["adjust_dose"] == (
        "monitoring",
        False,
        ["clinician.licensed", "adverse_events.resolved"],
    )


def test_list_triggers_on_hold_shows_where_resume_leads(clinic, case_in):
    case_id = case_in("on_hold", held_from="delivery.shipped")

    options = clinic.call(cases.list_triggers, case_id=case_id, actor=clinic.clinician)

    assert [(o.trigger, o.dest, o.allowed, o.roles) for o in options] == [
        ("adjust_dose", "on_hold", True, ("clinician",)),
        ("resume", "delivery.shipped", True, ("clinician",)),
        ("withdraw", "withdrawn", True, ("coordinator", "clinician")),
    ]


def test_list_triggers_on_a_closed_case_is_empty(clinic, case_in):
    case_id = case_in("withdrawn")
    assert clinic.call(cases.list_triggers, case_id=case_id, actor=clinic.clinician) == []


def test_list_triggers_writes_nothing(clinic, case_in):
    case_id = case_in("evaluation")
    before = clinic.snapshot(case_id)
    clinic.call(cases.list_triggers, case_id=case_id, actor=clinic.clinician)
    assert clinic.snapshot(case_id) == before


def test_a_view_that_only_reads_takes_the_case_as_a_row_unless_the_session_has_it(clinic, case_in):
    """``list_triggers`` reads the case as a read-only row (nothing it could write back),
    or uses the one the session has loaded already (the worklist, the case page)."""
    case_id = case_in("evaluation")
    with session_scope(clinic.engine) as session:
        row = cases.read_case(session, case_id)
        assert isinstance(row, Row) and (row.id, row.state) == (case_id, "evaluation")
        assert list(session) == []
        loaded = session.get(Case, case_id)
        assert cases.read_case(session, case_id) is loaded
        with pytest.raises(NotFound):
            cases.read_case(session, case_id + 1000)


def test_the_role_is_checked_before_the_state(clinic, case_in):
    """A coordinator firing a clinician trigger is refused as Forbidden wherever the case is."""
    case_id = case_in("withdrawn")
    with pytest.raises(Forbidden):
        clinic.fire(case_id, "approve", actor=clinic.coordinator)
    with pytest.raises(InvalidTransition):
        clinic.fire(case_id, "hold", actor=clinic.coordinator)
