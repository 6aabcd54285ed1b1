"""A write's cost against the history on the case, and ``/health`` while writes queue.

1. **Growth.** One case holds ``--facts`` assessments (bulk-inserted, as two
   years of weekly scores several times over would be); another is fresh.
   ``POST vitals`` and ``POST assessments`` are sent to each in turn, one at a
   time, ``--writes`` times; then to a third case while another client keeps
   writing to the fresh case, and while it keeps writing to the big one
   (writes to other cases must not slow down because one case is big).
   Target: a write on the big case within 1.2x of one on the fresh case.
2. **Health while writes queue.** ``--queued`` clients write vitals as fast
   as they can while one client reads ``GET /health``. Target: its p99 under
   50 ms.

``--at REV`` runs the same against carepath as of a git revision, on a copy
of the database, after the current code.

    uv run python benchmarks/write_growth_bench.py --at a0e8263
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from harness import (
    ROOT,
    Server,
    markdown_table,
    on_sigterm_raise_interrupt,
    percentile,
    print_machine,
    sqlite_url,
    temp_dir,
    uv_run,
)
from http_bench import copy_database, source_at
from seed import add_user, create_cases, evaluation_facts, migrate
from sqlalchemy import insert

from models.db import make_engine
from models.facts import Assessment


def seed(url: str, facts: int) -> tuple[str, list[int]]:
    """Users, a big case, a fresh case and a third one; returns a coordinator token and ids."""
    engine = make_engine(url)
    try:
        migrate(engine)
        coordinator = add_user(url, engine, "growth-coordinator", "coordinator")
        ids = create_cases(engine, coordinator.actor, 3, "growth")
        evaluation_facts(engine, coordinator.actor, ids)
        start = datetime.now(UTC) - timedelta(days=3)
        rows = [
            {
                "case_id": ids[0],
                "instrument": ("phq9", "gad7", "isi")[n % 3],
                "score": 8 + n % 12,
                "item9": 0 if n % 3 == 0 else None,
                "taken_at": start - timedelta(hours=n),
                "created_at": start,
            }
            for n in range(facts)
        ]
        with engine.begin() as conn:
            conn.execute(insert(Assessment), rows)
    finally:
        engine.dispose()
    return coordinator.token, ids


def timed_writes(client: httpx.Client, case_id: int, n: int, headers: dict) -> list[float]:
    """``n`` alternating vitals and ISI scores on one case, one at a time; seconds each."""
    seconds = []
    for i in range(n):
        at = datetime.now(UTC).isoformat()
        if i % 2:
            path, body = "assessments", {"instrument": "isi", "score": 15, "taken_at": at}
        else:
            path, body = "vitals", {"systolic": 121, "diastolic": 79, "taken_at": at}
        began = time.perf_counter()
        response = client.post(f"/api/v1/cases/{case_id}/{path}", json=body, headers=headers)
        seconds.append(time.perf_counter() - began)
        response.raise_for_status()
    return seconds


def growth(server: Server, token: str, ids: list[int], writes: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    big, fresh, other = ids
    with httpx.Client(base_url=server.url, timeout=60) as client:
        timed_writes(client, fresh, 10, headers)  # warm up
        on_big, on_fresh = [], []
        for _ in range(4):
            on_big += timed_writes(client, big, writes // 4, headers)
            on_fresh += timed_writes(client, fresh, writes // 4, headers)

    async def hammer(case_id: int, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                at = datetime.now(UTC).isoformat()
                body = {"systolic": 120, "diastolic": 80, "taken_at": at}
                await client.post(f"/api/v1/cases/{case_id}/vitals", json=body, headers=headers)

    async def beside(case_id: int) -> list[float]:
        """Writes to ``other`` while another client keeps writing to ``case_id``."""
        stop = asyncio.Event()
        task = asyncio.create_task(hammer(case_id, stop))
        with httpx.Client(base_url=server.url, timeout=60) as client:
            result = await asyncio.to_thread(timed_writes, client, other, writes // 2, headers)
        stop.set()
        await task
        return result

    beside_fresh, beside_big = [], []
    for _ in range(2):
        beside_fresh += asyncio.run(beside(fresh))
        beside_big += asyncio.run(beside(big))
    return {
        "big": statistics.median(on_big) * 1000,
        "fresh": statistics.median(on_fresh) * 1000,
        "other beside fresh": statistics.median(beside_fresh) * 1000,
        "other beside big": statistics.median(beside_big) * 1000,
    }


HEALTH_PROBE = """
import sys, time, httpx
with httpx.Client(timeout=60) as client:
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        client.get(sys.argv[1]).raise_for_status()
        print(time.perf_counter() - began)
        time.sleep(0.02)
