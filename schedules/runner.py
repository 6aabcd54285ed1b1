"""APScheduler as the clock that runs the dispatcher; the reminder rows are the truth.

One interval job, kept in memory: it runs at once on start, then every
``CAREPATH_DISPATCH_SECONDS``. ``coalesce`` and ``max_instances=1`` make runs
missed during a pause collapse into one, never overlap; ``misfire_grace_time=None``
means a late run is never skipped.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from models.db import get_engine
from models.settings import Settings, settings
from schedules.dispatcher import Dispatcher

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

JOB_ID = "carepath.dispatch_reminders"


MAX_BACKOFF_SECONDS = 300.0


class Backoff:
    """After a failing pass, skip passes for twice as long each time (up to 5 minutes)."""

    def __init__(self, interval: float, clock=time.monotonic) -> None:
        self.interval, self.clock = interval, clock
        self.failures, self.resume_at = 0, 0.0

    def ready(self) -> bool:
        return self.clock() >= self.resume_at

    def failed(self) -> float:
        self.failures += 1
        wait = min(
            self.interval * 2 ** (self.failures - 1), max(MAX_BACKOFF_SECONDS, self.interval)
        )
        self.resume_at = self.clock() + wait
        return wait

    def succeeded(self) -> None:
        if self.failures:
            logger.info("reminder dispatch pass succeeded again after %s failures", self.failures)
        self.failures, self.resume_at = 0, 0.0


def _one_line(exc: Exception) -> str:
    """The error's type and the first line of its cause: no SQL, no parameters."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"{type(cause).__name__}: {first}"


def dispatch_job(dispatcher: Dispatcher, backoff: Backoff | None = None) -> None:
    """One scheduled pass; a failing one logs one line, and the next passes back off."""
    if backoff is not None and not backoff.ready():
        return
    try:
        result = dispatcher.run_pass()
    except Exception as exc:
        wait = backoff.failed() if backoff is not None else 0.0
        logger.warning(
            "reminder dispatch pass failed, next try in %.0fs: %s",
            wait,
            _one_line(exc),
            extra={"failures": backoff.failures if backoff else 1, "retry_in_seconds": wait},
        )
        return
    if backoff is not None:
        backoff.succeeded()
    if result.sent or result.retried or result.failed or result.errors:
        logger.info("reminder dispatch pass: %s", result)


def start_scheduler(
    engine: Engine | None = None,
    *,
    dispatcher: Dispatcher | None = None,
    rules: Settings = settings,
) -> BackgroundScheduler:
    """Start the reminder scheduler in this process; the caller calls ``.shutdown()``."""
    dispatcher = dispatcher or Dispatcher(engine or get_engine(), rules=rules)
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        dispatch_job,
        trigger="interval",
        args=(dispatcher, Backoff(rules.dispatch_seconds)),
        seconds=rules.dispatch_seconds,
        id=JOB_ID,
        name="deliver due reminders",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_listener(lambda _event: dispatcher.close(), EVENT_SCHEDULER_SHUTDOWN)
    scheduler.start()
    logger.info("reminder scheduler started: a pass every %ss", rules.dispatch_seconds)
    return scheduler


def run_scheduler(
    engine: Engine | None = None,
    *,
    dispatcher: Dispatcher | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the reminder scheduler until SIGTERM or SIGINT (or ``stop``), then stop cleanly."""
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    scheduler = start_scheduler(engine, dispatcher=dispatcher)
    try:
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(1.0):
            pass
    finally:
        logger.info("reminder scheduler stopping: waiting for the running pass")
        scheduler.shutdown(wait=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        logger.info("reminder scheduler stopped")
