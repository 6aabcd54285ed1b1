"""Throughput against the limit of our own stack: carepath and a bare baseline, in one run.

Starts the real server (``carepath serve --no-scheduler``: uvicorn, one worker,
SQLite in WAL mode) and the baseline app (``baseline_app.py``: FastAPI +
SQLModel reading one row by id, bumping a version column, committing), side
by side, on their own SQLite files in a temp dir. Then drives each endpoint in
turn with the same load generator (``load.py``: 16 keep-alive connections, a
warm-up, then ``--seconds`` of measurement) and prints requests/s, p50, p99
and the ratio to the baseline, plus the server's peak RSS. It also prints the
server's CPU time per request: on a shared machine the server does not always
get a whole core, and CPU per request is the cost whatever it got.

Cases are prepared before the server starts, through the workflow services:
``--cases`` cases for firing hold/resume (every worker owns its own cases and
alternates hold and resume on each, so every request is a valid transition),
and as many with a typical evaluation's facts for recording assessments and
listing transitions (the heaviest guards: ``approve``'s fourteen).

``--at REV`` also serves carepath's packages as of a git revision, and
``--patched`` a copy of the code with patches applied (a proposed fix), each
on a copy of the data, measured in the same run, endpoint by endpoint.
``--profile DIR`` samples every server with py-spy while it is under load.

    uv run python benchmarks/http_bench.py --seconds 10
    uv run python benchmarks/http_bench.py --rounds 3 --at e1ba8cb~1 --save
    uv run --with py-spy python benchmarks/http_bench.py --profile /tmp/profiles
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import profiling
from harness import (
    BENCH_DIR,
    ROOT,
    Server,
    machine_info,
    markdown_table,
    on_sigterm_raise_interrupt,
    pinned,
    print_machine,
    sqlite_url,
    temp_dir,
    uv_run,
)
from load import LoadResult, Request, Scenario, run
from seed import Staff, add_user, create_cases, evaluation_facts, migrate

from models.db import make_engine
from models.types import utcnow

RESULTS = BENCH_DIR / "results" / "http_bench.json"
PACKAGES = ("models", "workflow", "api", "schedules")
BASELINE = "baseline (read, bump, commit)"
FIRE = "fire hold/resume"
ASSESS = "record assessment"
VITALS = "record vitals"
OPTIONS = "GET transitions"


def baseline_scenario(rows: int, connections: int) -> Scenario:
    def scenario(index: int) -> Generator[Request, int, None]:
        while True:
            for item_id in range(index + 1, rows + 1, connections):
                yield Request("POST", f"/items/{item_id}/bump")

    return scenario


def hold_resume_scenario(
    case_ids: list[int], coordinator: Staff, clinician: Staff, connections: int, held: set[int]
) -> Scenario:
    """Each worker owns every ``connections``-th case and alternates hold and resume on it."""
    hold_body = {"reason": "benchmark: hold"}

    def scenario(index: int) -> Generator[Request, int, None]:
        mine = case_ids[index::connections]
        while True:
            for case_id in mine:
                path = f"/api/v1/cases/{case_id}/transitions"
                if case_id in held:
                    status = yield Request("POST", f"{path}/resume", None, clinician.headers)
                else:
                    status = yield Request("POST", f"{path}/hold", hold_body, coordinator.headers)
                if status in (200, 409):  # 409: our idea of the state was stale
                    held.symmetric_difference_update({case_id})

    return scenario


def assessment_scenario(case_ids: list[int], staff: Staff, connections: int) -> Scenario:
    instruments = (("gad7", 11), ("phq9", 14), ("isi", 18))

    def scenario(index: int) -> Generator[Request, int, None]:
        mine = case_ids[index::connections]
        n = 0
        while True:
            taken_at = (utcnow() - timedelta(hours=1)).isoformat()
            for case_id in mine:
                instrument, score = instruments[n % len(instruments)]
                n += 1
                body = {"instrument": instrument, "score": score, "taken_at": taken_at}
                if instrument == "phq9":
                    body["item9"] = 0  # required on a PHQ-9 (SPEC.md 4.2)
                path = f"/api/v1/cases/{case_id}/assessments"
                yield Request("POST", path, body, staff.headers)

    return scenario


def vitals_scenario(case_ids: list[int], staff: Staff, connections: int) -> Scenario:
    def scenario(index: int) -> Generator[Request, int, None]:
        mine = case_ids[index::connections]
        while True:
            taken_at = (utcnow() - timedelta(minutes=5)).isoformat()
            for case_id in mine:
                body = {"systolic": 124, "diastolic": 79, "taken_at": taken_at}
                yield Request("POST", f"/api/v1/cases/{case_id}/vitals", body, staff.headers)

    return scenario


def transitions_scenario(case_ids: list[int], staff: Staff, connections: int) -> Scenario:
    def scenario(index: int) -> Generator[Request, int, None]:
        mine = case_ids[index::connections]
        while True:
            for case_id in mine:
                yield Request("GET", f"/api/v1/cases/{case_id}/transitions", None, staff.headers)

    return scenario


@dataclass
class Figures:
    """Every round's result for one endpoint, merged."""

    name: str
    rounds: list[LoadResult] = field(default_factory=list)

    @property
    def merged(self) -> LoadResult:
        merged = LoadResult(self.name)
        for result in self.rounds:
            merged.seconds += result.seconds
            merged.latencies += result.latencies
            merged.statuses.update(result.statuses)
        merged.client_cpu = statistics.mean(r.client_cpu for r in self.rounds)
        merged.server_cpu = statistics.mean(r.server_cpu for r in self.rounds)
        return merged


