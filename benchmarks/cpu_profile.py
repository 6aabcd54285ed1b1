"""CPU per request, measured in process: where a request's CPU goes, whatever the machine's load.

Builds the app with ``api.main.create_app`` on a temp SQLite file (migrated,
``synchronous=FULL`` as served) and drives the ASGI app directly with
``httpx.AsyncClient(transport=httpx.ASGITransport(app))`` in one event loop,
one request at a time, through a mix: record vitals, record an assessment,
hold, resume, ``GET transitions``, ``GET`` the case. Logging is configured
as ``carepath serve`` does it (JSON lines), written to ``/dev/null``.

The server's CPU is the process CPU time (``time.process_time``, every
thread) spent inside the ASGI app's call, so the client's own work is left
out. It is measured over the mix, after a warm-up, in three ways (the first two in
turns, ``--passes`` times each):

- threads inlined: ``anyio.to_thread.run_sync`` patched to call the function
  on the event loop, so that every sync dependency and handler runs in the
  one thread (what the profile sees);
- with the thread pool: as served, each sync dependency or handler a trip to
  a worker thread and back (the trips per request are counted);
- under ``cProfile`` (threads inlined, CPU time): the profile is enabled only
  inside the app's call, and printed as Python function calls per request by
  kind, CPU by package (own time) and the top functions by cumulative and by
  own time, ours (api/, workflow/, models/, schedules/) and theirs (fastapi,
  starlette, pydantic, sqlalchemy, sqlite3, json, ...). Profiling slows
  everything three to four times: read its shares, and the unprofiled
  passes' milliseconds.

On a shared machine the CPU time of the same request moves by 30% with the
others' load (caches, the other hyperthread, the hypervisor): compare two
versions by alternating runs (the lowest figures are the least disturbed), and
by the function calls per request, which the load does not move.

Wall time is not reported: commits wait for ``fdatasync``, and the machine
is shared. CPU per request is the figure to compare between two versions of
the code (run the same script in each checkout).

    uv run python benchmarks/cpu_profile.py
    uv run python benchmarks/cpu_profile.py --rounds 400 --top 40 --only vitals --statements
    uv run python benchmarks/cpu_profile.py --save /tmp/carepath.prof   # for snakeviz etc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from harness import ROOT, machine_info, markdown_table, temp_dir
from seed import create_cases, evaluation_facts, migrate
from sqlalchemy import event

from api import auth
from api.logs import configure_logging
from api.main import create_app
from models.db import make_engine, session_scope
from models.schemas import UserCreate
from models.types import utcnow

KINDS = ("vitals", "assessment", "hold", "resume", "GET transitions", "GET case")
OURS = ("api", "workflow", "models", "schedules")
STDLIB = Path(logging.__file__).resolve().parent.parent
INSTRUMENTS = (("gad7", 11), ("phq9", 14), ("isi", 18))


@dataclass
class Staff:
    coordinator: dict[str, str]
    clinician: dict[str, str]


@dataclass
class Meter:
    """The ASGI app, wrapped: the CPU time of each call, and a profile per kind while profiling."""

    app: Any
    profiles: dict[str, cProfile.Profile] | None = None
    profiling: bool = False
    kind: str = ""
    last: float = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        profile = None
        if self.profiles is not None and self.profiling:
            # process_time: CPU, not wall time (a commit's fdatasync is not CPU)
            profile = self.profiles.setdefault(self.kind, cProfile.Profile(time.process_time))
        started = time.process_time()
        if profile is not None:
            profile.enable()
        try:
            await self.app(scope, receive, send)
        finally:
            if profile is not None:
                profile.disable()
            self.last = time.process_time() - started


@dataclass
class Pass:
    """Server CPU seconds per request, by kind of request."""

    label: str
    cpu: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    trips: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def trips_per_request(self, kind: str) -> str:
        return f"{statistics.mean(self.trips[kind]):.1f}"

    def row(self, kind: str) -> str:
        values = self.cpu[kind]
        return f"{statistics.median(values) * 1000:.2f} / {statistics.mean(values) * 1000:.2f}"

    def mix(self) -> str:
        every = [v for values in self.cpu.values() for v in values]
        return f"{statistics.mean(every) * 1000:.2f}"


async def _inline(func: Callable[..., Any], *args: Any, **_options: Any) -> Any:
    return func(*args)


TRIPS = [0]
"""Calls to ``anyio.to_thread.run_sync`` so far: trips to the thread pool and back."""


@contextlib.contextmanager
def trips_counted() -> Iterator[None]:
    """Count every trip to the thread pool (``TRIPS``) while the block runs."""
    original = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **options: Any) -> Any:
        TRIPS[0] += 1
        return await original(func, *args, **options)

    anyio.to_thread.run_sync = counted  # type: ignore[assignment]
    try:
        yield
    finally:
        anyio.to_thread.run_sync = original


@contextlib.contextmanager
def threads_inlined() -> Iterator[None]:
    """Sync dependencies and handlers run on the event loop's thread, where cProfile is."""
    original = anyio.to_thread.run_sync
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    try:
        yield
    finally:
        anyio.to_thread.run_sync = original


