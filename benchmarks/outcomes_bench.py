"""The outcomes cohort report at 10k and 100k cases: seconds, and how it grows.

Each case has two dosing sessions (the first dose spread over two years) and
a PHQ-9, a GAD-7 and an ISI the week before the first dose, then every two
weeks to week 12; one case in ten has nothing after its first dose, and one
measurement in five is missed. Rows go in with SQLAlchemy Core bulk inserts
(``executemany``), after the schema is migrated to head, into a fresh
database per size: SQLite in a temp dir and, with ``--postgres URL``, a
PostgreSQL database it creates and drops.

Timed (best of ``--repeat``, each in its own session): the report at week 4
over every case and over one month of first doses; the per-case CSV rows
(all of them, consumed); the trajectories of PHQ-9 and ISI over weeks 0-12
(what ``/reports/outcomes.svg`` draws); one case's outcomes.

    uv run python benchmarks/outcomes_bench.py
    uv run python benchmarks/outcomes_bench.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from growth_bench import analyze, postgres_database, sqlite_database
from harness import markdown_table, on_sigterm_raise_interrupt, print_machine, temp_dir
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from models.db import session_scope
from models.facts import Assessment, CareSession
from models.tables import Case
from workflow.cohort import Cohort, cohort_report, cohort_rows, trajectories
from workflow.outcomes import load_case_outcomes

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
SPREAD_DAYS = 730
CHUNK = 5_000
"""Cases per batch of inserts."""
BASELINES = {"phq9": (10, 27), "gad7": (6, 21), "isi": (12, 28)}


def case_rows(first_id: int, count: int, rng: random.Random) -> dict[Any, list[dict]]:
    """Rows for cases ``first_id`` .. ``first_id + count - 1``, by table."""
    rows: dict[Any, list[dict]] = {Case: [], CareSession: [], Assessment: []}
    for case_id in range(first_id, first_id + count):
        dose = START + timedelta(days=rng.randrange(SPREAD_DAYS), minutes=rng.randrange(600))
        rows[Case].append(
            {"id": case_id, "patient_ref": f"bench-{case_id}", "patient_state": "CA",
             "state": "monitoring", "phase": "monitoring", "version": 1,
             "medication_list_version": 0, "referrals": [], "created_at": dose,
             "updated_at": dose}
        )  # fmt: skip
        for days in (0, 4):
            at = dose + timedelta(days=days)
            ended = at + timedelta(hours=2, minutes=30)
            rows[CareSession].append(
                {"case_id": case_id, "kind": "dosing", "dosed_at": at, "completed_at": ended,
                 "created_at": ended, "deviations": []}
            )  # fmt: skip
        follow_up = rng.random() > 0.1
        for instrument, (low, high) in BASELINES.items():
            score = rng.randint(low, high)
            for week in range(-1, 13, 2) if follow_up else (-1,):
                if week > 0 and rng.random() < 0.2:
                    continue
                taken = dose + timedelta(days=week * 7 + rng.uniform(-3, 3))
                rows[Assessment].append(
                    {"case_id": case_id, "instrument": instrument, "score": score,
                     "taken_at": taken, "created_at": taken}
                )  # fmt: skip
                score = max(0, score - rng.randint(-1, 4))
    return rows


def seed(engine: Engine, cases: int) -> int:
    """Bulk-insert ``cases`` cases; the number of assessments."""
    rng = random.Random(17)
    assessments = 0
    with engine.begin() as conn:
        for first in range(1, cases + 1, CHUNK):
            rows = case_rows(first, min(CHUNK, cases + 1 - first), rng)
            for model in (Case, CareSession, Assessment):
                conn.execute(insert(model.__table__), rows[model])  # type: ignore[attr-defined]
            assessments += len(rows[Assessment])
    analyze(engine)
    return assessments


def best(engine: Engine, repeat: int, work: Callable[[Any], Any]) -> tuple[float, float, Any]:
    """The fastest of ``repeat`` runs of ``work(session)``: wall and CPU seconds, and its result.

    CPU is this process's own: on SQLite, the engine's work included; on PostgreSQL, only
    the client's share (the server's is in another process).
    """
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        with session_scope(engine) as session:
            wall, cpu = time.perf_counter(), time.process_time()
            result = work(session)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def measure(engine: Engine, cases: int, repeat: int) -> dict[str, Any]:
    began = time.perf_counter()
    assessments = seed(engine, cases)
    figures: dict[str, Any] = {"cases": cases, "assessments": assessments}
    figures["seed_s"] = time.perf_counter() - began
    month = Cohort.of_dates(date(2026, 1, 1), date(2026, 1, 31))
    work = {
        "report_all_s": lambda s: cohort_report(s, Cohort(), 4),
        "report_month_s": lambda s: cohort_report(s, month, 4),
        "csv_s": lambda s: sum(1 for _ in cohort_rows(s, Cohort(), 4)),
        "trajectories_s": lambda s: trajectories(s, Cohort(), range(13), ("phq9", "isi")),
        "one_case_s": lambda s: load_case_outcomes(s, cases // 2, START + timedelta(days=800)),
    }
    for name, job in work.items():
        figures[name], figures[f"{name}_cpu"], result = best(engine, repeat, job)
        if name == "report_all_s":
            figures["report"] = result
        if name == "csv_s" and result != cases:
            raise RuntimeError(f"{result} CSV rows for {cases} cases")
    return figures


def print_results(label: str, results: list[dict[str, Any]]) -> None:
    first = results[0]
    # SQLite runs in this process, so its CPU time is the whole cost, whatever the load.
    by, growth = ("_cpu", "CPU") if label == "SQLite" else ("", "wall")
    names = ("report_all_s", "report_month_s", "csv_s", "trajectories_s", "one_case_s")
    rows = [
        [f"{r['cases']:,}", f"{r['assessments']:,}", f"{r['seed_s']:.0f}"]
        + [f"{r[n]:.2f} / {r[n + '_cpu']:.2f} ({r[n + by] / first[n + by]:.1f}x)" for n in names]
        for r in results
    ]
    headers = ["cases", "assessments", "seed s", "report s", "one month s", "CSV s"]
    print(f"\n## {label}: wall / CPU seconds, best of the runs ({growth} growth)")
    print(markdown_table([*headers, "trajectories s", "one case s"], rows))
    report = results[-1]["report"]
    phq9 = report.phq9
    print(
        f"week 4 at {report.count:,} cases: {report.unmeasured:,} unmeasured; PHQ-9 response "
        f"{phq9.response.numerator:,}/{phq9.response.denominator:,} "
        f"[{phq9.response.ci_low:.3f}, {phq9.response.ci_high:.3f}]"
    )


def run(label: str, make_db: Callable[[str], Any], args: argparse.Namespace) -> None:
    results = []
    for size in args.cases:
        with make_db(f"outcomes-{size}") as engine:
            results.append(measure(engine, size, args.repeat))
            print(f"{label} {size:,}: {results[-1]['seed_s']:.0f} s to seed", flush=True)
    print_results(label, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    on_sigterm_raise_interrupt()
    print_machine()
    if not args.no_sqlite:
        with temp_dir("carepath-outcomes-") as tmp:
            run("SQLite", lambda name: sqlite_database(tmp, name), args)
    if args.postgres:
        run("PostgreSQL", lambda _name: postgres_database(args.postgres), args)


if __name__ == "__main__":
    main()
