"""Growth with size: the cost should follow the work, not the size of the table.

1. One reminder dispatcher pass (``schedules.dispatcher.Dispatcher.run_pass``)
   over 10k, 100k and 1M reminder rows of which 1k are due. The other rows are
   what a live table holds: 95% sent or cancelled (due in the past) and 5%
   pending in the future. Target: the 1M pass within 2x the 10k pass.
2. One page (50) of ``workflow.cases.list_cases(phase=...)`` with 1k and 100k
   cases, first page and a page deep in the table. Target: within 2x across
   sizes.

Rows are bulk-inserted with one ``INSERT ... SELECT`` from a recursive CTE
(``generate_series`` on PostgreSQL), after the schema is migrated to head.
Runs on SQLite (a temp file) and, with ``--postgres URL``, on PostgreSQL too,
in a database it creates and drops.

    uv run python benchmarks/growth_bench.py
    uv run python benchmarks/growth_bench.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from harness import markdown_table, on_sigterm_raise_interrupt, print_machine, sqlite_url, temp_dir
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import col, select

from models.db import make_engine, session_scope
from models.migrate import upgrade
from models.reminders import Reminder
from models.tables import Case
from schedules.dispatcher import Dispatcher, due_clause
from schedules.notifiers import Delivery
from schedules.policies import KINDS
from workflow.cases import list_cases
from workflow.definition import STATES

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
DUE = 1000
CASES_FOR_REMINDERS = 10_000
FUTURE_PENDING_SHARE = 0.05
PAGE = 50
OTHER_KINDS = tuple(kind for kind in KINDS if kind != "hold_review")
STATE_NAMES = tuple(s.name for s in STATES)
PHASE_OF = {s.name: s.phase for s in STATES}


class Counter:
    """A notifier that only counts: the pass's cost is the dispatcher's own."""

    def __init__(self) -> None:
        self.delivered = 0

    def notify(self, delivery: Delivery) -> None:
        self.delivered += 1


# -- bulk rows ------------------------------------------------------------------


def _series(dialect: str, count_param: str) -> str:
    """A FROM clause yielding ``n`` = 0 .. count-1."""
    if dialect == "postgresql":
        return f"generate_series(0, :{count_param} - 1) AS seq(n)"
    return (
        f"(WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq "
        f"WHERE n + 1 < :{count_param}) SELECT n FROM seq) AS seq"
    )


def _seconds_before(dialect: str, base: str, seconds: str) -> str:
    """A timestamp ``seconds`` before the ``base`` parameter, stored as carepath stores it."""
    if dialect == "postgresql":
        return f"(CAST(:{base} AS timestamptz) - make_interval(secs => {seconds}))"
    # SQLAlchemy keeps SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text, naive UTC.
    shift = f"printf('%+d seconds', -({seconds}))"
    return f"strftime('%Y-%m-%d %H:%M:%S.000000', :{base}, {shift})"


def _base(dialect: str, moment: datetime) -> str:
    if dialect == "postgresql":
        return moment.isoformat()
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")


def _case_expr(values: tuple[str, ...], index: str) -> str:
    arms = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"CASE ({index}) % {len(values)} {arms} END"


def insert_cases(engine: Engine, count: int) -> None:
    """``count`` cases, their states cycling through every state (ids 1..count)."""
    dialect = engine.dialect.name
    state = _case_expr(STATE_NAMES, "n")
    phase = _case_expr(tuple(PHASE_OF[s] for s in STATE_NAMES), "n")
    stamp = _seconds_before(dialect, "base", "n")
    referrals = "CAST('[]' AS json)" if dialect == "postgresql" else "'[]'"
    sql = f"""
        INSERT INTO cases (patient_ref, patient_state, state, phase, version,
                           medication_list_version, referrals, created_at, updated_at)
        SELECT 'bench-' || n, 'CA', {state}, {phase}, 1, 0, {referrals}, {stamp}, {stamp}
        FROM {_series(dialect, "count")}
    """
    with engine.begin() as conn:
        conn.execute(text(sql), {"count": count, "base": _base(dialect, NOW)})


def insert_reminders(engine: Engine, total: int) -> None:
    """``total`` reminders: 1k due, 5% pending later, the rest sent or cancelled earlier."""
    dialect = engine.dialect.name
    future = int(total * FUTURE_PENDING_SHARE)
    past = total - DUE - future
    cases = CASES_FOR_REMINDERS
    params = {"base": _base(dialect, NOW), "cases": cases}
    columns = "case_id, kind, due_at, recipient_role, status, attempts, created_at, updated_at"
    year = 365 * 24 * 3600
    batches = [
        # Due now: one hold_review on each of cases 1..1000, due over the last day.
        (DUE, "1 + n", "'hold_review'", _seconds_before(dialect, "base", "60 + n * 60"), "pending"),
        # Pending later: one per (case, kind), due within the next weeks.
        (
            future,
            "1 + (n % :cases)",
            _case_expr(OTHER_KINDS, "n / :cases"),
            _seconds_before(dialect, "base", "-3600 - n"),
            "pending",
        ),
        # History: delivered or cancelled, due over the last two years.
        (
            past,
            "1 + (n % :cases)",
            _case_expr(KINDS, "n"),
            _seconds_before(dialect, "base", f"3600 + (n * 7) % {2 * year}"),
            "CASE WHEN n % 5 = 0 THEN 'cancelled' ELSE 'sent' END",
        ),
    ]
    with engine.begin() as conn:
        for count, case_id, kind, due_at, status in batches:
            if count <= 0:
                continue
            status_sql = f"'{status}'" if status == "pending" else status
            sql = f"""
                INSERT INTO reminders ({columns})
                SELECT {case_id}, {kind}, {due_at}, 'clinician', {status_sql}, 0,
                       {_seconds_before(dialect, "base", "0")},
                       {_seconds_before(dialect, "base", "0")}
                FROM {_series(dialect, "count")}
            """
            conn.execute(text(sql), {**params, "count": count})


# -- databases ------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_database(tmp: Path, name: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url(tmp / f"{name}.db"))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[Engine]:
    """A database of our own on the server, dropped on the way out."""
    name = f"carepath_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def analyze(engine: Engine) -> None:
    """PostgreSQL's autovacuum analyzes a table after a bulk load; do it now instead of waiting."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def due_plan(engine: Engine) -> str:
    """The database's plan for the dispatcher's due query."""
    query = (
        select(col(Reminder.id))
        .where(*due_clause(NOW))
        .order_by(col(Reminder.due_at), col(Reminder.id))
        .limit(100)
    )
    return plan(engine, query)