def prepare(tmp: Path, cases: int) -> tuple[Any, Staff, list[int]]:
    """A migrated database, a coordinator and a clinician, cases with an evaluation's facts."""
    engine = make_engine(f"sqlite:///{tmp / 'profile.db'}")
    migrate(engine)
    tokens = {}
    with session_scope(engine) as session:
        coordinator = UserCreate(name="prof-coordinator", role="coordinator")
        clinician = UserCreate(name="prof-clinician", role="clinician", license_states=["CA"])
        user, tokens["coordinator"] = auth.create_user(session, data=coordinator, now=utcnow())
        actor = auth.as_actor(user)
        _, tokens["clinician"] = auth.create_user(session, data=clinician, now=utcnow())
    case_ids = create_cases(engine, actor, cases, "prof")
    evaluation_facts(engine, actor, case_ids)
    staff = Staff(*({"Authorization": f"Bearer {tokens[r]}"} for r in ("coordinator", "clinician")))
    return engine, staff, case_ids


Step = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def mix(case_id: int, n: int, staff: Staff) -> list[tuple[str, Step]]:
    """One round of the mix on one case."""
    url = f"/api/v1/cases/{case_id}"
    taken_at = (utcnow() - timedelta(minutes=5)).isoformat()
    instrument, score = INSTRUMENTS[n % len(INSTRUMENTS)]
    vital = {"systolic": 124, "diastolic": 79, "taken_at": taken_at}
    assessment = {"instrument": instrument, "score": score, "taken_at": taken_at}
    if instrument == "phq9":
        assessment["item9"] = 0  # required on a PHQ-9 from SPEC.md 4.2 on
    coordinator, clinician = staff.coordinator, staff.clinician
    hold = {"reason": "profile"}
    return [
        ("vitals", lambda c: c.post(f"{url}/vitals", json=vital, headers=coordinator)),
        (
            "assessment",
            lambda c: c.post(f"{url}/assessments", json=assessment, headers=staff.coordinator),
        ),
        ("hold", lambda c: c.post(f"{url}/transitions/hold", json=hold, headers=coordinator)),
        ("resume", lambda c: c.post(f"{url}/transitions/resume", headers=clinician)),
        ("GET transitions", lambda c: c.get(f"{url}/transitions", headers=clinician)),
        ("GET case", lambda c: c.get(url, headers=clinician)),
    ]


EXPECTED = {"vitals": 201, "assessment": 201, "hold": 200, "resume": 200}


async def drive(
    meter: Meter, staff: Staff, case_ids: list[int], rounds: int, only: set[str], result: Pass
) -> None:
    """``rounds`` rounds of the mix, one request at a time, cycling through the cases."""
    transport = httpx.ASGITransport(app=meter)
    async with httpx.AsyncClient(transport=transport, base_url="http://carepath") as client:
        for n in range(rounds):
            for kind, step in mix(case_ids[n % len(case_ids)], n, staff):
                meter.profiling, meter.kind = kind in only, kind
                trips = TRIPS[0]
                response = await step(client)
                if response.status_code != EXPECTED.get(kind, 200):
                    raise SystemExit(f"{kind}: {response.status_code} {response.text}")
                if kind in only:
                    result.cpu[kind].append(meter.last)
                    result.trips[kind].append(TRIPS[0] - trips)


