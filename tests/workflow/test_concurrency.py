"""Many requests on one case at once: each thread has its own session, as each request would.

Runs on the SQLite file database by default and on PostgreSQL when
``CAREPATH_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from models.db import session_scope
from models.facts import DoseClearance
from models.schemas import CaseCreate, SessionCreate, VitalCreate
from tests.workflow.conftest import body_for
from workflow import cases, dosing, records
from workflow.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    VersionConflict,
)

THREADS = 16


def race(engine, work: Callable[[Any], Any]) -> list[Any]:
    """Run ``work(session)`` in THREADS threads released together; results or DomainErrors."""
    start = threading.Barrier(THREADS)

    def one(_: int) -> Any:
        start.wait()
        try:
            with session_scope(engine) as session:
                return work(session)
        except DomainError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(one, range(THREADS)))


def outcomes(results: list[Any]) -> Counter:
    return Counter("ok" if not isinstance(r, Exception) else type(r).__name__ for r in results)


def test_sixteen_holds_at_once_exactly_one_succeeds(clinic, case_in):
    case_id = case_in("integration")
    version = clinic.case(case_id).version

    results = race(
        clinic.engine,
        lambda s: cases.fire_trigger(
            s,
            case_id=case_id,
            trigger="hold",
            actor=clinic.coordinator,
            now=clinic.now,
            body=body_for("hold"),
        ),
    )

    counts = outcomes(results)
    assert counts["ok"] == 1
    assert all(
        isinstance(r, InvalidTransition | VersionConflict)
        for r in results
        if isinstance(r, Exception)
    )
    assert sum(counts.values()) == THREADS
    case = clinic.case(case_id)
    assert (case.state, case.held_from, case.version) == ("on_hold", "integration", version + 1)
    assert [e.trigger for e in clinic.events(case_id)].count("hold") == 1


def test_sixteen_holds_with_the_same_if_match_exactly_one_succeeds(clinic, case_in):
    case_id = case_in("monitoring")
    version = clinic.case(case_id).version

    results = race(
        clinic.engine,
        lambda s: cases.fire_trigger(
            s,
            case_id=case_id,
            trigger="hold",
            actor=clinic.clinician,
            now=clinic.now,
            body=body_for("hold"),
            expected_version=version,
        ),
    )

    assert outcomes(results) == Counter({"ok": 1, "VersionConflict": THREADS - 1})
    assert clinic.case(case_id).version == version + 1


def test_sixteen_writes_at_once_all_land_in_order_without_a_lost_update(clinic):
    case_id = clinic.open_case()

    results = race(
        clinic.engine,
        lambda s: records.record_vital(
            s,
            case_id=case_id,
            data=VitalCreate(systolic=120, diastolic=80, taken_at=clinic.now),
            actor=clinic.coordinator,
            now=clinic.now,
        ),
    )

    assert outcomes(results) == Counter({"ok": THREADS})
    case = clinic.case(case_id)
    assert case.version == 1 + THREADS == len(clinic.events(case_id))


def test_sixteen_new_cases_for_one_patient_at_once_open_exactly_one(clinic):
    data = CaseCreate(patient_ref="p-race", patient_state="CA")

    results = race(
        clinic.engine,
        lambda s: cases.create_case(s, data=data, actor=clinic.coordinator, now=clinic.now).id,
    )

    assert outcomes(results) == Counter({"ok": 1, "Conflict": THREADS - 1})
    assert all(isinstance(r, int | Conflict) for r in results)
    rows, _ = clinic.read(cases.list_cases)
    assert [c.patient_ref for c in rows] == ["p-race"]


def test_sixteen_new_cases_for_one_patient_in_different_letter_cases_open_exactly_one(clinic):
    """On PostgreSQL the check before the insert can race: the unique index on
    lower(patient_ref) refuses the losers, which get the same Conflict."""
    refs = ["p-mixed", "P-MIXED", "P-Mixed", "p-MIXED"]
    turns = itertools.count()  # next() on a count is atomic: each thread its own turn

    def create(session):
        ref = refs[next(turns) % len(refs)]
        data = CaseCreate(patient_ref=ref, patient_state="CA")
        return cases.create_case(session, data=data, actor=clinic.coordinator, now=clinic.now).id

    results = race(clinic.engine, create)

    assert outcomes(results) == Counter({"ok": 1, "Conflict": THREADS - 1})
    rows, _ = clinic.read(cases.list_cases, patient_ref="P-mixed")
    assert len(rows) == 1


def at_least_units(clinic, case_id: int, units: int) -> None:
    """Two units a dose (the same mg) and a refill of 8 doses, received: ``units`` or more."""
    dose_mg = clinic.case(case_id).prescription["dose_mg"]
    clinic.fire(
        case_id, "adjust_dose", body=body_for("adjust_dose", dose_mg=dose_mg, units_per_dose=2)
    )
    clinic.give_back(case_id, clinic.units(case_id), kind="disposed")
    clinic.receive(case_id, clinic.refill(case_id, quantity_units=16).id)
    assert clinic.units(case_id) >= units


def test_sixteen_doses_at_once_never_take_more_units_than_are_on_hand(clinic, case_in):
    """Each dose reads the units on hand under the case's lock: with 8 at home, 8 doses are
    recorded and 8 refused, and the record never goes below zero."""
    case_id = case_in("integration", prepared=False)
    assert clinic.units(case_id) == 8
    fields = clinic.dosing_fields(case_id, clinic.now)
    clinic.now = fields["completed_at"]
    data = SessionCreate(kind="dosing", clearance_id=None, **fields)

    results = race(
        clinic.engine,
        lambda s: dosing.record_session(
            s, case_id=case_id, data=data, actor=clinic.coordinator, now=clinic.now
        ),
    )

    assert outcomes(results) == Counter({"ok": 8, "ValidationFailed": 8})
    assert clinic.units(case_id) == 0


def test_one_clearance_used_by_sixteen_dosing_sessions_at_once_is_used_once(clinic, case_in):
    """Every dose is recorded (a dose that was taken is never lost), but only one uses the
    clearance; the others carry the deviation ``clearance.used``."""
    case_id = case_in("integration", prepared=False)
    at_least_units(clinic, case_id, THREADS)
    clinic.session(case_id, "preparation")
    clearance = clinic.clearance(case_id)
    fields = clinic.dosing_fields(case_id, clearance.created_at)
    clinic.now = fields["completed_at"]
    data = SessionCreate(kind="dosing", clearance_id=clearance.id, **fields)

    results = race(
        clinic.engine,
        lambda s: dosing.record_session(
            s, case_id=case_id, data=data, actor=clinic.coordinator, now=clinic.now
        ),
    )

    assert outcomes(results) == Counter({"ok": THREADS})
    assert sorted(tuple(r.deviations) for r in results) == [()] + [("clearance.used",)] * (
        THREADS - 1
    )
    (used,) = [c for c in clinic.rows(DoseClearance, case_id) if c.id == clearance.id]
    assert (used.open, used.void) == (False, False)
