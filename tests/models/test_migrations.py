"""The Alembic migrations build the schema the models describe, both ways, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from models import migrate


def _differences(engine) -> list:
    with engine.connect() as connection:
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
