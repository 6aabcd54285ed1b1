"""A whole course of care over HTTP, many at once: journeys per second and step latency.

Each of ``--connections`` clients takes one patient after another through the
course of care, every step a real request against ``carepath serve
--no-scheduler``: open the case; the evaluation (history, profile, consent,
PHQ-9, GAD-7, ISI, a blood pressure, a benzodiazepine stopped ten days ago on
the medication list); an ``approve`` that is refused (no screening yet); the
screening, the taper plan, ``approve``; the taper confirmed and the list
screened again; ``prescribe``, ``ship``, ``confirm_delivery``; an emergency
contact and a treatment monitor; a preparation session, a dose clearance, the
dose record (with observation and the post-dose window set to 0, so that a
dose needs no real two hours) and an integration session; ``start_monitoring``;
a follow-up PHQ-9 and ISI; an adverse event and its resolution; ``discharge``.
A journey counts when every step answered as expected and it ended after
the warm-up. The clients start out of step, spread over most of the warm-up:
started together, they would end their journeys together, and the count
would move in steps of ``--connections``.

A revision from before contract version 2 (no profile route: the code as the
write-path issue found it, a0e8263) takes its patients through that
contract's course instead, the 26 requests the issue measured: the history in
its own fields; no profile, consent, emergency contact or treatment monitor;
the benzodiazepine on the list still active, stopped by the taper's
confirmation; a clearance with ``monitor_present``; ``prescribe`` with a dose
and a route, ``ship`` with no body. That is less work a journey than today's
31 requests, so a ratio against it understates today's code.

``--at REV`` serves carepath as of a git revision too, on a copy of the same
database, measured in the same run, alternating round by round, so both see
the same noise on a shared machine. ``--processes N`` serves each version as
N processes on its one database, process k on CPU k, as README's scale-out
runs them; the connections are dealt among them in turn. ``--as-shipped``
serves an ``--at`` revision without the server's C parts (httptools, uvloop)
when its own ``pyproject.toml`` does not ask for them, as it ran on its day;
without it, every revision runs in this checkout's environment, and the
ratio compares the code alone. ``--profile DIR`` samples the first process
of each version with py-spy while it is under load (only the thread holding
the GIL: the process's Python CPU), and prints where its samples are.

    uv run python benchmarks/journey_bench.py --seconds 20 --rounds 2 --at 3055159
    uv run --with py-spy python benchmarks/journey_bench.py --rounds 1 --profile /tmp/journey
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import profiling
from harness import (
    ROOT,
    Server,
    markdown_table,
    on_sigterm_raise_interrupt,
    pinned,
    print_machine,
    sqlite_url,
    temp_dir,
    uv_run,
)
from http_bench import source_at
from load import LoadResult, Request, Scenario, run

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
    "psychosis_or_mania_history": False,
    "severe_psychiatric_instability": False,
    "significant_breathing_problems": False,
    "sleep_apnea": False,
    "aneurysm_avm_or_ich": False,
    "recent_mi_or_stroke": False,
}
MOOD_DRIVEN = {"insomnia_mood_driven": True}
PROFILE = {"date_of_birth": "1984-06-15", "pregnant": False, "breastfeeding": False}
STEPS_PER_JOURNEY = 30
PRESCRIPTION = {
    "dose_mg": 100,
    "route": "sublingual",
    "formulation": "ketamine 100 mg troche",
    "units_per_dose": 1,
}
SHIPMENT = {"quantity_units": 1, "lot": "BENCH-LOT-1"}
"""One dose's units: the dose takes them all, so ``discharge`` finds nothing at home."""
CONTACT = {"name": "Sam Rivera", "relationship": "spouse", "phone": "555-0100"}
DEMO = {
    "CAREPATH_OBSERVATION_MINUTES": "0",
    "CAREPATH_POST_DOSE_BP_MIN_MINUTES": "0",
    "CAREPATH_POST_DOSE_BP_MAX_MINUTES": "0",
}
"""The dosing settings a journey in real time needs: no 2-hour wait for each dose."""


def monitor_body(now: datetime) -> dict[str, object]:
    return {**CONTACT, "adult_attested": True, "trained_on": now.date().isoformat()}


def iso(at: datetime) -> str:
    return at.isoformat()