def page_plan(engine: Engine, after_id: int | None) -> str:
    """The database's plan for a page of cases in one phase (as ``list_cases`` builds it)."""
    query = select(Case).where(Case.phase == "monitoring").order_by(col(Case.id)).limit(PAGE + 1)
    if after_id is not None:
        query = query.where(col(Case.id) > after_id)
    return plan(engine, query)


def plan(engine: Engine, query) -> str:
    """EXPLAIN (QUERY PLAN) of ``query``, on one line."""
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    explain = "EXPLAIN" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    with engine.connect() as conn:
        rows = conn.execute(text(f"{explain} {compiled}")).all()
    return "; ".join(" ".join(str(row[-1]).split()) for row in rows)


# -- the measurements -------------------------------------------------------------


def dispatcher_pass(make_db, size: int) -> dict:
    """Time one pass over ``size`` reminder rows of which 1k are due."""
    with make_db(f"reminders-{size}") as engine:
        began = time.perf_counter()
        insert_cases(engine, CASES_FOR_REMINDERS)
        insert_reminders(engine, size)
        analyze(engine)
        loaded = time.perf_counter() - began
        plan = due_plan(engine)
        counter = Counter()
        dispatcher = Dispatcher(engine, notifiers=[counter], clock=lambda: NOW)
        began = time.perf_counter()
        result = dispatcher.run_pass()
        seconds = time.perf_counter() - began
        if counter.delivered != DUE or result.sent != DUE:
            raise RuntimeError(f"expected {DUE} sent, got {result} / {counter.delivered}")
        return {"rows": size, "load_s": loaded, "pass_s": seconds, "plan": plan}


def time_page(engine: Engine, phase: str, after_id: int | None, repeat: int) -> float:
    """Median seconds for one page of ``list_cases``, each in its own session (after a warm-up)."""
    times = []
    for _ in range(repeat + 1):
        with session_scope(engine) as session:
            began = time.perf_counter()
            rows, _ = list_cases(session, phase=phase, limit=PAGE, after_id=after_id)
            times.append(time.perf_counter() - began)
        if len(rows) != PAGE:
            raise RuntimeError(f"a page of {phase} had {len(rows)} rows")
    return statistics.median(times[1:])


def case_pages(make_db, size: int, repeat: int) -> dict:
    """One page of cases in one phase: the first page, and one from the middle of the table."""
    with make_db(f"cases-{size}") as engine:
        insert_cases(engine, size)
        analyze(engine)
        deep = size // 2
        figures = {
            "cases": size,
            "first_ms": time_page(engine, "monitoring", None, repeat) * 1000,
            "deep_ms": time_page(engine, "monitoring", deep, repeat) * 1000,
        }
        print(f"cases {size:,}: page plan: {page_plan(engine, deep)}", flush=True)
        return figures


def run_database(label: str, make_db, args: argparse.Namespace) -> None:
    print(f"\n## {label}")
    passes = []
    for size in args.reminders:
        figures = dispatcher_pass(make_db, size)
        passes.append(figures)
        print(
            f"reminders {size:,}: loaded in {figures['load_s']:.1f} s, "
            f"pass {figures['pass_s']:.2f} s; plan: {figures['plan']}",
            flush=True,
        )
    if passes:
        print_passes(passes)
    pages = [case_pages(make_db, size, args.repeat) for size in args.cases]
    if pages:
        print_pages(pages, args.repeat)


def print_passes(passes: list[dict]) -> None:
    first = passes[0]["pass_s"]
    rows = [
        [f"{p['rows']:,}", f"{DUE:,}", f"{p['pass_s']:.2f}", f"{p['pass_s'] / first:.2f}"]
        for p in passes
    ]
    print(markdown_table(["reminder rows", "due", "pass s", "x smallest"], rows))


def print_pages(pages: list[dict], repeat: int) -> None:
    first_page = pages[0]["first_ms"]
    rows = [
        [
            f"{p['cases']:,}",
            f"{p['first_ms']:.2f}",
            f"{p['deep_ms']:.2f}",
            f"{max(p['first_ms'], p['deep_ms']) / first_page:.2f}",
        ]
        for p in pages
    ]
    print(f"\none page ({PAGE}) of list_cases(phase='monitoring'), median of {repeat}:")
    print(markdown_table(["cases", "first page ms", "page after 50% ms", "x smallest"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--cases", type=int, nargs="*", default=[1_000, 100_000])
    parser.add_argument("--repeat", type=int, default=50, help="page timings per size")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    on_sigterm_raise_interrupt()
    print_machine()
    if not args.no_sqlite:
        with temp_dir("carepath-growth-") as tmp:
            run_database("SQLite (WAL)", lambda name: sqlite_database(tmp, name), args)
    if args.postgres:
        host = make_url(args.postgres).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("use a local PostgreSQL server")
        run_database("PostgreSQL", lambda _name: postgres_database(args.postgres), args)


if __name__ == "__main__":
    main()
