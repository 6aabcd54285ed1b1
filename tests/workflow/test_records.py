"""Recording facts: each write is audited once, refusals change nothing, time is checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from models.facts import DoseClearance, History, Medication, Taper
from models.schemas import (
    AdverseEventCreate,
    AdverseEventResolve,
    AssessmentCreate,
    ClearanceCancel,
    ClearanceCreate,
    EmergencyContactCreate,
    HistoryIn,
    MedicationCreate,
    MedicationUpdate,
    MonitorCreate,
    MonitorUpdate,
    ScreeningCreate,
    SessionCreate,
    TaperConfirm,
    TaperCreate,
    VitalCreate,
)
from tests.workflow.conftest import ELIGIBLE_HISTORY, Clinic
from workflow import contacts, dosing, medications, records
from workflow.definition import FACT_BY_NAME
from workflow.errors import Conflict, Forbidden, NotFound, ValidationFailed, VersionConflict

Write = Callable[[Clinic, int], Any]


def _id(record: Any) -> int:
    assert record.id is not None
    return record.id


def _med(clinic: Clinic, case_id: int, name: str = "Xanax") -> int:
    return _id(clinic.add_med(case_id, name))


def _taper(clinic: Clinic, case_id: int) -> int:
    return _id(clinic.plan_taper(case_id, _med(clinic, case_id)))


def _open_event(clinic: Clinic, case_id: int) -> int:
    return _id(clinic.adverse_event(case_id, "nausea", "mild"))


def _open_clearance(clinic: Clinic, case_id: int) -> DoseClearance:
    clinic.session(case_id, "preparation")
    clearance = clinic.clearance(case_id)
    assert clearance.granted, clearance.unmet
    return clearance


def _dose(clinic: Clinic, case_id: int) -> dict[str, Any]:
    """A clean dose record for an open clearance, at the dose's completion."""
    clearance = _open_clearance(clinic, case_id)
    fields = clinic.dosing_fields(case_id, clearance.created_at)
    clinic.now = fields["completed_at"]
    return {"data": SessionCreate(kind="dosing", clearance_id=clearance.id, **fields)}


# fact name -> (state the case is in, setup returning the kwargs of the write, the write).
WRITES: dict[str, tuple[str, Callable[[Clinic, int], dict], Callable[..., Any], str]] = {
    "history": (
        "evaluation",
        lambda c, i: {"data": HistoryIn(**ELIGIBLE_HISTORY)},
        records.put_history,
        "coordinator",
    ),
    "assessment": (
        "evaluation",
        lambda c, i: {"data": AssessmentCreate(instrument="isi", score=12, taken_at=c.now)},
        records.record_assessment,
        "coordinator",
    ),
    "vital": (
        "evaluation",
        lambda c, i: {"data": VitalCreate(systolic=120, diastolic=80, taken_at=c.now)},
        records.record_vital,
        "coordinator",
    ),
    "medication": (
        "evaluation",
        lambda c, i: {"data": MedicationCreate(name="sertraline")},
        medications.add_medication,
        "coordinator",
    ),
    "medication_update": (
        "evaluation",
        # Only a clinician may stop a taper-required or blocking medication: stop another.
        lambda c, i: {
            "medication_id": _med(c, i, "sertraline"),
            "data": MedicationUpdate(status="stopped"),
        },
        medications.update_medication,
        "coordinator",
    ),
    "interaction_screening": (
        "evaluation",
        lambda c, i: {"data": ScreeningCreate()},
        medications.screen_interactions,
        "clinician",
    ),
    "taper": (
        "evaluation",
        lambda c, i: {"data": TaperCreate(medication_id=_med(c, i), plan="Halve weekly.")},
        medications.plan_taper,
        "clinician",
    ),
    "taper_confirm": (
        "evaluation",
        lambda c, i: {
            "taper_id": _taper(c, i),
            "data": TaperConfirm(last_dose_on=c.now.date()),
        },
        medications.confirm_taper,
        "clinician",
    ),
    "dose_clearance": (
        "integration",
        lambda c, i: {
            "data": ClearanceCreate(systolic=120, diastolic=80, monitor_id=c.monitors[i])
        },
        dosing.request_clearance,
        "coordinator",
    ),
    "dose_clearance_cancel": (
        "integration",
        lambda c, i: {
            "clearance_id": _id(_open_clearance(c, i)),
            "data": ClearanceCancel(reason="Not taken."),
        },
        dosing.cancel_clearance,
        "coordinator",
    ),
    "session": ("integration", _dose, dosing.record_session, "coordinator"),
    "emergency_contact": (
        "evaluation",
        lambda c, i: {
            "data": EmergencyContactCreate(name="Sam", relationship="spouse", phone="555-0100")
        },
        contacts.add_emergency_contact,
        "coordinator",
    ),
    "monitor": (
        "evaluation",
        lambda c, i: {
            "data": MonitorCreate(
                name="Alex",
                relationship="sibling",
                phone="555-0101",
                adult_attested=True,
                trained_on=c.now.date(),
            )
        },
        contacts.add_monitor,
        "coordinator",
    ),
    "monitor_update": (
        "integration",
        lambda c, i: {"monitor_id": c.monitors[i], "data": MonitorUpdate(active=False)},
        contacts.update_monitor,
        "coordinator",
    ),
    "adverse_event": (
        "evaluation",
        lambda c, i: {
            "data": AdverseEventCreate(kind="nausea", severity="mild", description="Queasy.")
        },
        records.record_adverse_event,
        "coordinator",
    ),
    "adverse_event_resolve": (
        "evaluation",
        lambda c, i: {"event_id": _open_event(c, i), "data": AdverseEventResolve(note="Gone.")},
        records.resolve_adverse_event,
        "clinician",
    ),
}


