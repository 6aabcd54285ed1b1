"""Recording facts: each write is audited once, refusals change nothing, time is checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from models.facts import AdverseEvent, CaseChange, DoseClearance, History, Medication, Taper
from models.schemas import (
    AdverseEventCreate,
    AdverseEventResolve,
    AssessmentCreate,
    CaseAssignment,
    CaseUpdate,
    ClearanceCancel,
    ClearanceCreate,
    ConsentCreate,
    CountCreate,
    DispenseCreate,
    EmergencyContactCreate,
    HistoryIn,
    MedicationCreate,
    MedicationUpdate,
    MonitorCreate,
    MonitorUpdate,
    ProfileIn,
    ReceiptCreate,
    ReturnCreate,
    SafetyPlanCreate,
    ScreeningCreate,
    SessionCreate,
    TaperConfirm,
    TaperCreate,
    VitalCreate,
)
from tests.workflow.conftest import ELIGIBLE_HISTORY, ELIGIBLE_PROFILE, Clinic
from workflow import cases, contacts, dosing, medications, patient, records, substance
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


def _refill_data(clinic: Clinic, case_id: int) -> dict[str, Any]:
    """A refill's fields, once one unit is left of the first dispense (a refill waits until
    few units remain, SPEC.md 4.5)."""
    clinic.give_back(case_id, clinic.units(case_id) - 1)
    return {"data": DispenseCreate(quantity_units=8, lot="LOT-2026-B2")}


def _refill(clinic: Clinic, case_id: int) -> int:
    """A refill dispensed (not yet received) once one unit is left of the first dispense."""
    clinic.give_back(case_id, clinic.units(case_id) - 1)
    return _id(clinic.refill(case_id))


def _changed(service: Callable[..., Any]) -> Callable[..., Any]:
    """A write to the case itself answers with the case; here, with the ``CaseChange`` it
    recorded, like every other fact's record."""

    def call(session: Session, **kwargs: Any) -> CaseChange:
        service(session, **kwargs)
        newest = select(CaseChange).order_by(col(CaseChange.id).desc()).limit(1)
        return session.exec(newest).one()

    return call


