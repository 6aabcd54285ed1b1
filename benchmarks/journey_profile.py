"""CPU per request over the whole journey, in process: which steps cost what, and where it goes.

The steps of ``journey_bench.py`` (a whole course of care), one request at a
time, through ``httpx.ASGITransport`` into ``api.main.create_app`` on a
migrated temp SQLite file, with the thread pool inlined (as
``cpu_profile.py`` does). Prints the CPU of each step (median over the
journeys) and, with ``--profile``, the cProfile of the whole journey by
package and function.

    uv run python benchmarks/journey_profile.py --journeys 60
    uv run python benchmarks/journey_profile.py --journeys 30 --profile --top 40
"""

from __future__ import annotations

import os

from journey_bench import DEMO

os.environ.update(DEMO)

import argparse
import asyncio
import cProfile
import pstats
import statistics
from collections import defaultdict
from typing import Any

import httpx
from cpu_profile import Meter, print_profile, start_quietly, threads_inlined
from harness import markdown_table, temp_dir
from journey_bench import Journeys, Token, journey_scenario
from load import Status
from seed import migrate

from api import auth
from api.main import create_app
from models.db import make_engine, session_scope
from models.schemas import UserCreate
from models.types import utcnow


def step_name(method: str, path: str) -> str:
    tail = path.split("/", 5)[-1] if path.count("/") > 4 else "cases"
    parts = [p if not p.isdigit() else "{id}" for p in tail.split("/")]
    return f"{method} {'/'.join(parts)}"


async def drive(meter: Meter, staff: tuple[Token, Token], journeys: int, cpu: Any) -> Journeys:
    tally = Journeys()
    scenario = journey_scenario(*staff, tally, "p", dispenses=True)(0)
    transport = httpx.ASGITransport(app=meter)
    async with httpx.AsyncClient(transport=transport, base_url="http://carepath") as client:
        request = next(scenario)
        while tally.done < journeys:
            response = await client.request(
                request.method, request.path, json=request.json, headers=request.headers
            )
            if cpu is not None:
                cpu[step_name(request.method, request.path)].append(meter.last)
            status = Status(response.status_code)
            status.response = response
            request = scenario.send(status)
            if tally.broken:
                raise SystemExit(f"unexpected: {tally.broken}")
    return tally


async def run(args: argparse.Namespace, app: Any, staff: tuple[Token, Token]) -> None:
    meter = Meter(app)
    with threads_inlined():
        await drive(meter, staff, 5, None)
        cpu: dict[str, list[float]] = defaultdict(list)
        await drive(meter, staff, args.journeys, cpu)
    rows = []
    total = 0.0
    for name, values in cpu.items():
        per = len(values) / args.journeys
        median = statistics.median(values) * 1000
        total += median * per
        rows.append([name, f"{per:.0f}", f"{median:.2f}"])
    requests = sum(len(v) for v in cpu.values()) / args.journeys
    rows.append(["journey", f"{requests:.0f}", f"{total:.1f}"])
    print(f"\nServer CPU ms per step, median over {args.journeys} journeys, threads inlined")
    print(markdown_table(["step", "per journey", "CPU ms"], rows))
    print(f"mean per request: {total / requests:.2f} ms")
    if not args.profile:
        return
    profiles: dict[str, cProfile.Profile] = {}
    meter.profiles, meter.profiling, meter.kind = profiles, True, "journey"
    with threads_inlined():
        await drive(meter, staff, args.journeys, None)
    stats = pstats.Stats(profiles["journey"])
    if args.save:
        stats.dump_stats(args.save)
    print_profile(stats, int(requests * args.journeys), args.top)


def migrated_staff(engine: Any) -> tuple[Token, Token]:
    """Migrate ``engine``'s database; a coordinator's and a clinician's tokens on it."""
    migrate(engine)
    tokens = {}
    with session_scope(engine) as session:
        for role, states in (("coordinator", []), ("clinician", ["CA"])):
            data = UserCreate(name=f"prof-{role}", role=role, license_states=states)
            _, tokens[role] = auth.create_user(session, data=data, now=utcnow())
    return Token(tokens["coordinator"]), Token(tokens["clinician"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save")
    args = parser.parse_args()
    devnull = start_quietly()
    with temp_dir("carepath-journey-profile-") as tmp:
        engine = make_engine(f"sqlite:///{tmp / 'profile.db'}")
        staff = migrated_staff(engine)
        try:
            asyncio.run(run(args, create_app(engine), staff))
        finally:
            engine.dispose()
    devnull.close()


if __name__ == "__main__":
    main()