def prepare(tmp, cases: int) -> tuple[str, Staff, Staff, list[int], list[int]]:
    """The carepath database: schema, two users, cases to fire on and cases with facts."""
    url = sqlite_url(tmp / "bench.db")
    engine = make_engine(url)
    try:
        migrate(engine)
        coordinator = add_user(url, engine, "bench-coordinator", "coordinator")
        clinician = add_user(url, engine, "bench-clinician", "clinician", "CA")
        fire_ids = create_cases(engine, coordinator.actor, cases, "fire")
        read_ids = create_cases(engine, coordinator.actor, cases, "read")
        evaluation_facts(engine, coordinator.actor, read_ids)
    finally:
        engine.dispose()
    return url, coordinator, clinician, fire_ids, read_ids


def report(figures: dict[str, Figures], memory: dict[str, dict[str, int]]) -> dict:
    base = figures[BASELINE].merged
    rows, endpoints = [], {}
    for name, figure in figures.items():
        m = figure.merged
        p50, p99 = m.p(0.5), m.p(0.99)
        ratio = m.rps / base.rps if base.rps else float("nan")
        per_round = [
            r.rps / b.rps for r, b in zip(figure.rounds, figures[BASELINE].rounds, strict=True)
        ]
        endpoints[name] = {
            "requests": m.requests,
            "errors": m.errors,
            "statuses": {str(k): v for k, v in m.statuses.items()},
            "rps": round(m.rps, 1),
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
            "p99_over_p50": round(p99 / p50, 2),
            "ratio_to_baseline": round(ratio, 3),
            "ratio_per_round": [round(r, 3) for r in per_round],
            "server_cpu": round(m.server_cpu, 2),
            "server_cpu_ms_per_request": round(m.server_ms_per_request, 2),
            "cpu_ratio_to_baseline": round(base.server_ms_per_request / m.server_ms_per_request, 3),
            "client_cpu": round(m.client_cpu, 2),
        }
        rows.append(
            [
                name,
                f"{m.rps:.0f}",
                f"{p50:.1f}",
                f"{p99:.1f}",
                f"{p99 / p50:.1f}",
                f"{ratio:.2f}",
                f"{m.errors}",
                f"{m.server_ms_per_request:.1f}",
                f"{base.server_ms_per_request / m.server_ms_per_request:.2f}",
                f"{m.server_cpu:.0%} / {m.client_cpu:.0%}",
            ]
        )
    headers = ["endpoint", "req/s", "p50 ms", "p99 ms", "p99/p50", "x baseline", "errors"]
    headers += ["server cpu ms/req", "baseline cpu / this", "cpu server / client"]
    print(markdown_table(headers, rows))
    mem_rows = [
        [name, f"{m['VmHWM'] / 1024:.1f}", f"{m['VmRSS'] / 1024:.1f}"] for name, m in memory.items()
    ]
    print(markdown_table(["server", "peak RSS (VmHWM) MiB", "RSS at end MiB"], mem_rows))
    return endpoints


