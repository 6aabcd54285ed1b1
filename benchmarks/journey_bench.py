"""A whole course of care over HTTP, many at once: journeys per second and step latency.

Each of ``--connections`` clients takes one patient after another through the
course of care, every step a real request against ``carepath serve
--no-scheduler``: open the case; the evaluation (history, PHQ-9, GAD-7, ISI, a
blood pressure, a benzodiazepine on the medication list); an ``approve`` that
is refused (no screening yet); the screening, the taper plan, ``approve``; the
taper confirmed and the list screened again; ``prescribe``, ``ship``,
``confirm_delivery``; a preparation session, a dose clearance, the dosing
session and an integration session; ``start_monitoring``; a follow-up PHQ-9
and ISI; an adverse event and its resolution; ``discharge``. That is 28
requests a journey. A journey counts when every step answered as expected.

``--at REV`` serves carepath as of a git revision too, on a copy of the same
database, measured in the same run, alternating round by round, so both see
the same noise on a shared machine.

    uv run python benchmarks/journey_bench.py --seconds 20 --rounds 2 --at 3055159
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import secrets
import statistics
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness import (
    ROOT,
    Server,
    markdown_table,
    on_sigterm_raise_interrupt,
    print_machine,
    sqlite_url,
    temp_dir,
    uv_run,
)
from http_bench import copy_database, source_at
from load import LoadResult, Request, Scenario, run
from seed import Staff, add_user, migrate

from models.db import make_engine

HISTORY = {
    "insomnia_nights_per_week": 5,
    "insomnia_duration_months": 12,
    "diagnoses": ["depression"],
    "failed_antidepressant_trials": 2,
    "cbti_completed": True,
    "seeking_sleep_med_replacement": False,
    "substance_use_disorder_history": False,
    "uncontrolled_hypertension": False,
    "active_psychosis": False,
    "severe_psychiatric_instability": False,
    "significant_breathing_problems": False,
    "sleep_apnea": False,
}
STEPS_PER_JOURNEY = 28


def iso(at: datetime) -> str:
    return at.isoformat()


@dataclass
class Journeys:
    """Journeys completed by every worker, and the steps that answered unexpectedly."""

    done: int = 0
    broken: list[str] = field(default_factory=list)


def journey_scenario(
    coordinator: Staff, clinician: Staff, tally: Journeys, run_id: str
) -> Scenario:
    """One patient after another, through the whole course of care."""
    serial = itertools.count()

    def scenario(index: int) -> Generator[Request, int, None]:
        co, cl = coordinator.headers, clinician.headers
        while True:
            ref = f"J-{run_id}-{index}-{next(serial)}"
            status = yield Request(
                "POST", "/api/v1/cases", {"patient_ref": ref, "patient_state": "CA"}, co
            )
            if status != 201:
                tally.broken.append(f"create {status}")
                continue
            case = f"/api/v1/cases/{status.response.json()['id']}"

            def step(method, path, body, headers, expect=(200, 201), case=case):
                return Request(method, case + path, body, headers), expect

            def journey():
                now = datetime.now(UTC)
                yield step("PUT", "/history", HISTORY, co)
                for instrument, score in (("phq9", 17), ("gad7", 12), ("isi", 21)):
                    body = {"instrument": instrument, "score": score, "taken_at": iso(now)}
                    yield step("POST", "/assessments", body, co)
                vital = {"systolic": 124, "diastolic": 80, "taken_at": iso(now)}
                yield step("POST", "/vitals", vital, co)
                med = yield step("POST", "/medications", {"name": "alprazolam"}, co)
                yield step("POST", "/transitions/approve", None, cl, (409,))
                yield step("POST", "/interaction-screenings", {}, cl)
                plan = {"medication_id": med.response.json()["id"], "plan": "0.25 mg less a week"}
                taper = yield step("POST", "/tapers", plan, cl)
                yield step("POST", "/transitions/approve", None, cl)
                taper_id = taper.response.json()["id"]
                done = {"last_dose_on": now.date().isoformat()}
                yield step("POST", f"/tapers/{taper_id}/confirm", done, cl)
                yield step("POST", "/interaction-screenings", {}, cl)
                prescription = {"dose_mg": 100, "route": "sublingual"}
                yield step("POST", "/transitions/prescribe", prescription, cl)
                yield step("POST", "/transitions/ship", None, co)
                yield step("POST", "/transitions/confirm_delivery", None, co)
                prep = {"kind": "preparation", "completed_at": iso(datetime.now(UTC))}
                yield step("POST", "/sessions", prep, co)
                reading = {"systolic": 122, "diastolic": 78, "monitor_present": True}
                clearance = yield step("POST", "/dose-clearances", reading, co)
                dose = {
                    "kind": "dosing",
                    "completed_at": iso(datetime.now(UTC)),
                    "clearance_id": clearance.response.json()["id"],
                }
                yield step("POST", "/sessions", dose, co)
                after = {"kind": "integration", "completed_at": iso(datetime.now(UTC))}
                yield step("POST", "/sessions", after, co)
                yield step("POST", "/transitions/start_monitoring", None, co)
                for instrument, score in (("phq9", 8), ("isi", 10)):
                    body = {
                        "instrument": instrument,
                        "score": score,
                        "taken_at": iso(datetime.now(UTC)),
                    }
                    yield step("POST", "/assessments", body, co)
                event = {"kind": "nausea", "severity": "mild", "description": "After the dose."}
                ae = yield step("POST", "/adverse-events", event, co)
                resolve = {"note": "Settled by the next day."}
                yield step(
                    "POST", f"/adverse-events/{ae.response.json()['id']}/resolve", resolve, cl
                )
                yield step("POST", "/transitions/discharge", None, cl)

            steps = journey()
            answer = None
            ok = True
            while True:
                try:
                    request, expect = steps.send(answer)
                except StopIteration:
                    break
                answer = yield request
                if answer not in expect:
                    tally.broken.append(
                        f"{request.method} {request.path.split('/', 5)[-1]} {answer}"
                    )
                    ok = False
                    break
            if ok:
                tally.done += 1

    return scenario


@dataclass
class Figures:
    name: str
    rounds: list[tuple[LoadResult, int]] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--at", action="append", default=[], metavar="REV")
    args = parser.parse_args()
    on_sigterm_raise_interrupt()
    print_machine()
    with temp_dir("carepath-journey-") as tmp, contextlib.ExitStack() as stack:
        url = sqlite_url(tmp / "bench.db")
        engine = make_engine(url)
        migrate(engine)
        coordinator = add_user(url, engine, "bench-coordinator", "coordinator")
        clinician = add_user(url, engine, "bench-clinician", "clinician", "CA")
        engine.dispose()
        env = {"CAREPATH_DATABASE_URL": url, "CAREPATH_ADMIN_TOKEN": secrets.token_urlsafe(32)}
        serve = ["serve", "--no-scheduler", "--port", "{port}"]
        targets = [("carepath", uv_run("carepath", *serve), env, ROOT)]
        for n, revision in enumerate(args.at, start=1):
            source = source_at(tmp / f"at{n}", revision)
            copy_database(tmp / "bench.db", tmp / f"at{n}.db", source)
            at_env = {**env, "CAREPATH_DATABASE_URL": sqlite_url(tmp / f"at{n}.db")}
            at_env["PYTHONPATH"] = str(source)
            argv = [sys.executable, "-m", "api.cli", *serve]
            targets.append((f"carepath @{revision}", argv, at_env, source))
        servers = []
        for name, argv, server_env, cwd in targets:
            slug = "".join(c if c.isalnum() else "-" for c in name)
            servers.append(stack.enter_context(Server(slug, argv, tmp, server_env, cwd=cwd)))
        figures = {name: Figures(name) for name, *_ in targets}
        for n in range(args.rounds):
            for (name, *_), server in zip(targets, servers, strict=True):
                tally = Journeys()
                run_id = f"{n}{secrets.token_hex(3)}"
                result = run(
                    server.url,
                    journey_scenario(coordinator, clinician, tally, run_id),
                    name=f"round {n + 1} {name}",
                    connections=args.connections,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    server_pid=server.pid,
                )
                print(result.summary(), f"journeys {tally.done}", flush=True)
                if tally.broken:
                    print(f"  unexpected answers: {sorted(set(tally.broken))[:8]}", flush=True)
                figures[name].rounds.append((result, tally.done))
                time.sleep(1)
    report(figures, args.seconds)


def report(figures: dict[str, Figures], seconds: float) -> None:
    rows = []
    base = None
    for name, figure in figures.items():
        latencies = sorted(lat for r, _ in figure.rounds for lat in r.latencies)
        total_s = sum(r.seconds for r, _ in figure.rounds)
        journeys = sum(done for _, done in figure.rounds)
        merged = LoadResult(name, seconds=total_s, latencies=latencies)
        jps = journeys / total_s if total_s else 0.0
        base = base if base is not None else jps
        per_round = [done / r.seconds for r, done in figure.rounds if r.seconds]
        rows.append(
            [
                name,
                f"{jps:.2f}",
                f"{statistics.mean(per_round):.2f}" if per_round else "-",
                f"{merged.rps:.0f}",
                f"{merged.p(0.5):.1f}",
                f"{merged.p(0.99):.1f}",
                f"{jps / base:.2f}" if base else "-",
            ]
        )
    headers = ["server", "journeys/s", "mean per round", "req/s", "p50 ms", "p99 ms", "x first"]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
