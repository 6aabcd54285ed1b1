"""Outcomes (SPEC.md section 10): one case's, the cohort report, its chart, and the case as FHIR."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api import charts, fhir
from api.deps import CaseId, CurrentActor, Now, SessionDep
from api.problems import problem_responses
from api.routing import ThreadedRoute
from workflow import cohort, outcomes
from workflow.cases import get_case

router = APIRouter(
    route_class=ThreadedRoute, tags=["outcomes"], responses=problem_responses(401, 422, 503)
)

FHIR_JSON = "application/fhir+json"
CSV_COLUMNS = ["case_id", "first_dose_at"] + [
    f"{instrument}_{field}"
    for instrument in outcomes.INSTRUMENTS
    for field in ("baseline", "score", "taken_at", "week", "change", *outcomes.FLAGS)
]


class Range(BaseModel):
    """Which cases: those whose first dose falls from ``from`` through ``to`` (UTC days)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: date | None = Field(None, alias="from", description="First doses on or after.")
    last: date | None = Field(None, alias="to", description="First doses on or before.")

    def cohort(self) -> cohort.Cohort:
        return cohort.Cohort.of_dates(self.first, self.last)


class ReportQuery(Range):
    week: int = Field(4, ge=0, le=104, description="Weeks after the first dose (0-104).")
    format: Literal["json", "csv"] = Field("json", description="`csv`: one row per case.")


class ChartQuery(Range):
    weeks: int = Field(12, ge=1, le=104, description="Draw weeks 0 to this.")


class OutcomeReport(cohort.CohortReport):
    first: date | None = Field(serialization_alias="from")
    last: date | None = Field(serialization_alias="to")


@router.get("/api/v1/cases/{case_id}/outcomes", responses=problem_responses(404))
def case_outcomes(
    actor: CurrentActor, case_id: CaseId, session: SessionDep, now: Now
) -> outcomes.CaseOutcomes:
    """Baseline, latest, change, response, remission and improvement per instrument."""
    get_case(session, case_id)
    return outcomes.load_case_outcomes(session, case_id, now)


@router.get(
    "/api/v1/cases/{case_id}/fhir",
    responses={200: {"content": {FHIR_JSON: {}}}, **problem_responses(404)},
    response_class=Response,
)
def case_fhir(actor: CurrentActor, case_id: CaseId, session: SessionDep, now: Now) -> Response:
    """The case as a FHIR R4B `collection` Bundle; the patient only as `patient_ref`."""
    bundle = fhir.build_bundle(fhir.load_case_record(session, case_id), now)
    return Response(bundle.model_dump_json(exclude_none=True), media_type=FHIR_JSON)


@router.get(
    "/api/v1/reports/outcomes",
    responses={200: {"content": {"text/csv": {}}}},
    response_model=OutcomeReport,
)
def outcome_report(
    actor: CurrentActor, session: SessionDep, query: Annotated[ReportQuery, Query()]
) -> OutcomeReport | Response:
    """Of the cases first dosed in the range, and measured near the week: rates with intervals."""
    span = query.cohort()
    if query.format == "csv":
        return Response(_csv(cohort.cohort_rows(session, span, query.week)), media_type="text/csv")
    report = cohort.cohort_report(session, span, query.week)
    return OutcomeReport(**report.model_dump(), first=query.first, last=query.last)


def _csv(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: object) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else value


@router.get(
    "/api/v1/reports/outcomes.svg",
    responses={200: {"content": {"image/svg+xml": {}}}},
    response_class=Response,
)
def outcome_chart(
    actor: CurrentActor, session: SessionDep, query: Annotated[ChartQuery, Query()]
) -> Response:
    """PHQ-9 and ISI by week after the first dose: median and interquartile band."""
    weeks = range(query.weeks + 1)
    series = cohort.trajectories(session, query.cohort(), weeks, ("phq9", "isi"))
    span = f"first doses {query.first or 'any time'} to {query.last or 'today'}"
    cases = max((w.n for s in series.values() for w in s), default=0)
    subtitle = f"Median and middle 50 % by week; up to {cases:,} cases a week; {span}"
    title = "Sleep follows mood: PHQ-9 and ISI after the first dose"
    svg = charts.trajectory_svg(series, query.weeks, title, subtitle)
    return Response(svg, media_type="image/svg+xml")
