"""Migration 0004 (users) keeps every user, and the cases that refer to them, both ways."""

from __future__ import annotations

import json

from sqlalchemy import text

from models import migrate


def test_licence_states_become_licences_without_expiry_and_back(empty_engine):
    migrate.upgrade(empty_engine, "0003")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, license_states, token_hash, created_at) VALUES "
                "('Dr-Lee', 'clinician', :states, 'h1', CURRENT_TIMESTAMP), "
                "('sam', 'coordinator', '[]', 'h2', CURRENT_TIMESTAMP)"
            ),
            {"states": json.dumps(["CA", "NY"])},
        )
        conn.execute(
            text(
                "INSERT INTO cases (patient_ref, patient_state, state, phase, version, "
                "medication_list_version, referrals, assigned_clinician_id, created_at, "
                "updated_at) VALUES ('p-1', 'CA', 'evaluation', 'evaluation', 1, 0, '[]', 1, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )

    migrate.upgrade(empty_engine)

    with empty_engine.connect() as conn:
        rows = conn.execute(text("SELECT name_key, licenses, active FROM users ORDER BY id")).all()
        assigned = conn.execute(text("SELECT assigned_clinician_id FROM cases")).scalar()
    decoded = [(key, _json(lic), bool(active)) for key, lic, active in rows]
    assert decoded == [
        (
            "dr-lee",
            [{"state": "CA", "expires_on": None}, {"state": "NY", "expires_on": None}],
            True,
        ),
        ("sam", [], True),
    ]
    assert assigned == 1

    migrate.downgrade(empty_engine, "0003")
    with empty_engine.connect() as conn:
        states = conn.execute(text("SELECT license_states FROM users ORDER BY id")).scalars()
        assert [_json(s) for s in states] == [["CA", "NY"], []]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
