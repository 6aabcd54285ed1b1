"""Memory: RSS after 10k and after 100k transitions; it should grow by no more than 10%.

Fires hold and resume alternately on ``--cases`` cases and reads the RSS
(/proc/<pid>/status VmRSS, and the peak VmHWM) at each checkpoint.

By default the transitions go through the in-process service layer
(``workflow.cases.fire_trigger``, each in its own transaction, with the
reminder hook installed, as a request does) and the RSS is this process's:
over HTTP, 100k transitions take far longer than 15 minutes on 2 shared cores
(see README.md). ``--http`` drives the real server instead (16 connections)
and reads the uvicorn process's RSS.

    uv run python benchmarks/memory_bench.py                  # 10k and 100k, service layer
    uv run python benchmarks/memory_bench.py --transitions 20000 --http
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import time
from collections.abc import Callable

from harness import (
    Server,
    markdown_table,
    on_sigterm_raise_interrupt,
    print_machine,
    proc_status,
    sqlite_url,
    temp_dir,
    uv_run,
)
from http_bench import hold_resume_scenario
from load import run
from seed import Staff, add_user, create_cases, migrate

from models.db import make_engine, session_scope
from models.schemas import TransitionBody
from models.types import utcnow
from workflow.cases import fire_trigger

GROWTH_LIMIT = 0.10


def service_driver(engine, case_ids: list[int], coordinator: Staff, clinician: Staff):
    """Fire transitions in this process; returns a function that fires ``n`` more."""
    held: set[int] = set()
    hold = TransitionBody(reason="benchmark: hold")
    position = 0

    def fire(n: int) -> None:
        nonlocal position
        for _ in range(n):
            case_id = case_ids[position % len(case_ids)]
            position += 1
            with session_scope(engine) as session:
                if case_id in held:
                    fire_trigger(
                        session,
                        case_id=case_id,
                        trigger="resume",
                        actor=clinician.actor,
                        now=utcnow(),
                    )
                else:
                    fire_trigger(
                        session,
                        case_id=case_id,
                        trigger="hold",
                        actor=coordinator.actor,
                        now=utcnow(),
                        body=hold,
                    )
            held.symmetric_difference_update({case_id})

    return fire


def http_driver(server: Server, case_ids, coordinator: Staff, clinician: Staff, connections: int):
    """Fire transitions over HTTP on the real server; returns a function that fires ``n`` more."""
    held: set[int] = set()
    scenario = hold_resume_scenario(case_ids, coordinator, clinician, connections, held)

    def fire(n: int) -> None:
        result = run(
            server.url,
            scenario,
            name="transitions",
            connections=connections,
            seconds=24 * 3600,
            warmup=0,
            max_requests=n,
        )
        if result.errors:
            raise RuntimeError(f"{result.errors} transitions failed: {dict(result.statuses)}")

    return fire


def measure(fire: Callable[[int], None], pid: int, checkpoints: list[int]) -> list[list[str]]:
    """Fire up to each checkpoint; the RSS, peak and elapsed time at each."""
    rows, done, began = [], 0, time.monotonic()
    for checkpoint in checkpoints:
        fire(checkpoint - done)
        done = checkpoint
        if pid == os.getpid():
            gc.collect()
        memory = proc_status(pid)
        elapsed = time.monotonic() - began
        rows.append(
            [
                f"{checkpoint:,}",
                f"{memory['VmRSS'] / 1024:.1f}",
                f"{memory['VmHWM'] / 1024:.1f}",
                f"{elapsed:.0f}",
                f"{checkpoint / elapsed:.0f}",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=100_000, help="the last checkpoint")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--http", action="store_true", help="over HTTP, the real server's RSS")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    on_sigterm_raise_interrupt()
    print_machine()
    first = max(1, args.transitions // 10)
    checkpoints = sorted({first // 10 or 1, first, args.transitions})
    with temp_dir("carepath-memory-") as tmp:
        url = sqlite_url(tmp / "memory.db")
        engine = make_engine(url)
        migrate(engine)
        coordinator = add_user(url, engine, "bench-coordinator", "coordinator")
        clinician = add_user(url, engine, "bench-clinician", "clinician", "CA")
        case_ids = create_cases(engine, coordinator.actor, args.cases, "memory")
        print("transitions | RSS MiB | peak RSS MiB | elapsed s | transitions/s")
        if args.http:
            engine.dispose()
            env = {"CAREPATH_DATABASE_URL": url, "CAREPATH_ADMIN_TOKEN": secrets.token_urlsafe(32)}
            argv = uv_run("carepath", "serve", "--no-scheduler", "--port", "{port}")
            with Server("carepath", argv, tmp, env) as server:
                fire = http_driver(server, case_ids, coordinator, clinician, args.connections)
                rows = measure(fire, server.pid, checkpoints)
        else:
            rows = measure(
                service_driver(engine, case_ids, coordinator, clinician), os.getpid(), checkpoints
            )
            engine.dispose()
    via = "HTTP, uvicorn process" if args.http else "service layer, this process"
    print(f"\nRSS by transitions fired ({via}):")
    print(markdown_table(["transitions", "RSS MiB", "peak MiB", "elapsed s", "per s"], rows))
    rss = [float(row[1]) for row in rows]
    growth = rss[-1] / rss[-2] - 1
    verdict = "within" if growth <= GROWTH_LIMIT else "OVER"
    print(
        f"growth from {checkpoints[-2]:,} to {checkpoints[-1]:,}: {growth:+.1%} "
        f"({verdict} the {GROWTH_LIMIT:.0%} limit)"
    )


if __name__ == "__main__":
    main()