"""
"""``GET /health`` every 20 ms for 10 s, each latency on a line (seconds)."""


def health_while_queued(server: Server, token: str, case_ids: list[int], queued: int) -> float:
    """p99 of ``GET /health`` (ms) while ``queued`` clients keep a write each in the queue."""
    headers = {"Authorization": f"Bearer {token}"}

    async def writer(client: httpx.AsyncClient, n: int, stop: asyncio.Event) -> None:
        case_id = case_ids[n % len(case_ids)]
        while not stop.is_set():
            body = {"systolic": 120, "diastolic": 80, "taken_at": datetime.now(UTC).isoformat()}
            try:
                await client.post(f"/api/v1/cases/{case_id}/vitals", json=body, headers=headers)
            except httpx.HTTPError:  # a dropped keep-alive connection: send the next one
                dropped.append(case_id)

    dropped: list[int] = []

    async def main() -> list[float]:
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=queued)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
            writers = [asyncio.create_task(writer(client, n, stop)) for n in range(queued)]
            await asyncio.sleep(2)
            # Timed from a process of its own: in this one, the health request would
            # wait for the writers' turn on this event loop, and that is not the server.
            timed = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", HEALTH_PROBE, server.url + "/health"],
                capture_output=True,
                text=True,
                check=True,
            )
            stop.set()
            await asyncio.gather(*writers)
        return [float(line) for line in timed.stdout.split()]

    latencies = asyncio.run(main())
    if dropped:
        print(f"  writers' connections dropped and retried: {len(dropped)}", flush=True)
    return percentile(sorted(latencies), 0.99) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=80)
    parser.add_argument("--queued", type=int, default=60)
    parser.add_argument("--at", action="append", default=[], metavar="REV")
    args = parser.parse_args()
    on_sigterm_raise_interrupt()
    print_machine()
    rows, health_rows = [], []
    with temp_dir("carepath-growth-") as tmp:
        url = sqlite_url(tmp / "bench.db")
        token, ids = seed(url, args.facts)
        env = {"CAREPATH_ADMIN_TOKEN": secrets.token_urlsafe(32)}
        serve = ["serve", "--no-scheduler", "--port", "{port}"]
        targets = [("carepath", uv_run("carepath", *serve), {"CAREPATH_DATABASE_URL": url}, ROOT)]
        for n, revision in enumerate(args.at, start=1):
            source = source_at(tmp / f"at{n}", revision)
            copy_database(tmp / "bench.db", tmp / f"at{n}.db", source)
            at_env = {"CAREPATH_DATABASE_URL": sqlite_url(tmp / f"at{n}.db")}
            at_env["PYTHONPATH"] = str(source)
            argv = [sys.executable, "-m", "api.cli", *serve]
            targets.append((f"carepath @{revision}", argv, at_env, source))
        for name, argv, target_env, cwd in targets:
            slug = "".join(c if c.isalnum() else "-" for c in name)
            with contextlib.ExitStack() as stack:
                server = stack.enter_context(
                    Server(slug, argv, tmp, {**env, **target_env}, cwd=cwd)
                )
                ms = growth(server, token, ids, args.writes)
                print(name, {k: round(v, 1) for k, v in ms.items()}, flush=True)
                rows.append(
                    [
                        name,
                        f"{ms['fresh']:.1f}",
                        f"{ms['big']:.1f}",
                        f"{ms['big'] / ms['fresh']:.2f}",
                        f"{ms['other beside fresh']:.1f}",
                        f"{ms['other beside big']:.1f}",
                        f"{ms['other beside big'] / ms['other beside fresh']:.2f}",
                    ]
                )
                p99 = health_while_queued(server, token, ids, args.queued)
                health_rows.append([name, f"{args.queued}", f"{p99:.1f}"])
    headers = ["server", "fresh case ms", f"case with {args.facts} scores ms", "big / fresh"]
    headers += ["other case, fresh busy ms", "other case, big busy ms", "big busy / fresh busy"]
    print(markdown_table(headers, rows))
    print(markdown_table(["server", "writers queued", "GET /health p99 ms"], health_rows))


if __name__ == "__main__":
    main()
