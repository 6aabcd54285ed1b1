"""The worklist's cost follows the page, not the number of cases.

One page (50) of ``workflow.worklist.worklist`` (what ``GET /api/v1/worklist``
serves, guards and all) over 10k and 100k open cases: the first page, a page
from the middle (by cursor) and a filtered page (``kind=safety_review``).
Every case is open; 1% have an open ``safety_review``, 79% an
``evaluation_overdue`` due between 30 days ago and 30 days ahead, and 20% no
open reminder. Rows are bulk-inserted after the schema is migrated, and the
cases' places on the worklist are filled by the migration's own backfill.
Target: each page at 100k within 2x the same page at 10k.

    uv run python benchmarks/worklist_bench.py
    uv run python benchmarks/worklist_bench.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import time
from pathlib import Path

from growth_bench import (
    NOW,
    _base,
    _case_expr,
    _seconds_before,
    _series,
    analyze,
    plan,
    postgres_database,
    sqlite_database,
)
from harness import markdown_table, on_sigterm_raise_interrupt, print_machine, temp_dir
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import col, select

from models.db import session_scope
from models.reminders import WorkItem
from workflow.definition import OPEN_STATES, STATE_BY_NAME, Actor
from workflow.worklist import cursor_for, worklist

PAGE = 50
CLINICIAN = Actor(id=None, role="clinician", license_states=("CA",))
MIGRATION = Path(__file__).parents[1] / "models/migrations/versions/0007_reminders.py"


def backfill_statements() -> tuple[str, ...]:
    """The worklist backfill of migration 0007_reminders, run again after the bulk load."""
    spec = importlib.util.spec_from_file_location("migration_0007_reminders", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BACKFILL


def seed(engine: Engine, count: int) -> None:
    """``count`` open cases, each with its creation event, and their reminders."""
    dialect = engine.dialect.name
    params = {"count": count, "base": _base(dialect, NOW)}
    stamp = _seconds_before(dialect, "base", "n")
    state = _case_expr(OPEN_STATES, "n")
    phase = _case_expr(tuple(STATE_BY_NAME[s].phase for s in OPEN_STATES), "n")
    json = "CAST('{}' AS json)" if dialect == "postgresql" else "'{}'"
    referrals = "CAST('[]' AS json)" if dialect == "postgresql" else "'[]'"
    month = 30 * 24 * 3600
    due = _seconds_before(dialect, "base", f"((n * 7919) % {2 * month}) - {month}")
    reminder = (
        "INSERT INTO reminders (case_id, kind, due_at, recipient_role, status, attempts, "
        "deliveries, created_at, updated_at) SELECT 1 + n, {kind}, {due}, 'clinician', "
        "'pending', 0, 0, {stamp}, {stamp} FROM {series} WHERE {where}"
    )
    statements = [
        f"""INSERT INTO cases (patient_ref, patient_state, state, phase, version,
                medication_list_version, referrals, created_at, updated_at)
            SELECT 'bench-' || n, 'CA', {state}, {phase}, 1, 0, {referrals}, {stamp}, {stamp}
            FROM {_series(dialect, "count")}""",
        # The worklist never reads the audit chain: each event gets a placeholder hash.
        f"""INSERT INTO audit_events (case_id, at, actor_id, actor_role, kind, trigger,
                from_state, to_state, data, hash)
            SELECT 1 + n, {stamp}, NULL, 'coordinator', 'transition', 'create', NULL,
                'evaluation', {json}, '{"0" * 64}'
            FROM {_series(dialect, "count")}""",
        reminder.format(
            kind="'safety_review'",
            due=stamp,
            stamp=stamp,
            series=_series(dialect, "count"),
            where="n % 100 = 0",
        ),
        reminder.format(
            kind="'evaluation_overdue'",
            due=due,
            stamp=stamp,
            series=_series(dialect, "count"),
            where="n % 100 != 0 AND n % 5 != 1",
        ),
        *backfill_statements(),
    ]
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql), params)


def deep_cursor(engine: Engine) -> str:
    """The cursor of the item halfway down the worklist (found once, not timed)."""
    with session_scope(engine) as session:
        total = session.exec(select(WorkItem).where(col(WorkItem.rank).is_not(None))).all()
        ordered = sorted(total, key=lambda i: (i.rank, i.sort_at, i.case_id))
        return cursor_for(ordered[len(ordered) // 2])


def time_page(engine: Engine, **filters) -> float:
    """Seconds for one page, in its own session."""
    with session_scope(engine) as session:
        began = time.perf_counter()
        items, _ = worklist(session, actor=CLINICIAN, now=NOW, limit=PAGE, **filters)
        seconds = time.perf_counter() - began
    if len(items) != PAGE:
        raise RuntimeError(f"a page had {len(items)} items")
    return seconds


def page_plan(engine: Engine) -> str:
    """The database's plan for the page query."""
    query = (
        select(WorkItem)
        .where(col(WorkItem.rank).is_not(None))
        .order_by(col(WorkItem.rank), col(WorkItem.sort_at), col(WorkItem.case_id))
        .limit(PAGE + 1)
    )
    return plan(engine, query)


PAGES = ("first_ms", "deep_ms", "kind_ms")


def run_database(label: str, make_db, args: argparse.Namespace) -> None:
    """Load every size, then time their pages in turns, so that the machine's other load
    falls on every size alike; the median of ``repeat`` turns after a warm-up."""
    print(f"\n## {label}")
    with contextlib.ExitStack() as stack:
        engines = {}
        for size in args.cases:
            engine = stack.enter_context(make_db(f"worklist-{size}"))
            began = time.perf_counter()
            seed(engine, size)
            analyze(engine)
            print(
                f"{size:,} cases loaded in {time.perf_counter() - began:.1f} s; "
                f"plan: {page_plan(engine)}",
                flush=True,
            )
            engines[size] = (engine, {"after": deep_cursor(engine)})
        times: dict[int, dict[str, list[float]]] = {s: {p: [] for p in PAGES} for s in engines}
        for turn in range(args.repeat + 1):
            for size, (engine, deep) in engines.items():
                for name, filters in zip(PAGES, ({}, deep, {"kind": "safety_review"}), strict=True):
                    seconds = time_page(engine, **filters)
                    if turn:  # the first turn warms the caches
                        times[size][name].append(seconds * 1000)
    medians = {s: {p: statistics.median(v) for p, v in t.items()} for s, t in times.items()}
    first = medians[args.cases[0]]
    rows = [
        [f"{size:,}", *(f"{m[p]:.1f}" for p in PAGES), f"{max(m[p] / first[p] for p in PAGES):.2f}"]
        for size, m in medians.items()
    ]
    print(f"\none page ({PAGE}) of the worklist, median of {args.repeat} interleaved turns:")
    headers = ["open cases", "first page ms", "page at 50% ms", "kind=safety_review ms", "worst x"]
    print(markdown_table(headers, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=20, help="timed turns per size")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    on_sigterm_raise_interrupt()
    print_machine()
    if not args.no_sqlite:
        with temp_dir("carepath-worklist-") as tmp:
            run_database("SQLite (WAL)", lambda name: sqlite_database(tmp, name), args)
    if args.postgres:
        host = make_url(args.postgres).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            parser.error("use a local PostgreSQL server")
        run_database("PostgreSQL", lambda _name: postgres_database(args.postgres), args)


if __name__ == "__main__":
    main()
