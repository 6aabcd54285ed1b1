"""The database engine and sessions."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
    suppress,
)
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine

from models import facts, idempotency, reminders, tables  # noqa: F401  (registers every table)
from models.settings import settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 40
"""Connections a SQLite file engine keeps open once made: as many as run at once at peak
(anyio's thread pool runs 40 workers), since a new one costs 0.25 ms of CPU in PRAGMAs."""
READ_ONLY = "carepath_read_only"
"""Execution option of a connection that only reads (see ``read_only``)."""


class DatabaseUnusable(RuntimeError):
    """The configured database cannot be reached or written; ``str()`` is one line."""


def normalise_url(url: str) -> str:
    """``url`` with PostgreSQL on psycopg 3 and a SQLite file as an absolute path.

    ``postgres://`` (Heroku's and libpq's short form) is PostgreSQL. A relative
    SQLite path is resolved once, here, so that a command run from another
    directory uses (and names) the same file.
    """
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    if scheme.startswith("sqlite") and rest.startswith("/") and rest != "/:memory:":
        path, query = rest[1:], ""
        if "?" in path:
            path, query = path.split("?", 1)
            query = "?" + query
        if path and path != ":memory:" and not path.startswith("file:"):
            return f"{scheme}:///{Path(path).expanduser().resolve()}{query}"
    return url


def describe_url(url: str) -> str:
    """``url`` as it is safe to print: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """An engine for ``url`` (default: ``CAREPATH_DATABASE_URL``), tuned for its database."""
    url = normalise_url(url or settings.database_url)
    # An error's message and traceback never carry the statement's values.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _create_private(url: str) -> None:
    """Create the SQLite file readable and writable by its owner only, if it does not exist.

    SQLite gives the -wal and -shm files the database file's permissions.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError:
        return  # a directory that does not exist: SQLite's own error names it on connect


def _sqlite_engine(url: str, **kwargs) -> Engine:
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    if _is_file_database(url):
        # Never make a caller wait for a connection (no overflow limit): the
        # event loop reads SQLite itself (the token lookup, /health, closing a
        # GET's session), and a loop waiting for a connection that only it can
        # give back would stall every request until the pool's timeout.
        # Concurrency is bounded by the thread pool, not here.
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        kwargs.setdefault("max_overflow", -1)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "do_connect")
    def _before_connect(dialect, conn_rec, cargs, cparams) -> None:
        # The first connection creates the file: make it private before SQLite does.
        _create_private(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if ":memory:" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit the client was told about survives power loss, not just a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # WAL: a reader works on a snapshot; it never waits for the writer
            # and never holds it up.
            _begin(connection, "BEGIN")
            return
        # A deferred transaction that reads, then writes after another writer
        # committed, fails at once with SQLITE_BUSY_SNAPSHOT and never waits.
        # Taking the write lock up front makes writers queue on the busy timeout.
        _begin(connection, "BEGIN IMMEDIATE")

    return engine


def _begin(connection: Connection, statement: str) -> None:
    """``statement`` on the driver's connection: every request's transaction begins here, and
    SQLAlchemy's statement path (its events, its result) costs more than the BEGIN itself.
    An error is SQLAlchemy's, as from any other statement (``database is locked`` is a 503)."""
    try:
        connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc


def _is_file_database(url: str) -> bool:
    """Whether SQLAlchemy pools this SQLite URL's connections in a queue (a file, not memory)."""
    database = make_url(url).database
    return bool(database) and database != ":memory:" and "mode=memory" not in url


def read_only(engine: Engine) -> Engine:
    """``engine`` for transactions that only read: on SQLite they take no lock at all."""
    return engine.execution_options(**{READ_ONLY: True})


class WriterLock:
    """A lock that counts the threads waiting for it (the SQLite writer queue's depth).

    A thread takes it as a context manager; an event loop with ``on_loop``.
    ``alone``: no other process can write the database (it is in memory).
    """

    def __init__(self, turn: _FileTurn | None = None, *, alone: bool = False) -> None:
        self._lock = threading.Lock()
        self.waiting = 0
        self.turn = turn
        self.alone = alone

    @property
    def fits_the_loop(self) -> bool:
        """Whether every writer of the database takes turns here: then a write holding the
        lock never waits on SQLite's own (up to its busy timeout), and may run on the event
        loop. Not so for a ``file:`` URI, or when the turns file cannot be opened."""
        return self.turn.usable if self.turn is not None else self.alone

    def __enter__(self) -> None:
        self.waiting += 1  # under the GIL; a gauge may be off by one for an instant
        try:
            self._lock.acquire()
            try:
                if self.turn is not None:  # and the process's turn among processes
                    self.turn.acquire()
            except BaseException:
                self._lock.release()
                raise
        finally:
            self.waiting -= 1

    def __exit__(self, *_exc: object) -> None:
        try:
            if self.turn is not None:
                self.turn.release()
        finally:
            self._lock.release()

    def try_enter(self) -> bool:
        """Take the lock and the process's turn if both are free now; never wait."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self.turn is None or self.turn.try_acquire():
                return True
        except BaseException:
            self._lock.release()
            raise
        self._lock.release()
        return False

    @asynccontextmanager
    async def on_loop(self) -> AsyncIterator[None]:
        """Hold the lock on the running event loop, for a write that runs there whole.

        A write in a worker thread shares the interpreter with the event loop,
        and holds SQLite's lock for as long as the two together take. On the
        loop, the loop does nothing else while the write runs (worker threads
        still do: reads, the pages, the dispatcher), and a whole course of care
        runs faster (``benchmarks/README.md``). The write must run start to end
        without yielding to the loop: ``write_lock`` inside it takes nothing
        more (``holding``).

        The loop's writers take turns in ``_LoopWriters``. When another thread
        (the reminder dispatcher, a page's form) or another process has the
        lock, the writer waits for it in a worker thread, never on the loop.
        Only for a lock that ``fits_the_loop`` (``run_write``).
        """
        async with _loop_writers().turn():
            if not self.try_enter():
                taken = asyncio.get_running_loop().run_in_executor(None, self.__enter__)
                try:
                    await asyncio.shield(taken)
                except asyncio.CancelledError:
                    taken.add_done_callback(self._let_go_if_taken)  # the thread still takes it
                    raise
            try:
                with holding(self):
                    yield
            finally:
                self.__exit__()

    def _let_go_if_taken(self, taken: asyncio.Future[None]) -> None:
        if not taken.cancelled() and taken.exception() is None:
            self.__exit__()


class _FileTurn:
    """The processes writing one SQLite file take turns on an ``flock`` of a file beside it.

    Between processes SQLite's own lock is all there is, and a process that
    finds it taken polls, as ``write_lock`` says: two ``carepath serve`` on one
    file took a whole course of care to a p99 of 865 ms that way
    (``benchmarks/README.md``). The kernel wakes a process waiting on ``flock``
    as soon as the holder lets go. The wait stays bounded, as SQLite's is: after
    the busy timeout it is SQLite's "database is locked" (a 503).

    Only the thread holding its process's turn (``WriterLock``) waits here, and
    Python cannot give up a blocking ``flock``: a daemon thread makes the
    blocking call on a duplicate of the file descriptor, while the writer waits
    for it with a timeout. A writer that gives up closes its descriptor; the
    duplicate is closed as soon as that ``flock`` returns, which lets go of the
    lock again.

    The lock helps SQLite's, never replaces it: a process that does not take
    it (a migration) still waits on SQLite's own lock, and so does every writer
    when the file cannot be opened (it is made with the database's permissions,
    as SQLite makes its ``-wal``, and one made by another user may be closed to
    this one): a warning says so, once.
    """

    def __init__(self, database: str, timeout: float) -> None:
        self.database, self.path = database, database + WRITERS_SUFFIX
        self.timeout = timeout
        self.usable = True
        self._held = -1
        self._waits: queue.SimpleQueue[tuple[int, _Wait]] = queue.SimpleQueue()
        self._waiter: threading.Thread | None = None

    def acquire(self) -> None:
        self._take(wait=True)

    def try_acquire(self) -> bool:
        """``acquire`` if no other process has the turn now; False, holding nothing, if one has."""
        return self._take(wait=False)

    def _take(self, *, wait: bool) -> bool:
        fd = self._open_or_give_up()
        if fd is None:
            return True
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    os.close(fd)
                    return False
                self._wait(fd)
        except BaseException:
            os.close(fd)
            raise
        self._held = fd
        return True

    def _open_or_give_up(self) -> int | None:
        """A new descriptor of the turns file; None, from now on, if it cannot be opened."""
        if not self.usable:
            return None
        try:
            return self._open()
        except OSError as exc:
            self.usable = False
            name = Path(self.path).name
            logger.warning("writers wait on SQLite's own lock: cannot open %s (%s)", name, exc)
            return None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            exists = os.path.exists(self.database)
            mode = os.stat(self.database).st_mode & 0o666 if exists else 0o600
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)

    def release(self) -> None:
        fd, self._held = self._held, -1
        if fd >= 0:
            os.close(fd)  # the lock goes with the file's last descriptor

    def _wait(self, fd: int) -> None:
        if self._waiter is None or not self._waiter.is_alive():
            self._waiter = threading.Thread(
                target=self._wait_in_turn, name="carepath-writer-turn", daemon=True
            )
            self._waiter.start()
        wait = _Wait()
        self._waits.put((os.dup(fd), wait))
        if not wait.done.wait(self.timeout):
            raise OperationalError(
                "(waiting for the writers' turn)", None, sqlite3.OperationalError(LOCKED)
            )
        if wait.error is not None:
            raise wait.error

    def _wait_in_turn(self) -> None:
        while True:
            fd, wait = self._waits.get()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                wait.error = exc
            finally:
                os.close(fd)
                wait.done.set()


class _LoopWriters:
    """An event loop's SQLite writers, one at a time and one a loop iteration, first come first.

    A write on the loop runs start to end without yielding, so two never
    overlap. Without a queue, every writer whose turn came in one iteration
    would run in it, back to back, and a ``GET /health`` behind sixty of them
    would wait for all sixty (a p99 of 132 ms). Here a writer that is done
    hands the turn on at the next iteration: between two writes the loop
    serves whatever else is ready. A writer waiting in a worker thread for
    another thread's or process's turn keeps this one meanwhile, so the rest
    wait here, not each in a thread of its own.
    """

    def __init__(self) -> None:
        self._busy = False
        self.waiting: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._busy or self.waiting:
            waiter = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._hand_on()  # the turn came with the cancellation: pass it on
                else:
                    with suppress(ValueError):  # unless a hand-on has skipped it already
                        self.waiting.remove(waiter)
                raise
        self._busy = True
        try:
            yield
        finally:
            asyncio.get_running_loop().call_soon(self._hand_on)

    def _hand_on(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the turn is the waiter's: still busy
                return
        self._busy = False


_LOOP_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWriters] = (
    weakref.WeakKeyDictionary()
)


_LOOP_WRITERS_ADDED = threading.Lock()
"""Held to add a loop to ``_LOOP_WRITERS``, and to read it from another thread (the gauge)."""


def _loop_writers() -> _LoopWriters:
    loop = asyncio.get_running_loop()
    writers = _LOOP_WRITERS.get(loop)
    if writers is None:
        with _LOOP_WRITERS_ADDED:
            writers = _LOOP_WRITERS[loop] = _LoopWriters()
    return writers


@dataclass
class _Wait:
    done: threading.Event = field(default_factory=threading.Event)
    error: OSError | None = None


LOCKED = "database is locked"
"""SQLite's message when its lock stays taken past the busy timeout; ours too."""

_WRITE_LOCKS: dict[str, WriterLock] = {}
"""One lock per SQLite database file in this process, whichever engine writes to it."""


def writers_waiting() -> int:
    """How many of this process's writers wait on ``write_lock`` right now: for their turn in
    the process (on its event loop too), or (one at a time) for the process's turn among
    processes."""
    in_threads = sum(lock.waiting for lock in list(_WRITE_LOCKS.values()))
    with _LOOP_WRITERS_ADDED:
        loops = list(_LOOP_WRITERS.values())
    return in_threads + sum(len(w.waiting) for w in loops)


WRITERS_SUFFIX = "-writers"
"""The file beside a SQLite database whose ``flock`` its writing processes take turns on."""


_HOLDING: ContextVar[WriterLock | None] = ContextVar("carepath_holding_write_lock", default=None)
"""The write lock the current context holds already (``holding``)."""


def sqlite_writer_lock(bind: Engine | Connection) -> WriterLock | None:
    """The lock this process's writers to ``bind``'s SQLite database take turns on; None for
    other databases, which lock rows, not the database."""
    engine = bind.engine
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ":memory:"
    lock = _WRITE_LOCKS.get(database)
    if lock is None:
        plain_file = _is_file_database(str(engine.url)) and not database.startswith("file:")
        turn = _FileTurn(database, SQLITE_BUSY_TIMEOUT_MS / 1000) if plain_file else None
        alone = not _is_file_database(str(engine.url))
        lock = _WRITE_LOCKS.setdefault(database, WriterLock(turn, alone=alone))
    return lock


@contextmanager
def holding(lock: WriterLock) -> Iterator[None]:
    """Mark ``lock``, taken, as the current context's: ``write_lock`` inside takes nothing more.

    For a caller that takes the turn its own way (``WriterLock.try_enter``, or
    waiting for it in a thread) and then runs a write that takes ``write_lock``.
    """
    token = _HOLDING.set(lock)
    try:
        yield
    finally:
        _HOLDING.reset(token)


def write_lock(bind: Engine | Connection) -> AbstractContextManager[object]:
    """Hold around a whole write transaction: writers take turns, in the process and across.

    SQLite lets one writer in at a time, and the others poll for the lock
    (sleeping 1 ms, then longer, up to 100 ms): under load the lock sits idle
    between polls, and whoever polls at the right moment wins, so some
    requests wait for seconds. Waiting on a lock in the process instead hands
    over at once; so does waiting on ``_FileTurn`` between processes. Other
    databases lock rows, not the database: no lock here. Nor in a context that
    holds the lock already (``holding``).
    """
    lock = sqlite_writer_lock(bind)
    if lock is None or _HOLDING.get() is lock:
        return nullcontext()
    return lock


async def run_write(bind: Engine, write: Callable[[], T]) -> T:
    """``write()``, whole write transactions, from the event loop: on SQLite on the loop itself,
    in its turn (``WriterLock.on_loop``); elsewhere in a worker thread, since a write there
    makes round trips to the server, which must not hold up the loop. So too on SQLite when
    some writer may not take the turn (``WriterLock.fits_the_loop``): waiting for SQLite's
    own lock must not hold up the loop either."""
    lock = sqlite_writer_lock(bind)
    if lock is None or not lock.fits_the_loop:
        return await anyio.to_thread.run_sync(write)
    async with lock.on_loop():
        return write()


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process's engine, made once from the settings."""
    return make_engine()


def check_database(engine: Engine, *, must_exist: bool = False) -> None:
    """Fail with ``DatabaseUnusable`` unless the database answers (and SQLite can be written).

    ``must_exist``: a SQLite file that is not there is an error, not a new empty database.
    """
    name = engine.url.database or ""
    if engine.dialect.name == "sqlite" and name and name != ":memory:":
        _check_sqlite_path(Path(name), must_exist)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = describe_url(engine.url.render_as_string(hide_password=False))
        raise DatabaseUnusable(f"cannot reach {where}: {reason}") from None


def _check_sqlite_path(path: Path, must_exist: bool) -> None:
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise DatabaseUnusable(f"{path} is not readable and writable by this user")
        return
    if must_exist:
        raise DatabaseUnusable(f"{path} does not exist (`carepath db upgrade` creates it)")
    if not path.parent.is_dir():
        raise DatabaseUnusable(f"{path.parent} is not a directory")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise DatabaseUnusable(f"cannot create {path}: its directory is not writable")


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet (tests and the embedded default)."""
    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session, session.begin():
        yield session