def actor_of(clinic: Clinic, role: str):
    return clinic.clinician if role == "clinician" else clinic.coordinator


def test_every_kind_of_fact_has_a_write_here():
    assert set(WRITES) == set(FACT_BY_NAME) - {"case"}


@pytest.mark.parametrize("fact", list(WRITES))
def test_every_write_appends_exactly_one_audit_event(clinic, case_in, fact):
    state, setup, write, role = WRITES[fact]
    case_id = case_in(state, prepared=False)
    kwargs = setup(clinic, case_id)
    before = clinic.case(case_id)
    trail = clinic.events(case_id)

    record = clinic.call(write, case_id=case_id, actor=actor_of(clinic, role), **kwargs)

    (event,) = clinic.events(case_id)[len(trail) :]
    assert (event.kind, event.trigger, event.from_state, event.to_state) == (
        "fact",
        None,
        None,
        None,
    )
    assert event.data["fact"] == fact
    assert event.data["id"] == record.id
    assert event.data["record"]["id"] == record.id
    assert (event.actor_id, event.actor_role, event.at) == (
        actor_of(clinic, role).id,
        role,
        clinic.now,
    )
    after = clinic.case(case_id)
    assert after.version == before.version + 1
    assert after.updated_at == clinic.now
    assert after.state == before.state


@pytest.mark.parametrize("fact", list(WRITES))
def test_a_stale_expected_version_refuses_a_fact_write(clinic, case_in, fact):
    state, setup, write, role = WRITES[fact]
    case_id = case_in(state, prepared=False)
    kwargs = setup(clinic, case_id)
    before = clinic.snapshot(case_id)
    version = before.case["version"]

    with pytest.raises(VersionConflict):
        clinic.call(
            write,
            case_id=case_id,
            actor=actor_of(clinic, role),
            expected_version=version - 1,
            **kwargs,
        )

    assert clinic.snapshot(case_id) == before
    clinic.call(
        write, case_id=case_id, actor=actor_of(clinic, role), expected_version=version, **kwargs
    )
    assert clinic.case(case_id).version == version + 1


@pytest.mark.parametrize("fact", [f for f, w in WRITES.items() if w[3] == "clinician"])
def test_a_coordinator_may_not_record_clinician_facts(clinic, case_in, fact):
    state, setup, write, _ = WRITES[fact]
    case_id = case_in(state, prepared=False)
    kwargs = setup(clinic, case_id)
    before = clinic.snapshot(case_id)

    with pytest.raises(Forbidden):
        clinic.call(write, case_id=case_id, actor=clinic.coordinator, **kwargs)

    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize("fact", list(WRITES))
def test_an_admin_may_record_no_fact(clinic, case_in, admin, fact):
    state, setup, write, _ = WRITES[fact]
    case_id = case_in(state, prepared=False)
    kwargs = setup(clinic, case_id)
    before = clinic.snapshot(case_id)

    with pytest.raises(Forbidden):
        clinic.call(write, case_id=case_id, actor=admin, **kwargs)

    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize("fact", list(WRITES))
def test_a_write_to_an_unknown_case_is_not_found(clinic, case_in, fact):
    state, setup, write, role = WRITES[fact]
    kwargs = setup(clinic, case_in(state, prepared=False))
    with pytest.raises(NotFound):
        clinic.call(write, case_id=999, actor=actor_of(clinic, role), **kwargs)


