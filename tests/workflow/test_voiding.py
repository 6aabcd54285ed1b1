"""A clearance is void for good once what it was granted on changes (SPEC.md 4.4).

The rules are keyed by fact names, so facts recorded elsewhere (``profile``,
``case_update``) are tried here through a stand-in service that records them
by name, as those services will.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from models.facts import DoseClearance, EmergencyContact
from models.settings import Settings
from models.tables import Case
from tests.workflow.conftest import Clinic
from workflow import voiding
from workflow.definition import SYSTEM_ACTOR
from workflow.unit import CaseWrite, writes


def cleared(clinic: Clinic) -> tuple[int, DoseClearance]:
    case_id = clinic.case_in("integration", prepared=False)
    clinic.session(case_id, "preparation")
    clearance = clinic.clearance(case_id)
    assert clearance.granted, clearance.unmet
    clinic.tick(minutes=5)
    return case_id, clearance


def the(clinic: Clinic, case_id: int, clearance_id: int) -> DoseClearance:
    (found,) = [c for c in clinic.rows(DoseClearance, case_id) if c.id == clearance_id]
    return found


Change = Callable[[Clinic, int], Any]


def stop_sertraline(clinic: Clinic, case_id: int) -> None:
    medication = clinic.add_med(case_id, "sertraline")
    clinic.set_med_status(case_id, medication.id, "stopped")


VOIDS: list[tuple[str, Change, str]] = [
    ("an adverse event", lambda c, i: c.adverse_event(i, "nausea", "mild"), "adverse event #"),
    ("a medication added", lambda c, i: c.add_med(i, "sertraline"), "medication list"),
    ("the history changed", lambda c, i: c.history(i, failed_antidepressant_trials=3), "history"),
    ("the case held", lambda c, i: c.fire(i, "hold"), "on hold"),
    ("the case withdrawn", lambda c, i: c.fire(i, "withdraw"), "closed"),
    (
        "its monitor made inactive",
        lambda c, i: c.set_monitor_active(i, c.monitors[i], False),
        "inactive",
    ),
]


@pytest.mark.parametrize(("change", "reason"), [v[1:] for v in VOIDS], ids=[v[0] for v in VOIDS])
def test_a_change_after_the_grant_voids_the_open_clearance_as_the_system(clinic, change, reason):
    case_id, clearance = cleared(clinic)
    seen = len(clinic.events(case_id))

    change(clinic, case_id)

    voided = the(clinic, case_id, clearance.id)
    assert (voided.open, voided.void, voided.voided_at) == (False, True, clinic.now)
    assert reason in (voided.void_reason or "")
    (event,) = [e for e in clinic.events(case_id)[seen:] if e.data.get("fact") == voiding.VOID_FACT]
    assert (event.actor_role, event.actor_id, event.data["id"]) == ("system", None, clearance.id)


def test_a_medication_stopped_after_the_grant_voids_it(clinic):
    case_id = clinic.case_in("integration", prepared=False)
    medication = clinic.add_med(case_id, "sertraline")
    clinic.screen(case_id)
    clinic.session(case_id, "preparation")
    clearance = clinic.clearance(case_id)
    assert clearance.granted, clearance.unmet

    clinic.set_med_status(case_id, medication.id, "stopped")

    assert the(clinic, case_id, clearance.id).void


TAPER_CONFIRMS = [
    # (stopped how many days ago before the taper, last dose how many days ago, voids)
    (None, None, True),  # active: the confirm stops it
    (2, 5, True),  # stopped, but the confirmed last dose is earlier: the stop date moves
    (2, 2, False),  # stopped on the day the confirm gives as its last dose: no change
]


@pytest.mark.parametrize(
    ("stopped", "last_dose", "voids"),
    TAPER_CONFIRMS,
    ids=["stops an active medication", "moves the stop date", "changes nothing"],
)
def test_a_taper_confirmed_after_the_grant_voids_it_if_the_medication_list_changed(
    clinic, stopped, last_dose, voids
):
    # A confirmed taper stops its medication: the medication list changed (SPEC.md 4.4).
    case_id = clinic.case_in("integration", prepared=False)
    medication = clinic.add_med(case_id, "sertraline")
    today = clinic.now.date()
    if stopped is not None:
        clinic.set_med_status(
            case_id, medication.id, "stopped", stopped_on=today - timedelta(days=stopped)
        )
    taper = clinic.plan_taper(case_id, medication.id)
    clinic.screen(case_id)
    clinic.session(case_id, "preparation")
    clearance = clinic.clearance(case_id)
    assert clearance.granted, clearance.unmet
    version = clinic.case(case_id).medication_list_version

    last_dose_on = None if last_dose is None else today - timedelta(days=last_dose)
    clinic.confirm_taper(case_id, taper.id, last_dose_on=last_dose_on)

    assert clinic.case(case_id).medication_list_version == version + voids
    found = the(clinic, case_id, clearance.id)
    assert (found.void, found.open) == (voids, not voids)
    if voids:
        assert "medication list" in (found.void_reason or "")


@pytest.mark.parametrize(
    "change",
    [
        lambda c, i: c.history(i),  # the same history again
        lambda c, i: c.vital(i),
        lambda c, i: c.assess(i, "phq9", 12),
        lambda c, i: c.emergency_contact(i),
        lambda c, i: c.monitor(i, name="Jo Rivera"),
        lambda c, i: c.set_monitor_active(i, c.monitors[i], True),  # already active
    ],
    ids=["same history", "a vital", "an assessment", "a contact", "a monitor", "same monitor"],
)
def test_a_write_that_changes_nothing_it_was_granted_on_voids_nothing(clinic, change):
    case_id, clearance = cleared(clinic)
    change(clinic, case_id)
    assert the(clinic, case_id, clearance.id).open


def test_a_status_update_that_changes_no_value_voids_nothing(clinic):
    case_id = clinic.case_in("integration", prepared=False)
    medication = clinic.add_med(case_id, "sertraline")
    clinic.set_med_status(case_id, medication.id, "stopped", stopped_on=clinic.now.date())
    clinic.screen(case_id)
    clinic.session(case_id, "preparation")
    clearance = clinic.clearance(case_id)
    assert clearance.granted, clearance.unmet

    clinic.set_med_status(case_id, medication.id, "stopped")

    assert the(clinic, case_id, clearance.id).open


def test_undoing_the_change_does_not_restore_it(clinic):
    case_id, clearance = cleared(clinic)
    event = clinic.adverse_event(case_id, "nausea", "mild")

    clinic.resolve(case_id, event.id)

    voided = the(clinic, case_id, clearance.id)
    assert (voided.open, voided.void) == (False, True)
    assert clinic.clearance(case_id).granted  # no longer counts: a new one may be granted


def test_resuming_after_a_hold_does_not_restore_it(clinic):
    case_id, clearance = cleared(clinic)
    clinic.fire(case_id, "hold")
    clinic.fire(case_id, "resume")
    assert the(clinic, case_id, clearance.id).void


def test_an_inactive_monitor_voids_only_the_clearance_that_names_it(clinic):
    case_id, clearance = cleared(clinic)
    other = clinic.monitor(case_id, name="Jo Rivera")

    clinic.set_monitor_active(case_id, other.id, False)

    assert the(clinic, case_id, clearance.id).open
    clinic.set_monitor_active(case_id, clinic.monitors[case_id], False)
    assert the(clinic, case_id, clearance.id).void


def test_nothing_after_the_dose_voids_the_clearance_it_used(clinic):
    case_id, clearance = cleared(clinic)
    fields = clinic.dosing_fields(case_id, clearance.created_at)
    clinic.now = fields["completed_at"]
    dose = clinic.session(case_id, "dosing", clearance_id=clearance.id, **fields)

    clinic.adverse_event(case_id, "nausea", "mild")
    clinic.fire(case_id, "hold")

    used = the(clinic, case_id, clearance.id)
    assert (used.open, used.void, dose.deviations) == (False, False, [])


def test_a_cancelled_or_refused_clearance_is_not_voided(clinic):
    case_id, clearance = cleared(clinic)
    clinic.cancel(case_id, clearance.id)
    refused = clinic.clearance(case_id, 150, 95)

    clinic.adverse_event(case_id, "nausea", "mild")

    assert [(c.void, c.open) for c in clinic.rows(DoseClearance, case_id)] == [(False, False)] * 2
    assert refused.id != clearance.id


# -- facts recorded elsewhere are picked up by their name -------------------------------------


@writes("history")
def record_named(
    write: CaseWrite, *, fact: str, changes: dict[str, Any], new: bool
) -> EmergencyContact:
    """A stand-in for a service another branch writes: it records ``fact`` by name."""
    if new:
        record: Any = EmergencyContact(
            case_id=write.case_id, name="x", relationship="y", phone="555", created_at=write.now
        )
    else:
        record = write.case
    write.record(fact, record, changes)
    return record


@pytest.mark.parametrize(
    ("fact", "changes", "new", "voids"),
    [
        ("profile", {}, True, True),  # a profile recorded for the first time
        ("profile", {}, False, False),  # a profile PUT again with the same values
        ("case_update", {"patient_state": "NY"}, False, True),
        ("case_update", {}, False, False),  # the same patient_state again
        ("case_update", {"assigned_clinician_id": None}, False, False),
        ("some_other_fact", {}, True, False),
    ],
)
def test_a_fact_voids_by_its_name_and_its_change(clinic, fact, changes, new, voids):
    case_id, clearance = cleared(clinic)

    clinic.call(
        record_named, case_id=case_id, actor=SYSTEM_ACTOR, fact=fact, changes=changes, new=new
    )

    assert the(clinic, case_id, clearance.id).void is voids


@writes("history")
def record_after_a_query(write: CaseWrite, *, phone: str | None) -> EmergencyContact:
    """Another branch's service that queries between changing a row and recording it
    (the query autoflushes the change): a new row when ``phone`` is None."""
    if phone is None:
        record = EmergencyContact(
            case_id=write.case_id, name="x", relationship="y", phone="555", created_at=write.now
        )
        write.session.add(record)
    else:
        (record,) = write.session.exec(
            select(EmergencyContact).where(EmergencyContact.case_id == write.case_id)
        ).all()
        record.phone = phone
    write.session.exec(select(Case.id)).all()  # autoflush
    write.record("profile", record, {})
    return record


@pytest.mark.parametrize(
    ("phone", "voids"), [(None, True), ("555-0200", True), ("555-0100", False)]
)
def test_a_change_flushed_before_it_is_recorded_still_counts(clinic, phone, voids):
    case_id, clearance = cleared(clinic)  # its emergency contact's phone is 555-0100

    clinic.call(record_after_a_query, case_id=case_id, actor=SYSTEM_ACTOR, phone=phone)

    assert the(clinic, case_id, clearance.id).void is voids


def test_the_history_rule_counts_only_values_that_change():
    history: Any = type("Row", (), {})()
    change = voiding.Change("history", history, {}, frozenset())
    assert voiding.FACT_RULES["history"](change) is None
    assert voiding.FACT_RULES["history"](voiding.Change("history", history, {}, None))
    assert voiding.FACT_RULES["history"](
        voiding.Change("history", history, {}, frozenset({"sleep_apnea"}))
    )


# -- never two open clearances ------------------------------------------------------------------

STEPS = st.lists(
    st.sampled_from(["clear", "clear", "dose", "cancel", "event", "wait", "wait_long"]),
    min_size=1,
    max_size=8,
)
RELAXED = Settings(min_hours_between_doses=0, max_doses_per_window=5)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS, relaxed=st.booleans())
def test_never_two_open_clearances(clinic, steps, relaxed):
    """Whatever the order of requests, cancellations, doses and events, and even with the
    interval set to 0, no two clearances of a case are ever open at once."""
    case_id = clinic.case_in("integration", prepared=False)
    clinic.session(case_id, "preparation")
    rules = {"rules": RELAXED} if relaxed else {}
    for step in steps:
        open_now = [c for c in clinic.rows(DoseClearance, case_id) if c.open]
        if step == "clear":
            clinic.clearance(case_id, **rules)
        elif step == "cancel" and open_now:
            clinic.cancel(case_id, open_now[0].id)
        elif step == "dose" and open_now:
            fields = clinic.dosing_fields(case_id, open_now[0].created_at)
            clinic.now = max(clinic.now, fields["completed_at"])
            clinic.session(case_id, "dosing", clearance_id=open_now[0].id, **fields)
        elif step == "event":
            event = clinic.adverse_event(case_id, "nausea", "mild")
            clinic.resolve(case_id, event.id)
        elif step == "wait":
            clinic.tick(hours=1)
        elif step == "wait_long":
            clinic.tick(hours=80)
        assert len([c for c in clinic.rows(DoseClearance, case_id) if c.open]) <= 1


def test_an_open_clearance_blocks_the_next_however_old_until_it_is_closed(clinic):
    case_id, clearance = cleared(clinic)
    clinic.now = clearance.created_at + timedelta(days=10)

    refused = clinic.clearance(case_id)
    clinic.cancel(case_id, clearance.id)

    assert [u["code"] for u in refused.unmet] == ["dose.interval"]
    assert f"#{clearance.id}" in refused.unmet[0]["message"]
    assert clinic.clearance(case_id).granted
