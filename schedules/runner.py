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


def dispatch_job(dispatcher: Dispatcher) -> None:
    """One scheduled pass; an error is logged and the next run tries again."""
    try:
        result = dispatcher.run_pass()
    except Exception:
        logger.exception("reminder dispatch pass failed")
        return
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
        args=(dispatcher,),
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
