"""The engine's share: one fire of the shared machine, against the whole HTTP request.

Times ``workflow.machine.fire`` on a ``CaseModel`` whose facts are preloaded
(no database): hold and resume alternately, as the HTTP benchmark fires them,
and, for the heaviest guard set, an ``approve`` that every requirement blocks.
It then compares one fire with the request it sits in, from the figures
``http_bench.py`` saved last (``results/http_bench.json``) or ``--request-ms``.

    uv run python benchmarks/machine_bench.py
"""

from __future__ import annotations

import argparse
import json
import timeit
from datetime import UTC, datetime

from harness import BENCH_DIR, machine_info, markdown_table, print_machine

from models.tables import Case
from workflow.casefacts import CaseFacts
from workflow.definition import TRIGGER_BY_NAME, Actor
from workflow.machine import CaseModel, fire

HTTP_RESULTS = BENCH_DIR / "results" / "http_bench.json"
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
CLINICIAN = Actor(id=2, role="clinician", license_states=("CA",))
HOLD, RESUME, APPROVE = (TRIGGER_BY_NAME[name] for name in ("hold", "resume", "approve"))
FACT_COLLECTIONS = (
    "assessments",
    "vitals",
    "medications",
    "screenings",
    "tapers",
    "sessions",
    "clearances",
    "adverse_events",
)


def case_model(state: str = "evaluation") -> CaseModel:
    """A case wrapped for the machine, every fact preloaded (empty), no session."""
    case = Case(id=1, patient_ref="p-1", patient_state="CA", state=state, phase=state)
    facts = CaseFacts(
        case=case,
        now=NOW,
        actor=CLINICIAN,
        preloaded={"history": None, **{name: [] for name in FACT_COLLECTIONS}},
    )
    return CaseModel(state=state, held_from=None, facts=facts)


def hold_resume_pair(model: CaseModel) -> None:
    """Two fires: hold, then resume back to where it was."""
    model.held_from = model.state
    if not fire(model, HOLD, reason="bench"):
        raise AssertionError("hold refused")
    if not fire(model, RESUME):
        raise AssertionError("resume refused")


def blocked_approve(model: CaseModel) -> None:
    """One fire of approve, refused with every requirement reported."""
    if fire(model, APPROVE) or len(model.unmet) < 10:
        raise AssertionError("approve should be blocked by most requirements")


def best_of(stmt, repeat: int, number: int) -> float:
    """Seconds per call: the best of ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(stmt, repeat=repeat, number=number)) / number


def http_request_figures(request_ms: float | None) -> dict[str, float]:
    """Milliseconds per hold/resume request, from ``--request-ms`` or the last HTTP run."""
    if request_ms is not None:
        return {"--request-ms": request_ms}
    if not HTTP_RESULTS.exists():
        return {}
    runs = json.loads(HTTP_RESULTS.read_text())["endpoints"]
    fires = [name for name in runs if name.startswith("fire hold/resume")]
    figures = {}
    for name in dict.fromkeys(fires[:1] + fires[-1:]):  # as served, and with every patch
        figures[f"{name}: server CPU per request"] = runs[name]["server_cpu_ms_per_request"]
        figures[f"{name}: 1 / throughput"] = 1000 / runs[name]["rps"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="fires per timing run")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--request-ms", type=float, help="the whole request, if not from JSON")
    args = parser.parse_args()
    print_machine()

    model = case_model()
    per_fire = best_of(lambda: hold_resume_pair(model), args.repeat, args.number // 2) / 2
    approve_model = case_model()
    per_approve = best_of(lambda: blocked_approve(approve_model), args.repeat, args.number // 4)
    rows = [
        ["fire hold / resume (one fire)", f"{per_fire * 1e6:.1f}"],
        [f"fire approve, {len(APPROVE.requires)} guards, all blocked", f"{per_approve * 1e6:.1f}"],
    ]
    print(markdown_table(["machine", "µs per fire"], rows))

    figures = http_request_figures(args.request_ms)
    if not figures:
        print("\nno HTTP figures: run http_bench.py first or pass --request-ms")
        return
    share_rows = [
        [label, f"{ms:.2f}", f"{per_fire * 1000 / ms:.2%}"] for label, ms in figures.items()
    ]
    source = "--request-ms" if args.request_ms else str(HTTP_RESULTS.relative_to(BENCH_DIR))
    print(f"\nshare of one hold/resume request (HTTP figures from {source}):")
    print(markdown_table(["whole request", "ms", "machine's share"], share_rows))
    print(f"\n({machine_info()['date']})")


if __name__ == "__main__":
    main()
