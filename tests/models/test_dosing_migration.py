"""Migration 0010 (the dosing cycle) carries v1 doses, clearances and prescriptions over."""

from __future__ import annotations

import json

from sqlalchemy import text

from models import migrate

CASE = (
    "INSERT INTO cases (patient_ref, patient_state, state, phase, version, "
    "medication_list_version, referrals, created_at, updated_at) VALUES "
    "('p-1', 'CA', 'monitoring', 'monitoring', 4, 0, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)
EVENT = (
    "INSERT INTO audit_events (case_id, at, actor_id, actor_role, kind, trigger, data, hash) "
    "VALUES (1, CURRENT_TIMESTAMP, 7, 'clinician', 'transition', :trigger, :data, :hash)"
)
CLEARANCE = (
    "INSERT INTO dose_clearances (case_id, systolic, diastolic, monitor_present, granted, unmet, "
    "created_at) VALUES (1, 120, 80, :monitor, :granted, '[]', CURRENT_TIMESTAMP)"
)
DOSE = (
    "INSERT INTO care_sessions (case_id, kind, completed_at, clearance_id, created_at) "
    "VALUES (1, 'dosing', CURRENT_TIMESTAMP, 1, CURRENT_TIMESTAMP)"
)


def test_v1_doses_clearances_and_prescriptions_are_carried_over_and_back(empty_engine):
    migrate.upgrade(empty_engine, "0008")
    with empty_engine.begin() as conn:
        conn.execute(text(CASE))
        for trigger, data in (
            ("prescribe", {"dose_mg": 100, "route": "sublingual"}),
            ("adjust_dose", {"dose_mg": 80, "rationale": "Dizzy."}),
        ):
            conn.execute(
                text(EVENT), {"trigger": trigger, "data": json.dumps(data), "hash": trigger}
            )
        for granted in (True, True, False):  # used by the dose, unused, refused
            conn.execute(text(CLEARANCE), {"monitor": True, "granted": granted})
        conn.execute(text(DOSE))

    migrate.upgrade(empty_engine)

    with empty_engine.connect() as conn:
        prescription = _json(conn.execute(text("SELECT prescription FROM cases")).scalar())
        opened = conn.execute(text("SELECT open, void FROM dose_clearances ORDER BY id")).all()
        dose = conn.execute(
            text("SELECT dosed_at = completed_at, deviations FROM care_sessions")
        ).one()
    assert {k: prescription[k] for k in ("dose_mg", "route", "prescribed_by", "refills")} == {
        "dose_mg": 80,
        "route": "sublingual",
        "prescribed_by": 7,
        "refills": 0,
    }
    assert [(bool(o), bool(v)) for o, v in opened] == [
        (False, False),
        (True, False),
        (False, False),
    ]
    assert bool(dose[0]) and _json(dose[1]) == []

    migrate.downgrade(empty_engine, "0008")
    with empty_engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM dose_clearances")).scalar()
        present = conn.execute(text("SELECT monitor_present FROM dose_clearances")).scalars().all()
    assert kept == 3 and all(present)


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
