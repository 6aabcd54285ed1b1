"""The write path: locking a case, the compare-and-set on its version, the audit trail."""

from __future__ import annotations

import pytest
from sqlmodel import select

from models.db import session_scope
from models.tables import AuditEvent, Case
from workflow.audit import list_events, lock_case, save_case
from workflow.errors import NotFound, VersionConflict


def test_lock_case_checks_existence_and_the_expected_version(clinic):
    case_id = clinic.open_case()
    with session_scope(clinic.engine) as session:
        assert lock_case(session, case_id, expected_version=1).id == case_id
        assert lock_case(session, case_id).id == case_id
        with pytest.raises(VersionConflict):
            lock_case(session, case_id, expected_version=2)
        with pytest.raises(NotFound):
            lock_case(session, 999)


def test_save_case_bumps_the_version_and_refuses_a_lost_update(clinic):
    case_id = clinic.open_case()
    stale = clinic.case(case_id)  # version 1, read before someone else writes
    clinic.vital(case_id)

    with pytest.raises(VersionConflict), session_scope(clinic.engine) as session:
        save_case(session, stale, clinic.now, referrals=["cbt_i"])

    case = clinic.case(case_id)
    assert (case.version, case.referrals) == (2, [])


def test_save_case_writes_the_values_and_the_in_memory_case(clinic):
    case_id = clinic.open_case()
    clinic.tick(hours=1)
    with session_scope(clinic.engine) as session:
        case = session.get(Case, case_id)
        save_case(session, case, clinic.now, medication_list_version=7)
        assert (case.version, case.updated_at, case.medication_list_version) == (2, clinic.now, 7)
    stored = clinic.case(case_id)
    assert (stored.version, stored.updated_at, stored.medication_list_version) == (2, clinic.now, 7)


def test_the_trail_is_read_oldest_first_and_only_for_its_case(clinic, case_in):
    case_id = case_in("delivery.awaiting_prescription")
    other = clinic.open_case()

    events = clinic.read(list_events, case_id=case_id)

    assert [e.id for e in events] == sorted(e.id for e in events)
    assert {e.case_id for e in events} == {case_id}
    assert (events[0].trigger, events[-1].trigger) == ("create", "approve")
    assert [e.trigger for e in clinic.read(list_events, case_id=other)] == ["create"]
    with pytest.raises(NotFound):
        clinic.read(list_events, case_id=999)


def test_the_version_counts_the_events_of_the_case(clinic, case_in):
    """Every accepted write bumps the version once and appends one event, system ones too."""
    case_id = case_in("monitoring")
    clinic.assess(case_id, "phq9", 10, item9=1)  # plus a system event and a system hold

    assert clinic.case(case_id).version == len(clinic.events(case_id))


def test_later_writes_never_change_earlier_events(clinic, case_in):
    case_id = case_in("integration")
    trail = clinic.snapshot(case_id).events

    clinic.fire(case_id, "start_monitoring")
    clinic.adverse_event(case_id, "nausea", "severe")

    assert clinic.snapshot(case_id).events[: len(trail)] == trail


def test_the_state_is_the_to_state_of_the_last_transition(clinic, case_in):
    case_id = case_in("on_hold", held_from="delivery.prescribed")
    clinic.vital(case_id)
    query = (
        select(AuditEvent)
        .where(AuditEvent.case_id == case_id, AuditEvent.kind == "transition")
        .order_by(AuditEvent.id.desc())
    )
    last = clinic.read(lambda s: s.exec(query).first())
    assert last.to_state == clinic.case(case_id).state == "on_hold"