def package_of(filename: str, name: str) -> str:
    """Which package a profiled function belongs to: ours by directory, theirs by name."""
    if filename == "~":  # a C function: its name says whose it is
        for marker, package in (
            ("sqlite3", "sqlite3"),
            ("_json", "json"),
            ("pydantic_core", "pydantic"),
            ("SchemaValidator", "pydantic"),
            ("SchemaSerializer", "pydantic"),
            ("_hashlib", "hashlib"),
            ("_contextvars", "contextvars"),
            ("_asyncio", "asyncio"),
        ):
            if marker in name:
                return package
        return "(builtins)"
    if filename.startswith("<sqlalchemy generated"):
        return "sqlalchemy"
    if filename.startswith("<frozen "):
        return filename.removeprefix("<frozen ").removesuffix(">").split(".")[0].lstrip("_")
    if filename.startswith("<"):
        return "(generated)"  # dataclasses' and namedtuples' generated methods
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    with contextlib.suppress(ValueError):
        relative = Path(filename).resolve().relative_to(ROOT)
        top = relative.parts[0]
        return f"{top}/" if top in OURS else top
    with contextlib.suppress(ValueError):
        return Path(filename).relative_to(STDLIB).parts[0].removesuffix(".py")
    return filename


def short(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return f"{'/'.join(parts[parts.index('site-packages') + 1 :])}:{line} {name}"
    with contextlib.suppress(ValueError):
        return f"{path.resolve().relative_to(ROOT)}:{line} {name}"
    return f"{path.name}:{line} {name}"


def print_calls(profiles: dict[str, cProfile.Profile], measured: Pass) -> None:
    """Python function calls per request, by kind: a count that the machine's load does not
    move, unlike CPU time (a version that does less Python work makes fewer calls)."""
    rows = []
    for kind, profile in profiles.items():
        raw: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        requests = len(measured.cpu[kind])
        calls = sum(nc for (_cc, nc, _tt, _ct, _callers) in raw.values())
        cpu = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values())
        rows.append([kind, f"{calls / requests:.0f}", f"{cpu / requests * 1000:.2f}"])
    print("\nUnder cProfile, per request: Python function calls, and CPU ms (profiled)")
    print(markdown_table(["request", "function calls", "profiled CPU ms"], rows))


