"""The engine: a SQLite file engine hands out connections without making anyone wait."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from models.db import SQLITE_POOL_SIZE, make_engine


def test_a_sqlite_engine_never_makes_a_caller_wait_for_a_connection(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}", pool_timeout=0.5)
    held = [engine.raw_connection() for _ in range(SQLITE_POOL_SIZE + 20)]
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        for connection in held:
            connection.close()
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.checkedin() == SQLITE_POOL_SIZE  # kept for the next requests
    engine.dispose()


def test_an_in_memory_sqlite_engine_keeps_its_own_pool():
    engine = make_engine("sqlite://")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    assert not isinstance(engine.pool, QueuePool)
    engine.dispose()
