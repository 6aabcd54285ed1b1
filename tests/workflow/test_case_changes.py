"""Writes to the case itself: assignment, the patient's state, and the patient's reference.

SPEC.md sections 1 and 5: a coordinator or a clinician assigns (an admin may
not), only a clinician changes ``patient_state``, both are audited as facts;
``patient_ref`` is one patient whatever the letter case.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models.db import session_scope
from models.facts import CaseChange
from models.schemas import CaseAssignment, CaseCreate, CaseUpdate
from models.tables import Case, User
from tests.conftest import add_user
from tests.workflow.conftest import Clinic
from workflow import cases
from workflow.casefacts import CaseFacts
from workflow.definition import Actor
from workflow.errors import Conflict, Forbidden, ValidationFailed


def assign(clinic: Clinic, case_id: int, actor: Actor | None = None, **ids: int) -> Case:
    return clinic.call(
        cases.assign_case,
        case_id=case_id,
        data=CaseAssignment(**ids),
        actor=actor or clinic.coordinator,
    )


def move(clinic: Clinic, case_id: int, state: str, actor: Actor | None = None) -> Case:
    return clinic.call(
        cases.update_case,
        case_id=case_id,
        data=CaseUpdate(patient_state=state),
        actor=actor or clinic.clinician,
    )


def deactivate(clinic: Clinic, user: Actor) -> None:
    with session_scope(clinic.engine) as session:
        row = session.get_one(User, user.id)
        row.active = False
        session.add(row)


# -- assignment ------------------------------------------------------------------------


def test_a_coordinator_assigns_both_and_the_write_is_audited_as_a_fact(clinic):
    case_id = clinic.open_case()
    case = assign(
        clinic, case_id, clinician_id=clinic.clinician.id, coordinator_id=clinic.coordinator.id
    )

    assert (case.assigned_clinician_id, case.assigned_coordinator_id, case.version) == (
        clinic.clinician.id,
        clinic.coordinator.id,
        2,
    )
    stored = clinic.case(case_id)
    assert (stored.assigned_clinician_id, stored.assigned_coordinator_id) == (
        clinic.clinician.id,
        clinic.coordinator.id,
    )
    event = clinic.events(case_id)[-1]
    assert (event.kind, event.data["fact"], event.actor_role) == (
        "fact",
        "assignment",
        "coordinator",
    )
    assert event.data["record"]["changes"] == {
        "assigned_clinician_id": clinic.clinician.id,
        "assigned_coordinator_id": clinic.coordinator.id,
    }
    assert event.data["record"]["previous"] == {
        "assigned_clinician_id": None,
        "assigned_coordinator_id": None,
    }


def test_assigning_one_role_leaves_the_other_and_a_clinician_may_assign(clinic):
    case_id = clinic.open_case()
    assign(clinic, case_id, coordinator_id=clinic.coordinator.id)
    other = add_user(clinic.engine, "coordinator-2", "coordinator")

    case = assign(clinic, case_id, actor=clinic.clinician, coordinator_id=other.id)
    assert (case.assigned_clinician_id, case.assigned_coordinator_id) == (None, other.id)
    changes = [r.changes for r in clinic.rows(CaseChange, case_id)]
    assert changes == [
        {"assigned_coordinator_id": clinic.coordinator.id},
        {"assigned_coordinator_id": other.id},
    ]


@pytest.mark.parametrize(
    ("field", "who"),
    [
        ("clinician_id", "unknown"),
        ("clinician_id", "coordinator"),
        ("clinician_id", "inactive clinician"),
        ("coordinator_id", "unknown"),
        ("coordinator_id", "clinician"),
        ("coordinator_id", "admin"),
        ("coordinator_id", "inactive coordinator"),
    ],
)
def test_an_assignee_must_be_an_active_user_of_the_role(clinic, admin, field, who):
    case_id = clinic.open_case()
    users = {
        "unknown": 999,
        "coordinator": clinic.coordinator.id,
        "clinician": clinic.clinician.id,
        "admin": admin.id,
    }
    if who.startswith("inactive"):
        role = who.split()[1]
        user = add_user(clinic.engine, f"gone-{role}", role)
        deactivate(clinic, user)
        users[who] = user.id
    before = clinic.snapshot(case_id)

    with pytest.raises(ValidationFailed) as refused:
        assign(clinic, case_id, **{field: users[who]})

    assert [e["loc"] for e in refused.value.errors] == [["body", field]]
    assert clinic.snapshot(case_id) == before


def test_one_bad_assignee_refuses_the_whole_assignment(clinic):
    case_id = clinic.open_case()
    before = clinic.snapshot(case_id)
    with pytest.raises(ValidationFailed):
        assign(clinic, case_id, clinician_id=clinic.clinician.id, coordinator_id=999)
    assert clinic.snapshot(case_id) == before


def test_an_admin_may_not_assign_and_a_closed_case_takes_no_assignment(clinic, case_in, admin):
    case_id = clinic.open_case()
    before = clinic.snapshot(case_id)
    with pytest.raises(Forbidden):
        assign(clinic, case_id, actor=admin, coordinator_id=clinic.coordinator.id)
    assert clinic.snapshot(case_id) == before

    closed = case_in("withdrawn")
    before = clinic.snapshot(closed)
    with pytest.raises(Conflict):
        assign(clinic, closed, coordinator_id=clinic.coordinator.id)
    assert clinic.snapshot(closed) == before


def test_approve_assigns_the_approver_only_when_no_clinician_is_assigned(clinic, case_in):
    case_id = case_in("evaluation")
    other = add_user(clinic.engine, "clinician-2", "clinician", ("CA",))
    assign(clinic, case_id, clinician_id=other.id)

    case = clinic.fire(case_id, "approve")
    assert case.assigned_clinician_id == other.id


def test_the_assignee_filter_finds_cases_by_either_role(clinic):
    mine, theirs, unassigned = clinic.open_case(), clinic.open_case(), clinic.open_case()
    assign(clinic, mine, coordinator_id=clinic.coordinator.id)
    assign(clinic, theirs, clinician_id=clinic.clinician.id)

    def ids(assignee: int | None) -> list[int]:
        rows, _ = clinic.read(cases.list_cases, assignee=assignee)
        return [c.id for c in rows]

    assert ids(clinic.coordinator.id) == [mine]
    assert ids(clinic.clinician.id) == [theirs]
    assert ids(None) == [mine, theirs, unassigned]


# -- the patient's state ----------------------------------------------------------------


def test_a_clinician_moves_the_patient_and_it_is_audited_as_case_update(clinic):
    case_id = clinic.open_case(patient_state="CA")
    case = move(clinic, case_id, "NY")

    assert (case.patient_state, case.version) == ("NY", 2)
    assert clinic.case(case_id).patient_state == "NY"
    event = clinic.events(case_id)[-1]
    assert (event.data["fact"], event.actor_role) == ("case_update", "clinician")
    assert event.data["record"]["changes"] == {"patient_state": "NY"}
    assert event.data["record"]["previous"] == {"patient_state": "CA"}


def test_the_same_state_again_is_audited_with_no_change(clinic):
    case_id = clinic.open_case(patient_state="CA")
    case = move(clinic, case_id, "CA")

    assert (case.patient_state, case.version) == ("CA", 2)
    (change,) = clinic.rows(CaseChange, case_id)
    assert (change.fact, change.changes, change.previous) == ("case_update", {}, {})
    assert clinic.events(case_id)[-1].data["record"]["changes"] == {}


def test_the_changes_the_unit_of_work_gets_are_empty_when_nothing_changed(clinic, monkeypatch):
    """Other rules (voiding dose clearances) read the ``changes`` of ``case_update``."""
    from workflow.unit import CaseWrite

    seen: list[tuple[str, dict[str, Any]]] = []
    record = CaseWrite.record

    def spy(self, fact, row, changes=None, **kwargs):
        seen.append((fact, dict(changes or {})))
        return record(self, fact, row, changes, **kwargs)

    monkeypatch.setattr(CaseWrite, "record", spy)
    case_id = clinic.open_case(patient_state="CA")
    move(clinic, case_id, "CA")
    move(clinic, case_id, "TX")
    assert seen == [("case_update", {}), ("case_update", {"patient_state": "TX"})]


def test_only_a_clinician_moves_the_patient(clinic, admin):
    case_id = clinic.open_case()
    before = clinic.snapshot(case_id)
    for actor in (clinic.coordinator, admin):
        with pytest.raises(Forbidden):
            move(clinic, case_id, "NY", actor=actor)
    assert clinic.snapshot(case_id) == before


def test_a_state_code_is_checked_like_on_creation():
    for code in ("ZZ", "ca", "California"):
        with pytest.raises(ValueError):
            CaseUpdate(patient_state=code)


# -- patient_ref without regard to case ----------------------------------------------------


def test_a_patient_ref_in_another_letter_case_is_the_same_patient(clinic, case_in):
    first = clinic.open_case(patient_ref="Pt-7")
    with pytest.raises(Conflict):
        clinic.open_case(patient_ref="PT-7")
    with pytest.raises(Conflict):
        clinic.open_case(patient_ref="pt-7")
    assert clinic.case(first).patient_ref == "Pt-7"  # kept as given


def test_a_closed_case_frees_the_patient_in_any_letter_case(clinic):
    first = clinic.open_case(patient_ref="pt-9")
    clinic.fire(first, "withdraw")
    second = clinic.open_case(patient_ref="PT-9")
    rows, _ = clinic.read(cases.list_cases, patient_ref="Pt-9")
    assert [(c.id, c.patient_ref) for c in rows] == [(first, "pt-9"), (second, "PT-9")]


def test_the_patient_ref_filter_is_an_exact_match(clinic):
    wanted = clinic.open_case(patient_ref="MRN-1")
    clinic.open_case(patient_ref="MRN-10")
    clinic.open_case(patient_ref="XMRN-1")
    rows, _ = clinic.read(cases.list_cases, patient_ref="mrn-1")
    assert [c.id for c in rows] == [wanted]


def test_the_database_itself_refuses_two_open_cases_in_different_letter_cases(engine, now):
    """The unique index on lower(patient_ref) backs the check made before the insert."""
    insert = text(
        "INSERT INTO cases (patient_ref, patient_state, state, phase, version, "
        "medication_list_version, referrals, created_at, updated_at) "
        "VALUES (:ref, 'CA', :state, :phase, 1, 0, '[]', :now, :now)"
    )
    moment = now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now
    with engine.begin() as conn:
        conn.execute(
            insert, {"ref": "p-abc", "state": "withdrawn", "phase": "closed", "now": moment}
        )
        conn.execute(
            insert, {"ref": "P-ABC", "state": "evaluation", "phase": "evaluation", "now": moment}
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert, {"ref": "p-Abc", "state": "evaluation", "phase": "evaluation", "now": moment}
        )


# -- is the case approved? ---------------------------------------------------------------


def test_approved_reads_the_case_s_approved_at_and_no_audit_event(clinic, case_in):
    waiting = case_in("evaluation")
    approved = clinic.fire(case_in("evaluation"), "approve")
    assert approved.approved_at == clinic.now

    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with Session(clinic.engine) as session:
        loaded = [session.get_one(Case, waiting), session.get_one(Case, approved.id)]
        event.listen(clinic.engine, "before_cursor_execute", count)
        try:
            answers = [CaseFacts(case=c, now=clinic.now, session=session).approved for c in loaded]
        finally:
            event.remove(clinic.engine, "before_cursor_execute", count)
    assert answers == [False, True]
    assert statements == []  # the write has the case loaded already: no query at all


def test_a_new_case_is_not_approved_and_create_data_is_kept(clinic):
    data = CaseCreate(patient_ref="p-new", patient_state="CA")
    case = clinic.call(cases.create_case, data=data, actor=clinic.coordinator)
    assert case.approved_at is None and case.assigned_coordinator_id is None
