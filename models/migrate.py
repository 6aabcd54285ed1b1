"""Schema migrations (Alembic), driven from code so that the CLI and the tests share them."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from models.db import get_engine, write_lock


class SchemaBehind(RuntimeError):
    """The database's schema is older than this code's migrations."""


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration for ``engine``, with no ini file."""
    config = Config()
    config.set_main_option("script_location", "models:migrations")
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def _with_connection(engine: Engine, action, *args) -> None:
    config = alembic_config(engine)
    # In the writers' turn, as every write: an API process on the same SQLite file writes
    # on its event loop, where it must never wait for SQLite's own lock.
    with write_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, *args)


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Apply every migration up to ``revision``."""
    _with_connection(engine or get_engine(), command.upgrade, revision)


def downgrade(engine: Engine | None = None, revision: str = "base") -> None:
    """Revert migrations down to ``revision``."""
    _with_connection(engine or get_engine(), command.downgrade, revision)


def grant_service_role(engine: Engine, role: str) -> None:
    """Grant the PostgreSQL role the service runs as what it needs, and no more.

    Run as the owner of the tables, after each upgrade (tables a migration adds
    have no grants yet). The service reads and writes every table but may only
    add to the audit trail (no UPDATE, DELETE or TRUNCATE there), and reads the
    schema's revision. Owning nothing, it cannot set the audit triggers aside.
    """
    if engine.dialect.name != "postgresql":
        raise ValueError("roles exist on PostgreSQL only")
    name = engine.dialect.identifier_preparer.quote(role)
    with engine.begin() as conn:
        for statement in (
            f"GRANT USAGE ON SCHEMA public TO {name}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {name}",
            f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {name}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}",
        ):
            conn.exec_driver_sql(statement)


def current_revision(engine: Engine | None = None) -> str | None:
    """The revision the database is at, or None for an empty one."""
    with (engine or get_engine()).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine | None = None) -> str | None:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config(engine or get_engine())).get_current_head()


def prepare_database(engine: Engine | None = None) -> None:
    """Make the schema ready to serve.

    The embedded SQLite default migrates itself, so that the two-command start
    keeps working. A server database is migrated by an operator (``carepath db
    upgrade``) and refused while it is behind: several processes must not race
    to change a shared schema.
    """
    engine = engine or get_engine()
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise SchemaBehind(
            f"The database schema is at {current or 'nothing'}, this code needs {head}: "
            "run `carepath db upgrade` first."
        )
