"""``GET /metrics``: this process's counters, and gauges read from the database at scrape.

Counters and histograms live in this process (with several processes, each
exposes its own: scrape them all). Reminder counts, the dispatcher's lag and the
relaxed settings are computed when scraped, with one cheap ``GROUP BY`` on the
reminders' ``(status, due_at)`` index. The workflow knows nothing of this
module: transitions are counted from the commit hook of ``api.logs`` and
refusals where the API maps ``TransitionBlocked`` to a problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from models.db import writers_waiting
from models.reminders import PENDING, Reminder
from models.settings import relaxed_settings, settings
from workflow.errors import TransitionBlocked

disable_created_metrics()  # no ``*_created`` timestamp series next to each counter

REQUESTS = Counter(
    "carepath_requests",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"),
    registry=None,
)
LATENCY = Histogram(
    "carepath_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ("method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)
TRANSITIONS = Counter(
    "carepath_transitions", "Transitions committed, by trigger.", ("trigger",), registry=None
)
REFUSALS = Counter(
    "carepath_transition_refusals",
    "Unmet requirements in refused transitions (409 transition_blocked), by requirement code.",
    ("code",),
    registry=None,
)
PROCESS_METRICS = (REQUESTS, LATENCY, TRANSITIONS, REFUSALS)


_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}
"""The request counter's and histogram's series of each (method, route, status) seen.

``labels()`` takes a lock and builds its key on every call; the series, once
made, are the same objects for the life of the process (nothing here removes
one), so each is looked up once.
"""
MAX_SERIES = 5_000
"""Past this many label sets (routes are templates, so only odd methods get here),
series are looked up each time rather than kept here too."""


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request (``api.logs.RequestLog`` calls this)."""
    key = (method, route, status)
    series = _SERIES.get(key)
    if series is None:
        labels = (method, route, str(status))
        series = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        if len(_SERIES) < MAX_SERIES:
            _SERIES[key] = series
    series[0].inc()
    series[1].observe(seconds)


def count_transition(trigger: str) -> None:
    """Count one committed transition."""
    TRANSITIONS.labels(trigger).inc()


def count_refusal(exc: TransitionBlocked) -> None:
    """Count each unmet requirement of a refused transition."""
    for unmet in exc.unmet:
        REFUSALS.labels(unmet.code).inc()


class DatabaseCollector(Collector):
    """Gauges read at scrape time: reminders, the dispatcher's lag, the writer queue, settings."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.engine = engine
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now
        opened = GaugeMetricFamily(
            "carepath_reminders_open", "Pending reminders, by kind.", labels=["kind"]
        )
        overdue = GaugeMetricFamily(
            "carepath_reminders_overdue", "Pending reminders already due, by kind.", labels=["kind"]
        )
        oldest_due: datetime | None = None
        for kind, count, due, first_due in self._pending(now):
            opened.add_metric([kind], count)
            overdue.add_metric([kind], due)
            if first_due is not None and (oldest_due is None or first_due < oldest_due):
                oldest_due = first_due
        yield opened
        yield overdue
        lag = (
            0.0 if oldest_due is None else max(0.0, (now - _aware(oldest_due, now)).total_seconds())
        )
        yield GaugeMetricFamily(
            "carepath_dispatch_lag_seconds",
            "How long the oldest due, pending reminder has been waiting (0 when none is).",
            value=lag,
        )
        yield GaugeMetricFamily(
            "carepath_sqlite_writers_waiting",
            "Writers of this process queued for the SQLite write lock.",
            value=writers_waiting(),
        )
        relaxed = GaugeMetricFamily(
            "carepath_relaxed_setting",
            "1 for each clinical setting set below its clinical default.",
            labels=["name"],
        )
        for name in relaxed_settings(settings):
            relaxed.add_metric([name], 1)
        yield relaxed

    def _pending(self, now: datetime) -> list[tuple[str, int, int, datetime | None]]:
        is_due = col(Reminder.due_at) <= now
        query = (
            select(
                col(Reminder.kind),
                func.count(),
                func.count().filter(is_due),
                func.min(col(Reminder.due_at)).filter(is_due),
            )
            .where(col(Reminder.status) == PENDING)
            .group_by(col(Reminder.kind))
        )
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def _aware(moment: datetime, like: datetime) -> datetime:
    """SQLite hands back naive UTC timestamps from an aggregate: make them comparable."""
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None else moment


def render(engine: Engine, now: datetime) -> bytes:
    """This process's metrics, and the database's gauges, in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in PROCESS_METRICS:
        registry.register(collector)
    registry.register(DatabaseCollector(engine, now))
    return generate_latest(registry)