# fact name -> (state the case is in, setup returning the kwargs of the write, the write).
WRITES: dict[str, tuple[str, Callable[[Clinic, int], dict], Callable[..., Any], str]] = {
    "history": (
        "evaluation",
        # Only a clinician judges the insomnia mood-driven: a coordinator leaves it false.
        lambda c, i: {"data": HistoryIn(**ELIGIBLE_HISTORY | {"insomnia_mood_driven": False})},
        patient.put_history,
        "coordinator",
    ),
    "profile": (
        "evaluation",
        lambda c, i: {"data": ProfileIn(**ELIGIBLE_PROFILE)},
        patient.put_profile,
        "coordinator",
    ),
    "consent": (
        "evaluation",
        lambda c, i: {"data": ConsentCreate(version="2026-1", signed_at=c.now, method="paper")},
        patient.record_consent,
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
    "assignment": (
        "evaluation",
        lambda c, i: {"data": CaseAssignment(coordinator_id=c.coordinator.id)},
        _changed(cases.assign_case),
        "coordinator",
    ),
    "case_update": (
        "evaluation",
        lambda c, i: {"data": CaseUpdate(patient_state="NY")},
        _changed(cases.update_case),
        "clinician",
    ),
    "safety_plan": (
        "on_hold",
        lambda c, i: {
            "data": SafetyPlanCreate(
                plan="Crisis line; the monitor holds the medication.",
                reviewed_with_patient_at=c.now,
                risk_level="low",
                means_secured=True,
            )
        },
        records.record_safety_plan,
        "clinician",
    ),
    # The controlled-substance record (SPEC.md 4.5). In integration the 8 units of the
    # first dispense are on hand (prepared=False: no dose taken).
    "dispense": ("integration", _refill_data, substance.record_dispense, "clinician"),
    "dispense_receipt": (
        "integration",
        lambda c, i: {"dispense_id": _refill(c, i), "data": ReceiptCreate(received_at=c.now)},
        substance.receive_dispense,
        "coordinator",
    ),
    "medication_count": (
        "integration",
        lambda c, i: {"data": CountCreate(units_counted=8, counted_at=c.now)},
        substance.record_count,
        "coordinator",
    ),
    "medication_return": (
        "integration",
        lambda c, i: {"data": ReturnCreate(units=2, kind="returned", witness="Sam Rivera")},
        substance.record_return,
        "coordinator",
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
        clinic.read(patient.get_history, case_id=case_id)

    first = clinic.history(case_id)
    clinic.tick(days=1)
    second = clinic.history(case_id, insomnia_nights_per_week=6, diagnoses=["anxiety", "ptsd"])

    stored = clinic.read(patient.get_history, case_id=case_id)
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


# -- closed cases (SPEC.md section 4) -------------------------------------------------------

CLOSED_ACCEPTS = {
    "adverse_event",
    "adverse_event_resolve",
    "medication_count",
    "medication_return",
}


@pytest.mark.parametrize("fact", sorted(set(WRITES) - CLOSED_ACCEPTS))
def test_a_closed_case_refuses_every_other_fact_and_changes_nothing(clinic, case_in, fact):
    state, setup, write, role = WRITES[fact]
    case_id = case_in(state, prepared=False)
    kwargs = setup(clinic, case_id)  # a record the write names exists from before the close
    clinic.fire(case_id, "withdraw")
    before = clinic.snapshot(case_id)

    with pytest.raises(Conflict) as refused:
        clinic.call(write, case_id=case_id, actor=actor_of(clinic, role), **kwargs)

    accepted = "adverse_event, adverse_event_resolve, medication_count, medication_return"
    assert f"closed (withdrawn): it records only {accepted}; not {fact}" in refused.value.detail
    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize(
    ("closed", "via"), [("ineligible", "evaluation"), ("discharged", "monitoring")]
)
def test_every_closed_state_refuses_facts(clinic, case_in, closed, via):
    case_id = case_in(via)
    clinic.reconcile(case_id)  # discharge needs medication.reconciled
    clinic.fire(case_id, {"ineligible": "decline", "discharged": "discharge"}[closed])
    before = clinic.snapshot(case_id)
    for attempt in (
        lambda: clinic.assess(case_id, "isi", 12),
        lambda: clinic.vital(case_id),
        lambda: clinic.add_med(case_id, "sertraline"),
        lambda: clinic.safety_plan(case_id),
    ):
        with pytest.raises(Conflict):
            attempt()
    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize("closed", ["discharged", "withdrawn", "ineligible"])
def test_a_closed_case_accepts_adverse_events_and_their_resolution(clinic, case_in, closed):
    case_id = case_in({"ineligible": "evaluation"}.get(closed, "monitoring"))
    clinic.reconcile(case_id)  # discharge needs medication.reconciled
    clinic.fire(
        case_id, {"ineligible": "decline", "discharged": "discharge"}.get(closed, "withdraw")
    )
    version = clinic.case(case_id).version

    event = clinic.adverse_event(case_id, "dizziness", "moderate")
    clinic.resolve(case_id, _id(event))

    case = clinic.case(case_id)
    assert (case.state, case.version) == (closed, version + 2)


def test_a_withdrawn_case_still_accounts_for_the_units_left_at_home(clinic, case_in):
    """SPEC.md 2 and 4.5: after withdraw, the units at home are counted, returned and
    disposed of on the closed case."""
    case_id = case_in("monitoring")
    clinic.fire(case_id, "withdraw")
    version = clinic.case(case_id).version
    assert clinic.units(case_id) == 7

    count = clinic.count(case_id, 7)
    clinic.give_back(case_id, 4)
    clinic.give_back(case_id, 3, kind="disposed")

    assert (count.expected_units, count.shortfall) == (7, 0)
    assert clinic.units(case_id) == 0
    case = clinic.case(case_id)
    assert (case.state, case.version) == ("withdrawn", version + 3)
    assert [e.data["fact"] for e in clinic.events(case_id)[-3:]] == [
        "medication_count",
        "medication_return",
        "medication_return",
    ]


@pytest.mark.parametrize(
    ("closed", "via"), [("ineligible", "evaluation"), ("discharged", "monitoring")]
)
def test_a_closed_case_with_nothing_at_home_takes_a_count_but_no_return(
    clinic, case_in, closed, via
):
    """Counts and returns are accepted when closed; a return is still at most the units on
    hand (a 422 on the field, not a conflict about the state)."""
    case_id = case_in(via)
    clinic.reconcile(case_id)
    clinic.fire(case_id, {"ineligible": "decline", "discharged": "discharge"}[closed])
    version = clinic.case(case_id).version

    assert clinic.count(case_id, 0).shortfall == 0
    before = clinic.snapshot(case_id)
    with pytest.raises(ValidationFailed) as refused:
        clinic.give_back(case_id, 1)

    assert refused.value.errors[0]["loc"] == ["body", "units"]
    assert clinic.snapshot(case_id) == before
    assert (clinic.case(case_id).state, clinic.case(case_id).version) == (closed, version + 1)


def test_a_count_entered_late_is_checked_against_the_units_at_home_when_it_was_taken(
    clinic, case_in
):
    """SPEC.md 4: a fact has its own time. A count taken before a refill arrived, entered
    after the refill's receipt, found what was there then: no shortfall, no loss."""
    case_id = case_in("integration", prepared=False)
    clinic.give_back(case_id, 7)  # 1 unit at home
    counted_at = clinic.now
    clinic.tick(hours=1)
    refill = clinic.refill(case_id)
    clinic.receive(case_id, refill.id)  # 8 more: 9 at home
    clinic.tick(hours=1)

    count = clinic.count(case_id, 1, at=counted_at)  # the 1 unit there before the refill

    assert count.shortfall == 0
    assert clinic.rows(AdverseEvent, case_id) == []
    assert clinic.units(case_id) == 9
    assert clinic.case(case_id).state == "integration"


# -- onset times ----------------------------------------------------------------------------


def test_an_adverse_event_begins_when_it_is_recorded_unless_told(clinic):
    case_id = clinic.open_case()
    clinic.tick(days=2)
    now = clinic.adverse_event(case_id)
    earlier = clinic.adverse_event(case_id, onset_at=clinic.now - timedelta(days=1, hours=3))
    assert (now.onset_at, now.created_at) == (clinic.now, clinic.now)
    assert earlier.onset_at == clinic.now - timedelta(days=1, hours=3)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(seconds=60), True),  # within the clock skew
        (timedelta(seconds=61), False),  # in the future
        (-timedelta(days=365), True),  # fact_max_age_days before the case was created
        (-timedelta(days=365, seconds=1), False),
    ],
)
def test_onset_at_follows_the_timestamp_rules(clinic, offset, accepted):
    case_id = clinic.open_case()  # created now: both limits are measured from now
    before = clinic.snapshot(case_id)
    if accepted:
        assert clinic.adverse_event(case_id, onset_at=clinic.now + offset).id is not None
        return
    with pytest.raises(ValidationFailed) as refused:
        clinic.adverse_event(case_id, onset_at=clinic.now + offset)
    assert refused.value.errors[0]["loc"] == ["body", "onset_at"]
    assert clinic.snapshot(case_id) == before