def patched_source(target: Path, patches: list[Path]) -> Path:
    """A copy of carepath's packages with ``patches`` applied, to serve from instead."""
    target.mkdir()
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=shutil.ignore_patterns("*.pyc"))
    for patch in patches:
        # --forward: a patch that is already in the code is an error, never undone.
        argv = ["patch", "-p1", "--forward", "--batch", "--quiet", "-d", str(target)]
        done = subprocess.run([*argv, "-i", str(patch.resolve())], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{patch} does not apply to the current code:\n{done.stdout}")
    return target


def source_at(target: Path, revision: str) -> Path:
    """carepath's packages as of a git revision, to serve from instead."""
    argv = ["git", "-C", str(ROOT), "archive", revision, *PACKAGES]
    archive = subprocess.run(argv, capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {revision} failed: {archive.stderr.decode()}")
    target.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def variants(args: argparse.Namespace, tmp: Path) -> list[tuple[str, Path]]:
    """Other versions of the code to serve side by side: (label, source dir)."""
    found = []
    for n, revision in enumerate(args.at, start=1):
        found.append((f"@{revision}", source_at(tmp / f"at{n}", revision)))
    for n, spec in enumerate(args.patched, start=1):
        patches = [Path(p) for p in spec.split(",")]
        label = "+" + "+".join(p.stem for p in patches)
        found.append((label, patched_source(tmp / f"patched{n}", patches)))
    return found


def copy_database(source: Path, target: Path, code: Path | None = None) -> None:
    """A consistent copy of a SQLite database (WAL included), for a second server.

    With ``code`` (an older revision's packages), the copy is stamped at that
    code's newest migration, so it serves it without refusing a schema it
    does not know: only newer migrations that add indexes may lie between.
    """
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    if code is not None:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory(str(code / "models" / "migrations")).get_current_head()
        with sqlite3.connect(target) as dst:
            dst.execute("UPDATE alembic_version SET version_num = ?", (head,))


def carepath_phases(
    server: Server,
    label: str,
    args: argparse.Namespace,
    staff: tuple[Staff, Staff],
    case_ids: tuple[list[int], list[int]],
) -> list[tuple[str, Server, Scenario]]:
    """Firing, recording and listing on one carepath server; ``label`` tags the names."""
    coordinator, clinician = staff
    fire_ids, read_ids = case_ids
    held: set[int] = set()
    fire = hold_resume_scenario(fire_ids, coordinator, clinician, args.connections, held)
    return [
        (FIRE + label, server, fire),
        (ASSESS + label, server, assessment_scenario(read_ids, coordinator, args.connections)),
        (VITALS + label, server, vitals_scenario(read_ids, coordinator, args.connections)),
        (OPTIONS + label, server, transitions_scenario(read_ids, clinician, args.connections)),
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cases", type=int, default=2000, help="per case group")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every endpoint")
    parser.add_argument("--max-requests", type=int, help="also stop each endpoint after these")
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="REV",
        help="also serve carepath's packages as of this git revision, on a copy of the data; "
        "repeatable",
    )
    parser.add_argument(
        "--patched",
        action="append",
        default=[],
        metavar="PATCHES",
        help="also serve the code with these patches applied, in order (comma-separated "
        "paths), on a copy of the data; repeatable",
    )
    parser.add_argument(
        "--pin",
        type=int,
        metavar="CPU",
        help="run every server (the baseline and older revisions too) on this one CPU",
    )
    parser.add_argument("--save", action="store_true", help=f"write {RESULTS.name}")
    profiling.add_options(parser, "each server", top=25)
    args = parser.parse_args()
    profiling.check_options(parser, args)
    return args


def measure(args: argparse.Namespace, phases: list[tuple[str, Server, Scenario]]) -> dict:
    """Every phase, ``--rounds`` times over, in the order given."""
    figures = {name: Figures(name) for name, _, _ in phases}
    for n in range(args.rounds):
        for name, server, scenario in phases:
            with profiling.maybe_sampled(args.profile, server.pid, f"{n + 1}-{name}") as samples:
                result = run(
                    server.url,
                    scenario,
                    name=f"round {n + 1} {name}",
                    connections=args.connections,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    max_requests=args.max_requests,
                    server_pid=server.pid,
                )
            print(result.summary(), flush=True)
            if samples is not None:
                profiling.print_summary(samples, top=args.profile_top)
            figures[name].rounds.append(result)
    return figures


BASELINE_APP = "benchmarks/baseline_app.py"


def main() -> None:
    args = parse_args()
    on_sigterm_raise_interrupt()
    print_machine()
    with temp_dir("carepath-http-") as tmp, contextlib.ExitStack() as servers:
        began = time.monotonic()
        url, coordinator, clinician, fire_ids, read_ids = prepare(tmp, args.cases)
        print(f"prepared {2 * args.cases} cases in {time.monotonic() - began:.0f} s")
        staff, case_ids = (coordinator, clinician), (fire_ids, read_ids)
        env = {"CAREPATH_DATABASE_URL": url, "CAREPATH_ADMIN_TOKEN": secrets.token_urlsafe(32)}
        baseline_db = ["--database-url", sqlite_url(tmp / "baseline.db"), "--rows", str(args.cases)]
        baseline = servers.enter_context(
            Server(
                "baseline",
                pinned(uv_run("python", BASELINE_APP, "--port", "{port}", *baseline_db), args.pin),
                tmp,
            )
        )
        phases = [(BASELINE, baseline, baseline_scenario(args.cases, args.connections))]
        serve = ["serve", "--no-scheduler", "--port", "{port}"]
        targets = [("carepath", "", uv_run("carepath", *serve), env, ROOT)]
        for n, (label, source) in enumerate(variants(args, tmp), start=1):
            copy_database(tmp / "bench.db", tmp / f"variant{n}.db", source)
            variant_env = {
                **env,
                "CAREPATH_DATABASE_URL": sqlite_url(tmp / f"variant{n}.db"),
                "PYTHONPATH": str(source),
            }
            argv = [sys.executable, "-m", "api.cli", *serve]
            targets.append((f"carepath{label}", f" [{label}]", argv, variant_env, source))
        carepaths = []
        for name, label, argv, server_env, cwd in targets:
            argv = pinned(argv, args.pin)
            server = servers.enter_context(Server(name, argv, tmp, server_env, cwd=cwd))
            carepaths.append(carepath_phases(server, label, args, staff, case_ids))
        # Interleave the variants endpoint by endpoint, so both see the same noise.
        phases += [phase for group in zip(*carepaths, strict=True) for phase in group]
        figures = measure(args, phases)
        memory = {server.name: server.memory() for server in servers_list(phases)}
    endpoints = report(figures, memory)
    if args.save:
        RESULTS.parent.mkdir(exist_ok=True)
        saved = {
            "machine": machine_info(),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "endpoints": endpoints,
            "memory_kib": memory,
        }
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n")


def servers_list(phases: list[tuple[str, Server, Scenario]]) -> list[Server]:
    """Each server of the phases, once, in order."""
    return list({id(server): server for _, server, _ in phases}.values())


if __name__ == "__main__":
    main()
