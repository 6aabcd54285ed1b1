"""The engine: a SQLite file engine hands out connections without making anyone wait, and its
writers take turns, in the process and between processes."""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from models.db import (
    SQLITE_POOL_SIZE,
    WRITERS_SUFFIX,
    make_engine,
    write_lock,
    writers_waiting,
)
from tests.models.turns import other_process_turn


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


# -- the writers' turn between processes (models.db._FileTurn) ---------------------------


def _turn_is_free(database: Path) -> bool:
    fd = os.open(f"{database}{WRITERS_SUFFIX}", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_writer_waits_for_another_processs_turn_and_holds_its_own(tmp_path):
    database = tmp_path / "turns.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:  # the database exists, private, before any write
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    lock = write_lock(engine)
    other = other_process_turn(database)
    entered, leave = threading.Event(), threading.Event()

    def writer() -> None:
        with lock:
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert not entered.wait(0.5), "a writer went in during another process's turn"
        assert writers_waiting() == 1  # the gauge counts a writer waiting for another process
        os.close(other)  # the other process is done
        assert entered.wait(5), "the writer was not woken when the other process let go"
        assert not _turn_is_free(database), "the writer's turn does not hold off other processes"
        assert writers_waiting() == 0
    finally:
        leave.set()
        thread.join(5)
    assert _turn_is_free(database)
    assert stat.S_IMODE(os.stat(f"{database}{WRITERS_SUFFIX}").st_mode) == 0o600
    engine.dispose()


def test_a_turn_not_given_within_the_busy_timeout_is_database_is_locked(tmp_path):
    database = tmp_path / "late.db"
    engine = make_engine(f"sqlite:///{database}")
    lock = write_lock(engine)
    lock.turn.timeout = 0.3
    other = other_process_turn(database)
    with pytest.raises(OperationalError, match="database is locked"), lock:
        pytest.fail("went in during another process's turn")
    assert writers_waiting() == 0
    os.close(other)
    # The abandoned wait takes the turn once the other process lets go, and lets it go at
    # once: a third process waiting for the turn gets it. (Not "the turn is free": the
    # abandoned wait may take it just after any such look.)
    third = os.open(f"{database}{WRITERS_SUFFIX}", os.O_RDWR)
    got = threading.Event()
    taker = threading.Thread(target=lambda: (fcntl.flock(third, fcntl.LOCK_EX), got.set()))
    taker.start()
    try:
        assert got.wait(5), "the abandoned wait kept the turn"
    finally:
        taker.join(5)
        os.close(third)
    with lock:  # this process's queue was let go of too
        assert not _turn_is_free(database)
    engine.dispose()


def test_writers_fall_back_to_sqlites_own_lock_when_the_turns_file_cannot_be_opened(
    tmp_path, caplog
):
    database = tmp_path / "plain.db"
    (tmp_path / f"plain.db{WRITERS_SUFFIX}").mkdir()  # not a file: root cannot open it either
    engine = make_engine(f"sqlite:///{database}")
    lock = write_lock(engine)
    with caplog.at_level(logging.WARNING, logger="models.db"):
        for _ in range(2):
            with lock, engine.begin() as connection:
                connection.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
                connection.execute(text("INSERT INTO t VALUES (1)"))
    warnings = [r for r in caplog.records if "SQLite's own lock" in r.getMessage()]
    assert len(warnings) == 1
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 2
    engine.dispose()