@dataclass
class Journeys:
    """Journeys completed by every worker, and the steps that answered unexpectedly.

    Only a journey completed at ``counting_from`` (``time.perf_counter()``) or
    later counts: not one completed during the warm-up.
    """

    done: int = 0
    counting_from: float = 0.0
    broken: list[str] = field(default_factory=list)


def journey_scenario(
    coordinator: Token,
    clinician: Token,
    tally: Journeys,
    run_id: str,
    *,
    dispenses: bool = True,
    contract: int = 2,
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
                yield step("PUT", "/history", HISTORY | MOOD_DRIVEN, cl)
                yield step("PUT", "/profile", PROFILE, co)
                consent = {"version": "2026-1", "signed_at": iso(now), "method": "electronic"}
                yield step("POST", "/consents", consent, co)
                yield from scores(step, co, BASELINE)
                vital = {"systolic": 124, "diastolic": 80, "taken_at": iso(now)}
                yield step("POST", "/vitals", vital, co)
                # Stopped ten days ago, past its 7-day washout: a taper confirmed today
                # with that last dose lets the journey prescribe at once.
                stopped = (now - timedelta(days=10)).date().isoformat()
                benzo = {"name": "alprazolam", "status": "stopped", "stopped_on": stopped}
                med = yield step("POST", "/medications", benzo, co)
                yield step("POST", "/transitions/approve", None, cl, (409,))
                yield step("POST", "/interaction-screenings", {}, cl)
                plan = {"medication_id": med.response.json()["id"], "plan": "0.25 mg less a week"}
                taper = yield step("POST", "/tapers", plan, cl)
                yield step("POST", "/transitions/approve", None, cl)
                taper_id = taper.response.json()["id"]
                done = {"last_dose_on": stopped}
                yield step("POST", f"/tapers/{taper_id}/confirm", done, cl)
                yield step("POST", "/interaction-screenings", {}, cl)
                yield step("POST", "/transitions/prescribe", PRESCRIPTION, cl)
                yield step("POST", "/transitions/ship", SHIPMENT if dispenses else None, co)
                yield step("POST", "/transitions/confirm_delivery", None, co)
                yield step("POST", "/emergency-contacts", CONTACT, co)
                monitor = yield step("POST", "/monitors", monitor_body(now), co)
                monitor_id = monitor.response.json()["id"]
                prep = {"kind": "preparation", "completed_at": iso(datetime.now(UTC))}
                yield step("POST", "/sessions", prep, co)
                reading = {"systolic": 122, "diastolic": 78, "monitor_id": monitor_id}
                clearance = yield step("POST", "/dose-clearances", reading, co)
                # Observation and the post-dose window are 0 here (DEMO): a dose in real time.
                dosed_at = iso(datetime.now(UTC))
                dose = {
                    "kind": "dosing",
                    "clearance_id": clearance.response.json()["id"],
                    "monitor_id": monitor_id,
                    "dosed_at": dosed_at,
                    "dose_mg": 100,
                    "units_taken": 1,
                    "post_systolic": 124,
                    "post_diastolic": 80,
                    "post_taken_at": dosed_at,
                    "completed_at": dosed_at,
                }
                yield step("POST", "/sessions", dose, co)
                after = {"kind": "integration", "completed_at": iso(datetime.now(UTC))}
                yield step("POST", "/sessions", after, co)
                yield from monitoring_to_discharge(step, co, cl)

            steps = journey() if contract >= 2 else contract_1(step, co, cl)
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
            if ok and time.perf_counter() >= tally.counting_from:
                tally.done += 1

    return scenario


HISTORY_1 = {
    key: value
    for key, value in HISTORY.items()
    if key not in {"psychosis_or_mania_history", "aneurysm_avm_or_ich", "recent_mi_or_stroke"}
}
"""The history as contract version 1 took it (it refuses a field it does not know)."""


def contract_1(step, co, cl):
    """Contract version 1's course of care: the 25 steps after ``create`` (see the docstring)."""
    now = datetime.now(UTC)
    yield step("PUT", "/history", HISTORY_1, cl)
    yield from scores(step, co, BASELINE)
    yield step("POST", "/vitals", {"systolic": 124, "diastolic": 80, "taken_at": iso(now)}, co)
    med = yield step("POST", "/medications", {"name": "alprazolam"}, co)
    yield step("POST", "/transitions/approve", None, cl, (409,))
    yield step("POST", "/interaction-screenings", {}, cl)
    plan = {"medication_id": med.response.json()["id"], "plan": "0.25 mg less a week"}
    taper = yield step("POST", "/tapers", plan, cl)
    yield step("POST", "/transitions/approve", None, cl)
    stopped = (now - timedelta(days=10)).date().isoformat()
    taper_id = taper.response.json()["id"]
    yield step("POST", f"/tapers/{taper_id}/confirm", {"last_dose_on": stopped}, cl)
    yield step("POST", "/interaction-screenings", {}, cl)
    yield step("POST", "/transitions/prescribe", {"dose_mg": 100, "route": "sublingual"}, cl)
    yield step("POST", "/transitions/ship", None, co)
    yield step("POST", "/transitions/confirm_delivery", None, co)
    prep = {"kind": "preparation", "completed_at": iso(datetime.now(UTC))}
    yield step("POST", "/sessions", prep, co)
    reading = {"systolic": 122, "diastolic": 78, "monitor_present": True}
    clearance = yield step("POST", "/dose-clearances", reading, co)
    dose = {
        "kind": "dosing",
        "clearance_id": clearance.response.json()["id"],
        "completed_at": iso(datetime.now(UTC)),
    }
    yield step("POST", "/sessions", dose, co)
    after = {"kind": "integration", "completed_at": iso(datetime.now(UTC))}
    yield step("POST", "/sessions", after, co)
    yield from monitoring_to_discharge(step, co, cl)


BASELINE = (("phq9", 17), ("gad7", 12), ("isi", 21))
FOLLOW_UP = (("phq9", 8), ("isi", 10))


def scores(step, co, scored):
    """One assessment per (instrument, score), taken now; a PHQ-9 with its item 9
    (required on a PHQ-9 by SPEC.md 4.2, accepted by contract version 1)."""
    for instrument, score in scored:
        body = {"instrument": instrument, "score": score, "taken_at": iso(datetime.now(UTC))}
        if instrument == "phq9":
            body["item9"] = 0
        yield step("POST", "/assessments", body, co)


def monitoring_to_discharge(step, co, cl):
    """The steps both contracts share from ``start_monitoring`` on: the follow-up scores,
    an adverse event and its resolution, ``discharge``."""
    yield step("POST", "/transitions/start_monitoring", None, co)
    yield from scores(step, co, FOLLOW_UP)
    event = {"kind": "nausea", "severity": "mild", "description": "After the dose."}
    ae = yield step("POST", "/adverse-events", event, co)
    resolve = {"note": "Settled by the next day."}
    yield step("POST", f"/adverse-events/{ae.response.json()['id']}/resolve", resolve, cl)
    yield step("POST", "/transitions/discharge", None, cl)


@dataclass(frozen=True)
class Token:
    """A user made for the benchmark, by token."""

    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def cli_user(cli: list[str], env: dict[str, str], cwd: Path, name: str, role: str, *states: str):
    """A user made with that version's own ``carepath users add`` (it migrates first)."""
    run_in([*cli, "db", "upgrade"], env, cwd)
    argv = [*cli, "users", "add", name, "--role", role]
    for state in states:
        argv += ["--license-state", state]
    return Token(run_in(argv, env, cwd).strip().splitlines()[-1])


def run_in(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Figures:
    name: str
    rounds: list[tuple[LoadResult, int]] = field(default_factory=list)


C_PARTS = ("httptools", "uvloop")
"""What uvicorn uses when it finds them (``uvicorn[standard]``), and carepath asks for since
46ed5f9: a revision from before ran on uvicorn's pure-Python parts."""


def not_asked_for(revision: str, modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` that the revision's own ``pyproject.toml`` does not name."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:pyproject.toml"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [module for module in modules if module not in shown.stdout]


def hide_modules(target: Path, modules: list[str]) -> Path:
    """A directory that, first on ``PYTHONPATH``, makes each of ``modules`` fail to import,
    as if not installed: uvicorn then falls back to its pure-Python parts."""
    for module in modules:
        package = target / module
        package.mkdir(parents=True)
        message = f"{module}: not a dependency of the revision served"
        (package / "__init__.py").write_text(f"raise ImportError({message!r})\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--at", action="append", default=[], metavar="REV")
    parser.add_argument(
        "--pin", type=int, metavar="CPU", help="run every server on this one CPU (taskset)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="serve each version as N processes on one database, process k on CPU k "
        "(as README's scale-out runs them), the connections dealt among them",
    )
    parser.add_argument(
        "--as-shipped",
        action="store_true",
        help="serve each --at revision without the server's C parts (httptools, uvloop) when "
        "its own pyproject.toml does not ask for them: as it ran, not only its code",
    )
    profiling.add_options(parser, "each version's first process (the GIL holder)", top=30)
    args = parser.parse_args()
    profiling.check_options(parser, args)
    on_sigterm_raise_interrupt()
    print_machine()
    with temp_dir("carepath-journey-") as tmp, contextlib.ExitStack() as stack:
        admin = {"CAREPATH_ADMIN_TOKEN": secrets.token_urlsafe(32)}
        serve = ["serve", "--no-scheduler", "--port", "{port}"]
        targets = []
        for n, revision in enumerate([None, *args.at]):
            # Each version of the code makes its own database and staff with its own
            # migrations and CLI: the schema may differ between them.
            env = {**admin, **DEMO, "CAREPATH_DATABASE_URL": sqlite_url(tmp / f"bench{n}.db")}
            if revision is None:
                name, cli, cwd = "carepath", uv_run("carepath"), ROOT
                dispenses, contract = True, 2
            else:
                source = source_at(tmp / f"at{n}", revision)
                name, cli, cwd = f"carepath @{revision}", [sys.executable, "-m", "api.cli"], source
                env["PYTHONPATH"] = str(source)
                if args.as_shipped:
                    hidden = not_asked_for(revision, C_PARTS)
                    if hidden:
                        shim = hide_modules(tmp / f"hidden{n}", hidden)
                        env["PYTHONPATH"] = f"{shim}{os.pathsep}{source}"
                        name += f" without {', '.join(hidden)}"
                # Before the controlled-substance record (issue 13) `ship` took no units.
                dispenses = "quantity_units" in (source / "models" / "schemas.py").read_text()
                routes = (source / "api" / "routers").glob("*.py")
                contract = 2 if any('"/profile"' in r.read_text() for r in routes) else 1
            staff = (
                cli_user(cli, env, cwd, "bench-coordinator", "coordinator"),
                cli_user(cli, env, cwd, "bench-clinician", "clinician", "CA"),
            )
            targets.append((name, [*cli, *serve], env, cwd, staff, dispenses, contract))
        servers: list[list[Server]] = []
        for name, argv, server_env, cwd, *_ in targets:
            slug = "".join(c if c.isalnum() else "-" for c in name)
            group = []
            for k in range(args.processes):
                cpu = args.pin if args.processes == 1 else k % (os.cpu_count() or 1)
                process = Server(f"{slug}-{k}", pinned(argv, cpu), tmp, server_env, cwd=cwd)
                group.append(stack.enter_context(process))
            servers.append(group)
        figures = {name: Figures(name) for name, *_ in targets}
        for n in range(args.rounds):
            for target, server in zip(targets, servers, strict=True):
                name, *_, staff, dispenses, contract = target
                # load.run counts from its start plus the warm-up; so do the journeys.
                tally = Journeys(counting_from=time.perf_counter() + args.warmup)
                run_id = f"{n}{secrets.token_hex(3)}"
                sampling = profiling.maybe_sampled(
                    args.profile, server[0].pid, f"{n + 1}-{name}", gil=True
                )
                with sampling as samples:
                    result = run(
                        [process.url for process in server],
                        journey_scenario(
                            *staff, tally, run_id, dispenses=dispenses, contract=contract
                        ),
                        name=f"round {n + 1} {name}",
                        connections=args.connections,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        server_pid=[process.pid for process in server],
                        # Out of step, so that journeys do not all end together.
                        stagger=0.8 * args.warmup,
                    )
                print(result.summary(), f"journeys {tally.done}", flush=True)
                if samples is not None:
                    profiling.print_summary(samples, top=args.profile_top)
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
