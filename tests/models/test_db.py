"""The engine: a SQLite file engine hands out connections without making anyone wait, and its
writers take turns, in the process and between processes."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from models import db as models_db
from models import migrate
from models.db import (
    SQLITE_POOL_SIZE,
    WRITERS_SUFFIX,
    make_engine,
    read_only,
    run_write,
    sqlite_writer_lock,
    write_lock,
    writers_waiting,
)
from tests.models.turns import other_process_turn

T = TypeVar("T")


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


def test_a_begin_refused_by_sqlites_lock_is_sqlalchemys_database_is_locked(tmp_path, monkeypatch):
    """Each transaction's BEGIN runs on the driver's connection; past the busy timeout it fails
    as any statement does (SQLAlchemy's OperationalError, a 503 in the API), and a reader's
    plain BEGIN never waits for the writer."""
    monkeypatch.setattr(models_db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    database = tmp_path / "held.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer that takes no turn (another program)
    try:
        with pytest.raises(OperationalError, match="database is locked"), engine.begin():
            pass
        with read_only(engine).connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()


# -- the event loop's writers (models.db.WriterLock.on_loop) -------------------------------


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` in a thread of its own: a session's browser tests keep an event
    loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result(30)


def _loop_engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'loop.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    return engine, sqlite_writer_lock(engine)


def test_loop_writers_go_first_come_first_with_the_loop_free_between_two(tmp_path):
    """Writers queued on the loop write in the order they came, never two in one go: whatever
    else is ready (a ``GET /health``) runs between them."""
    engine, lock = _loop_engine(tmp_path)
    log: list[str] = []

    async def writer(n: int) -> None:
        async with lock.on_loop():
            assert isinstance(write_lock(engine), nullcontext)  # held: the write takes no more
            with write_lock(engine), engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            log.append(f"write {n}")

    async def other() -> None:
        for _ in range(6):
            log.append("other")
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(writer(1), writer(2), writer(3), other())

    _run(main)
    writes = [entry for entry in log if entry.startswith("write")]
    assert writes == ["write 1", "write 2", "write 3"]
    assert all("other" in (a, b) for a, b in itertools.pairwise(log)), log
    assert isinstance(write_lock(engine), type(lock))  # the loop let go of it
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 3
    engine.dispose()


def test_a_loop_writer_waits_for_a_threads_turn_off_the_loop(tmp_path):
    """While another thread writes (the dispatcher), loop writers wait in a worker thread and
    in the loop's queue, counted by the gauge; the loop goes on serving meanwhile."""
    engine, lock = _loop_engine(tmp_path)
    ticks = 0
    done: list[int] = []

    async def writer(n: int) -> None:
        async with lock.on_loop():
            done.append(n)

    async def main() -> None:
        nonlocal ticks
        with lock:  # another thread's write, as far as the loop's writers can tell
            writers = [asyncio.ensure_future(writer(n)) for n in (1, 2)]
            for _ in range(50):
                ticks += 1
                await asyncio.sleep(0.005)
            assert done == []
            assert writers_waiting() == 2  # one in a worker thread, one in the loop's queue
        await asyncio.wait_for(asyncio.gather(*writers), 5)

    _run(main)
    assert ticks == 50
    assert done == [1, 2]
    assert writers_waiting() == 0
    engine.dispose()


@pytest.mark.parametrize("when", ["just after the hand-on", "just before the hand-on"])
def test_a_cancelled_loop_writer_passes_its_turn_on(tmp_path, when):
    """Cancelled while queued, or just as the turn came to it: the writers behind still write,
    and the cancelled one ends cancelled (the hand-on may have skipped it already)."""
    engine, lock = _loop_engine(tmp_path)
    done: list[str] = []
    tasks: dict[str, asyncio.Future[None]] = {}

    async def writer(name: str) -> None:
        async with lock.on_loop():
            done.append(name)
        if name != "first":
            return
        if when == "just after the hand-on":  # the turn is handed on, its taker not yet run
            asyncio.get_running_loop().call_soon(tasks["handed"].cancel)
        else:  # the hand-on comes next, and skips the cancelled waiter
            tasks["handed"].cancel()

    async def main() -> None:
        with lock:  # another thread's write: "first" waits in a worker thread, the rest here
            for name in ("first", "queued", "handed"):
                tasks[name] = asyncio.ensure_future(writer(name))
            await asyncio.sleep(0.05)
            tasks["queued"].cancel()
        await asyncio.wait_for(tasks["first"], 5)
        for name in ("queued", "handed"):
            with pytest.raises(asyncio.CancelledError):
                await tasks[name]
        await asyncio.wait_for(writer("after"), 5)  # the turn was not lost with them

    _run(main)
    assert done == ["first", "after"]
    assert writers_waiting() == 0
    engine.dispose()


def test_a_loop_writer_cancelled_while_a_thread_waits_for_it_lets_the_lock_go(tmp_path):
    engine, lock = _loop_engine(tmp_path)

    async def writer() -> None:
        async with lock.on_loop():
            pytest.fail("wrote after it was cancelled")

    async def main() -> None:
        with lock:  # another thread's write: the loop writer waits for it in a worker thread
            task = asyncio.ensure_future(writer())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        deadline = time.monotonic() + 5
        while writers_waiting() and time.monotonic() < deadline:  # till the thread takes it
            await asyncio.sleep(0.01)
        while not (free := lock.try_enter()) and time.monotonic() < deadline:  # and lets go
            await asyncio.sleep(0.01)
        assert free, "the lock the cancelled writer's thread took is kept for good"
        lock.__exit__()

    _run(main)
    assert writers_waiting() == 0
    engine.dispose()


def _where_it_writes(engine) -> str:
    async def main() -> str:
        def write() -> str:
            with write_lock(engine), engine.begin() as connection:
                connection.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
            try:
                asyncio.get_running_loop()
                return "loop"
            except RuntimeError:
                return "thread"

        return await run_write(engine, write)

    return _run(main)


def test_a_write_runs_on_the_loop_only_where_every_writer_takes_turns(tmp_path):
    """A file whose turns file opens, or a database in memory: on the loop. A ``file:`` URI
    (other processes may write it without taking turns), or a file whose turns file cannot
    be opened: in a worker thread, where waiting for SQLite's own lock holds up nothing."""
    cases = {
        "loop": [f"sqlite:///{tmp_path / 'plain.db'}", "sqlite://"],
        "thread": [f"sqlite:///file:{tmp_path / 'uri.db'}?uri=true"],
    }
    (tmp_path / f"closed.db{WRITERS_SUFFIX}").mkdir()  # not a file: cannot be opened
    cases["thread"].append(f"sqlite:///{tmp_path / 'closed.db'}")
    for where, urls in cases.items():
        for url in urls:
            engine = make_engine(url)
            _where_it_writes(engine)  # the first write finds out whether the file opens
            assert _where_it_writes(engine) == where, url
            engine.dispose()


def test_a_migration_takes_the_writers_turn(tmp_path):
    """API processes on the same SQLite file write on their event loops, which must never wait
    for SQLite's own lock: a migration waits for the turn, as every writer does."""
    database = tmp_path / "migrated.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("SELECT 1"))
    other = other_process_turn(database)
    with ThreadPoolExecutor(1) as pool:
        try:
            upgrading = pool.submit(migrate.upgrade, engine)
            time.sleep(0.3)
            assert not upgrading.done(), "migrated during another process's turn"
        finally:
            os.close(other)
        upgrading.result(30)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