# -- time ----------------------------------------------------------------------------


def test_future_timestamps_are_refused_and_change_nothing(clinic, case_in):
    case_id = case_in("integration", prepared=False)
    taper_id = _taper(clinic, case_id)
    later = clinic.now + timedelta(hours=1)
    before = clinic.snapshot(case_id)
    attempts = [
        lambda: clinic.assess(case_id, "phq9", 12, taken_at=later),
        lambda: clinic.vital(case_id, days_ago=-1),
        lambda: clinic.session(case_id, "preparation", completed_at=later),
        lambda: clinic.confirm_taper(case_id, taper_id, last_dose_on=later.date() + timedelta(1)),
    ]

    for attempt in attempts:
        with pytest.raises(ValidationFailed) as refused:
            attempt()
        assert refused.value.errors[0]["loc"][0] == "body"

    assert clinic.snapshot(case_id) == before


def test_a_timestamp_within_the_clock_skew_is_accepted(clinic):
    case_id = clinic.open_case()
    clinic.assess(case_id, "gad7", 8, taken_at=clinic.now + timedelta(seconds=60))
    with pytest.raises(ValidationFailed):
        clinic.assess(case_id, "gad7", 8, taken_at=clinic.now + timedelta(seconds=61))


def test_a_past_timestamp_is_kept_as_given(clinic):
    case_id = clinic.open_case()
    taken_at = clinic.now - timedelta(days=3)
    assessment = clinic.assess(case_id, "phq9", 14, taken_at=taken_at, item9=0)
    stored = clinic.read(records.list_records, case_id=case_id, collection="assessments")
    assert [(a.id, a.taken_at, a.created_at) for a in stored] == [
        (assessment.id, taken_at, clinic.now)
    ]


# -- history ---------------------------------------------------------------------------


def test_history_is_put_once_and_replaced_after(clinic):
    case_id = clinic.open_case()
    with pytest.raises(NotFound):
        clinic.read(records.get_history, case_id=case_id)

    first = clinic.history(case_id)
    clinic.tick(days=1)
    second = clinic.history(case_id, insomnia_nights_per_week=6, diagnoses=["anxiety", "ptsd"])

    stored = clinic.read(records.get_history, case_id=case_id)
    assert stored.id == first.id == second.id
    assert (stored.insomnia_nights_per_week, stored.diagnoses) == (6, ["anxiety", "ptsd"])
    assert (stored.created_at, stored.updated_at) == (first.created_at, clinic.now)
    assert len(clinic.rows(History, case_id)) == 1


def test_collections_read_back_oldest_first_and_only_the_cases_own(clinic):
    case_id, other = clinic.open_case(), clinic.open_case()
    names = ["sertraline", "Ambien", "lamotrigine"]
    for name in names:
        clinic.add_med(case_id, name)
    clinic.add_med(other, "oxycodone")

    stored = clinic.read(records.list_records, case_id=case_id, collection="medications")

    assert [m.name for m in stored] == names
    with pytest.raises(NotFound):
        clinic.read(records.list_records, case_id=999, collection="medications")


def test_a_record_of_another_case_is_not_found(clinic):
    case_id, other = clinic.open_case(), clinic.open_case()
    medication_id = _med(clinic, other)
    with pytest.raises(NotFound):
        clinic.set_med_status(case_id, medication_id, "stopped")
    assert clinic.rows(Medication, other)[0].status == "active"


# -- adverse events ---------------------------------------------------------------------


def test_resolving_records_who_when_and_why_and_only_once(clinic):
    case_id = clinic.open_case()
    event_id = _open_event(clinic, case_id)
    clinic.tick(hours=3)

    resolved = clinic.resolve(case_id, event_id)

    assert (resolved.resolved_at, resolved.resolved_by) == (clinic.now, clinic.clinician.id)
    assert resolved.resolution_note == "Reviewed with the patient."
    before = clinic.snapshot(case_id)
    with pytest.raises(Conflict):
        clinic.resolve(case_id, event_id)
    with pytest.raises(NotFound):
        clinic.resolve(case_id, 999)
    assert clinic.snapshot(case_id) == before


def test_taper_confirmation_of_another_case_is_not_found(clinic):
    case_id, other = clinic.open_case(), clinic.open_case()
    taper_id = _taper(clinic, other)
    with pytest.raises(NotFound):
        clinic.confirm_taper(case_id, taper_id)
    assert clinic.rows(Taper, other)[0].confirmed_at is None