def print_profile(stats: pstats.Stats, requests: int, top: int) -> None:
    """Own time by package, then the top functions by cumulative and by own time."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values()) or 1e-9
    by_package: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tt, _ct, _callers) in raw.items():
        by_package[package_of(func[0], func[2])] += tt
    rows = [
        [package, f"{tt / requests * 1000:.3f}", f"{tt / total:.1%}"]
        for package, tt in sorted(by_package.items(), key=lambda item: -item[1])
    ]
    calls = sum(nc for (_cc, nc, _tt, _ct, _callers) in raw.values())
    print(f"\nProfiled: {total / requests * 1000:.2f} ms of CPU per request under cProfile")
    print(f"Python function calls per request: {calls / requests:.0f} (the load does not move it)")
    print("\nOwn time by package (profiled ms per request, share)")
    print(markdown_table(["package", "ms/req", "share"], rows))
    ours = {f"{top}/" for top in OURS}
    for title, key, mine in (
        ("cumulative", 3, False),
        ("cumulative, our code only", 3, True),
        ("own", 2, False),
    ):
        chosen = [
            (func, values)
            for func, values in raw.items()
            if not mine or package_of(func[0], func[2]) in ours
        ]
        ranked = sorted(chosen, key=lambda item: -item[1][key])[:top]
        rows = [
            [
                short(func),
                package_of(func[0], func[2]),
                f"{values[1] / requests:.2f}",
                f"{values[3] / total:.1%}",
                f"{values[2] / total:.1%}",
            ]
            for func, values in ranked
        ]
        print(f"\nTop {top} by {title} time (calls per request, cumulative share, own share)")
        print(markdown_table(["function", "package", "calls/req", "cum", "own"], rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the mix per pass")
    parser.add_argument("--passes", type=int, default=2, help="timed passes of each kind")
    parser.add_argument("--warmup", type=int, default=30, help="rounds before measuring")
    parser.add_argument("--cases", type=int, default=100, help="cases the rounds cycle through")
    parser.add_argument("--top", type=int, default=30, help="functions listed per ranking")
    parser.add_argument(
        "--only",
        action="append",
        choices=KINDS,
        help="measure and profile only these kinds (the whole mix still runs); repeatable",
    )
    parser.add_argument("--no-profile", action="store_true", help="the CPU figures only")
    parser.add_argument(
        "--statements", action="store_true", help="also list the SQL statements of each request"
    )
    parser.add_argument("--save", type=Path, help="also write the raw cProfile stats here")
    return parser.parse_args()


@dataclass
class Statements:
    """The SQL statements each request ran (through SQLAlchemy), by kind of request."""

    current: list[str] = field(default_factory=list)
    seen: dict[str, list[list[str]]] = field(default_factory=lambda: defaultdict(list))

    def count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.current.append(" ".join(statement.split())[:90])

    def print(self) -> None:
        print("\nSQL statements per request (through SQLAlchemy; the token lookup is not)")
        for kind, runs in self.seen.items():
            mean = statistics.mean(len(run) for run in runs)
            print(f"\n{kind}: {mean:.1f}")
            for statement in runs[-1]:
                print(f"    {statement}")


async def count_statements(
    meter: Meter, engine: Any, staff: Staff, case_ids: list[int], only: set[str]
) -> None:
    """A few rounds with every statement counted (an engine listener: not while timing)."""
    statements = Statements()
    event.listen(engine, "before_cursor_execute", statements.count)
    try:
        transport = httpx.ASGITransport(app=meter)
        async with httpx.AsyncClient(transport=transport, base_url="http://carepath") as client:
            for n in range(5):
                for kind, step in mix(case_ids[n % len(case_ids)], n, staff):
                    statements.current = []
                    await step(client)
                    if kind in only:
                        statements.seen[kind].append(statements.current)
    finally:
        event.remove(engine, "before_cursor_execute", statements.count)
    statements.print()


async def run(args: argparse.Namespace, app: Any, staff: Staff, case_ids: list[int]) -> None:
    only = set(args.only or KINDS)
    meter = Meter(app)
    with threads_inlined():
        await drive(meter, staff, case_ids, args.warmup, only, Pass("warm-up"))
    inlined, pooled = Pass("threads inlined"), Pass("thread pool")
    for _ in range(args.passes):  # in turns, so that the machine's load falls on both alike
        with threads_inlined():
            await drive(meter, staff, case_ids, args.rounds, only, inlined)
        with trips_counted():
            await drive(meter, staff, case_ids, args.rounds, only, pooled)
    print(
        f"\nServer CPU ms per request, median / mean, over {args.passes} x {args.rounds} "
        "rounds of the mix"
    )
    rows = [
        [kind, inlined.row(kind), pooled.row(kind), pooled.trips_per_request(kind)]
        for kind in KINDS
        if kind in only
    ]
    rows.append(["mix (mean)", inlined.mix(), pooled.mix(), ""])
    print(markdown_table(["request", "threads inlined", "thread pool", "pool trips"], rows))
    if args.statements:
        with threads_inlined():
            await count_statements(meter, app.state.engine, staff, case_ids, only)
    if args.no_profile:
        return
    profiles: dict[str, cProfile.Profile] = {}
    meter.profiles = profiles
    measured = Pass("profiled")
    with threads_inlined():
        await drive(meter, staff, case_ids, args.rounds, only, measured)
    print_calls(profiles, measured)
    first, *others = profiles.values()
    stats = pstats.Stats(first)
    for other in others:
        stats.add(other)
    if args.save:
        stats.dump_stats(args.save)
    print_profile(stats, sum(len(v) for v in measured.cpu.values()), args.top)


def start_quietly() -> Any:
    """Print the machine's line and log as ``carepath serve`` does, into ``/dev/null``;
    returns that file, to close at the end."""
    info = machine_info()
    print(f"{info['date']}, {info['nproc']} cores, load {info['loadavg']}, Python {info['python']}")
    configure_logging()
    devnull = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    return devnull


def main() -> None:
    args = parse_args()
    devnull = start_quietly()
    with temp_dir("carepath-cpu-") as tmp:
        engine, staff, case_ids = prepare(tmp, args.cases)
        try:
            app = create_app(engine)
            asyncio.run(run(args, app, staff, case_ids))
        finally:
            engine.dispose()
    devnull.close()


if __name__ == "__main__":
    main()
