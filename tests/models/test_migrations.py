"""The Alembic migrations build the schema the models describe, both ways, on both databases."""

from __future__ import annotations

import re
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel, select

from models import migrate


def _differences(engine) -> list:
    with engine.connect() as connection, warnings.catch_warnings():
        # SQLite's expression indexes cannot be reflected, so they are not compared here;
        # test_the_patient_indexes_are_on_lower_patient_ref_both_ways reads them instead.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def _insert_event(engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cases (patient_ref, patient_state, state, phase, version, "
                "medication_list_version, referrals, created_at, updated_at) VALUES "
                "('p-1', 'CA', 'evaluation', 'evaluation', 1, 0, '[]', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (case_id, at, actor_role, kind, data, hash) "
                "VALUES (1, CURRENT_TIMESTAMP, 'system', 'fact', '{}', 'x')"
            )
        )


def test_empty_to_head_down_to_base_and_up_again(empty_engine):
    assert migrate.current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision(empty_engine)
    tables = set(inspect(empty_engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables

    migrate.downgrade(empty_engine, "base")
    assert migrate.current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision(empty_engine)


def test_models_and_migrations_agree(empty_engine):
    migrate.upgrade(empty_engine)
    assert _differences(empty_engine) == []


def test_an_empty_database_differs_from_the_models(empty_engine):
    # The comparison above can fail: on an empty database it finds every table missing.
    assert {d[1].name for d in _differences(empty_engine) if d[0] == "add_table"} == set(
        SQLModel.metadata.tables
    )


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET kind = 'x'", "DELETE FROM audit_events"]
)
def test_the_database_refuses_to_change_audit_events(empty_engine, statement):
    migrate.upgrade(empty_engine)
    _insert_event(empty_engine)
    with pytest.raises(DBAPIError, match="append-only"), empty_engine.begin() as conn:
        conn.execute(text(statement))
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM audit_events")).scalars().all() == ["fact"]


def test_prepare_database_migrates_sqlite_and_refuses_a_server_database_behind(empty_engine):
    if empty_engine.dialect.name == "sqlite":
        migrate.prepare_database(empty_engine)
        assert migrate.current_revision(empty_engine) == migrate.head_revision(empty_engine)
        return
    with pytest.raises(migrate.SchemaBehind, match="carepath db upgrade"):
        migrate.prepare_database(empty_engine)
    migrate.upgrade(empty_engine)
    migrate.prepare_database(empty_engine)  # at head: no complaint


def test_the_database_refuses_to_rewrite_or_empty_audit_events(empty_engine):
    migrate.upgrade(empty_engine)
    _insert_event(empty_engine)
    if empty_engine.dialect.name == "postgresql":
        statement = "TRUNCATE audit_events"
    else:
        statement = (
            "INSERT OR REPLACE INTO audit_events (id, case_id, at, actor_role, kind, data, hash) "
            "VALUES (1, 1, CURRENT_TIMESTAMP, 'system', 'forged', '{}', 'x')"
        )
    with pytest.raises(DBAPIError, match="append-only"), empty_engine.begin() as conn:
        conn.execute(text(statement))
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM audit_events")).scalars().all() == ["fact"]


def test_upgrade_chains_the_events_already_stored(empty_engine):
    from sqlmodel import Session

    from workflow.audit_chain import verify_all

    migrate.upgrade(empty_engine, "0002")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cases (patient_ref, patient_state, state, phase, version, "
                "medication_list_version, referrals, created_at, updated_at) VALUES "
                "('p-1', 'CA', 'evaluation', 'evaluation', 1, 0, '[]', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        for kind in ("transition", "fact", "fact"):
            conn.execute(
                text(
                    "INSERT INTO audit_events (case_id, at, actor_role, kind, data) "
                    f"VALUES (1, CURRENT_TIMESTAMP, 'system', '{kind}', '{{\"n\": 1}}')"
                )
            )
    migrate.upgrade(empty_engine)
    with Session(empty_engine) as session:
        verdicts = list(verify_all(session))
    assert [(v.ok, v.events) for v in verdicts] == [(True, 3)]


def _index_definitions(engine, table: str) -> dict[str, str]:
    """Each index of ``table`` as the database states it (SQLAlchemy cannot reflect
    expression indexes on SQLite, so the comparison above does not see them there)."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"
    with engine.connect() as conn:
        rows = conn.execute(text(query), {"t": table}).all()
    # Compared without quotes, casts or brackets: "lower((patient_ref)::text)" on PostgreSQL.
    return {name: re.sub(r'::text|["()]', "", (sql or "").lower()) for name, sql in rows}


def test_the_patient_indexes_are_on_lower_patient_ref_both_ways(empty_engine):
    migrate.upgrade(empty_engine)
    indexes = _index_definitions(empty_engine, "cases")
    assert "lowerpatient_ref" in indexes["uq_cases_open_patient_ref"]
    assert "unique" in indexes["uq_cases_open_patient_ref"]
    assert "phase <> 'closed'" in indexes["uq_cases_open_patient_ref"].replace("!=", "<>")
    assert "lowerpatient_ref" in indexes["ix_cases_patient_key_id"]

    migrate.downgrade(empty_engine, "0008")
    indexes = _index_definitions(empty_engine, "cases")
    assert "lower" not in indexes["uq_cases_open_patient_ref"]
    assert "ix_cases_patient_key_id" not in indexes


def _insert(conn, table: str, **values) -> int:
    names = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    return conn.execute(
        text(f"INSERT INTO {table} ({names}) VALUES ({marks}) RETURNING id"), values
    ).scalar_one()


def test_upgrade_fills_in_approval_times_and_how_tapers_were_planned(empty_engine):
    from datetime import UTC, date, datetime

    from sqlmodel import Session

    from models.facts import Taper
    from models.tables import Case

    migrate.upgrade(empty_engine, "0008")
    sqlite = empty_engine.dialect.name == "sqlite"

    def at(day: int) -> datetime:
        moment = datetime(2026, 3, day, 9, 0, tzinfo=UTC)
        return moment.replace(tzinfo=None) if sqlite else moment

    case = {
        "patient_state": "CA",
        "version": 1,
        "medication_list_version": 0,
        "referrals": "[]",
        "created_at": at(1),
        "updated_at": at(1),
    }
    event = {"actor_role": "clinician", "kind": "transition", "data": "{}", "hash": "x"}
    with empty_engine.begin() as conn:
        approved = _insert(
            conn, "cases", patient_ref="p-1", state="monitoring", phase="monitoring", **case
        )
        waiting = _insert(
            conn, "cases", patient_ref="p-2", state="evaluation", phase="evaluation", **case
        )
        _insert(conn, "audit_events", case_id=approved, at=at(2), trigger="create", **event)
        _insert(conn, "audit_events", case_id=approved, at=at(5), trigger="approve", **event)
        _insert(conn, "audit_events", case_id=waiting, at=at(2), trigger="create", **event)
        medication = {"case_id": waiting, "name": "Xanax", "drug_class": "benzodiazepine"}
        medication |= {
            "drug_classes": '["benzodiazepine"]',
            "created_at": at(1),
            "updated_at": at(1),
        }
        still_taken = _insert(conn, "medications", status="active", **medication)
        stopped = _insert(
            conn, "medications", status="stopped", stopped_on=date(2026, 2, 20), **medication
        )
        taper = {"case_id": waiting, "plan": "Halve weekly.", "created_at": at(3)}
        _insert(conn, "tapers", medication_id=still_taken, **taper)
        _insert(conn, "tapers", medication_id=stopped, **taper)

    migrate.upgrade(empty_engine)

    with Session(empty_engine) as session:
        cases = {c.id: c.approved_at for c in session.exec(select(Case))}
        tapers = [t.active_when_planned for t in session.exec(select(Taper).order_by(Taper.id))]
    assert cases == {approved: datetime(2026, 3, 5, 9, 0, tzinfo=UTC), waiting: None}
    assert tapers == [True, False]


def test_upgrade_stops_when_two_open_cases_differ_only_in_letter_case(empty_engine):
    migrate.upgrade(empty_engine, "0008")
    with empty_engine.begin() as conn:
        for ref in ("p-9", "P-9"):
            conn.execute(
                text(
                    "INSERT INTO cases (patient_ref, patient_state, state, phase, version, "
                    "medication_list_version, referrals, created_at, updated_at) VALUES "
                    f"('{ref}', 'CA', 'evaluation', 'evaluation', 1, 0, '[]', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
    with pytest.raises(RuntimeError, match="close or withdraw the extra cases"):
        migrate.upgrade(empty_engine)
