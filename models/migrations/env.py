"""Alembic's environment: runs carepath's migrations on the engine it is given."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from models import db

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = db.make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # pragma: no cover - carepath always migrates a live database
    raise SystemExit("carepath migrations run online only: use `carepath db upgrade`.")
run_migrations_online()
