"""Outcome endpoints: one case's outcomes, the cohort report and its CSV, the SVG chart."""

from __future__ import annotations

import csv
import io
import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from models.db import session_scope
from models.facts import Assessment, CareSession
from models.tables import Case
from tests.api.helpers import Api, assert_problem, case_in, case_url, open_case
from workflow.outcomes import wilson

REPORT = "/api/v1/reports/outcomes"
DOSE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_refs = itertools.count(1)


def seed(engine: Engine, first_dose: datetime, **scores: list[tuple[float, int]]) -> int:
    """A case first dosed at ``first_dose`` with scores at (days after it, score)."""
    with session_scope(engine) as session:
        case = Case(
            patient_ref=f"R-{next(_refs)}",
            patient_state="CA",
            state="monitoring",
            phase="monitoring",
        )
        session.add(case)
        session.flush()
        assert case.id is not None
        ended = first_dose + timedelta(hours=2, minutes=30)
        session.add(
            CareSession(case_id=case.id, kind="dosing", dosed_at=first_dose, completed_at=ended)
        )
        for instrument, points in scores.items():
            for days, score in points:
                taken = first_dose + timedelta(days=days)
                session.add(
                    Assessment(case_id=case.id, instrument=instrument, score=score, taken_at=taken)
                )
        return case.id


@pytest.fixture
def cohort(engine) -> list[int]:
    """Five cases first dosed on 2 March 2026, and one a month later."""
    return [
        seed(engine, DOSE, phq9=[(-2, 18), (28, 8)], isi=[(-2, 22), (28, 15)]),  # 18 -> 8
        seed(engine, DOSE, phq9=[(-2, 18), (27, 4)], isi=[(-2, 22), (27, 7)]),  # remits
        seed(engine, DOSE, phq9=[(-2, 18), (29, 14)], isi=[(-2, 22), (29, 18)]),  # 4 points
        seed(engine, DOSE, phq9=[(-2, 18), (28, 27)]),  # worse
        seed(engine, DOSE, phq9=[(-2, 18)]),  # never measured after the dose
        seed(engine, DOSE + timedelta(days=30), phq9=[(-2, 20), (28, 2)]),
    ]


# -- one case ----------------------------------------------------------------------


def test_case_outcomes_from_a_course_of_care(api: Api) -> None:
    case_id = case_in(api, "monitoring")  # baselines PHQ-9 16, GAD-7 12, ISI 20, then a dose
    api.clock.advance(days=14)
    for instrument, score in (("phq9", 8), ("isi", 13)):
        body = {"instrument": instrument, "score": score, "taken_at": api.ago(hours=1)}
        if instrument == "phq9":
            body["item9"] = 0
        api.post("coordinator", case_url(case_id, "/assessments"), body)
    result = api.get("clinician", case_url(case_id, "/outcomes"))
    assert result["phq9"] == {
        "baseline": 16,
        "latest": 8,
        "change": -8,
        "response": True,
        "remission": False,
        "improved": True,
    }
    assert result["isi"]["change"] == -7 and result["isi"]["improved"] is True
    assert result["gad7"]["change"] == 0
    assert result["sleep_follows_mood"] == {"phq9_change": -8, "isi_change": -7}
    assert 2.0 <= result["weeks_since_first_dose"] <= 2.3


def test_a_case_without_assessments_has_nulls(api: Api) -> None:
    result = api.get("coordinator", case_url(open_case(api), "/outcomes"))
    for instrument in ("phq9", "gad7", "isi"):
        assert set(result[instrument].values()) == {None}
    assert result["weeks_since_first_dose"] is None


def test_case_outcomes_refuse_unknown_cases_and_strangers(api: Api) -> None:
    assert_problem(api.call("admin", "GET", case_url(999_999, "/outcomes")), 404, "not_found")
    assert_problem(api.call(None, "GET", case_url(1, "/outcomes")), 401, "unauthenticated")


# -- the report ---------------------------------------------------------------------


def test_the_report_counts_by_hand(api: Api, cohort) -> None:
    body = api.get(
        "coordinator", REPORT, params={"week": 4, "from": "2026-03-01", "to": "2026-03-31"}
    )
    assert (body["count"], body["unmeasured"], body["week"]) == (5, 1, 4)
    assert (body["from"], body["to"]) == ("2026-03-01", "2026-03-31")
    phq9 = body["phq9"]
    assert (phq9["measured"], phq9["unmeasured"]) == (4, 1)
    # improved (>= 5 down): 18->8, 18->4; response (<= 9): the same two; remission (< 5): one.
    assert phq9["improved"]["numerator"] == 2 and phq9["improved"]["denominator"] == 4
    assert phq9["response"]["numerator"] == 2 and phq9["response"]["rate"] == 0.5
    low, high = wilson(2, 4) or (None, None)
    assert (phq9["response"]["ci_low"], phq9["response"]["ci_high"]) == (low, high)
    assert phq9["remission"] == {
        "numerator": 1,
        "denominator": 4,
        "rate": 0.25,
        "ci_low": pytest.approx(0.0456, abs=1e-4),
        "ci_high": pytest.approx(0.6994, abs=1e-4),
    }
    isi = body["isi"]
    # ISI 22 -> 15 (7 down, improved), 22 -> 7 (improved, responds, remits), 22 -> 18 (no).
    assert (isi["measured"], isi["improved"]["numerator"], isi["improved"]["denominator"]) == (
        3,
        2,
        3,
    )
    assert (isi["response"]["numerator"], isi["remission"]["numerator"]) == (1, 1)
    assert body["gad7"]["improved"] == {
        "numerator": 0,
        "denominator": 0,
        "rate": None,
        "ci_low": None,
        "ci_high": None,
    }


def test_the_whole_history_by_default(api: Api, cohort) -> None:
    assert api.get("clinician", REPORT)["count"] == 6


def test_the_report_as_csv(api: Api, cohort) -> None:
    response = api.call("coordinator", "GET", REPORT, params={"format": "csv"}, expect=200)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["case_id"]) for r in rows] == cohort
    first = rows[0]
    assert (first["phq9_baseline"], first["phq9_score"], first["phq9_change"]) == ("18", "8", "-10")
    assert (first["phq9_response"], first["phq9_remission"], first["isi_change"]) == (
        "True",
        "False",
        "-7",
    )
    assert first["phq9_week"] == "4.0"
    assert datetime.fromisoformat(first["first_dose_at"]) == DOSE
    assert rows[4]["phq9_score"] == "" and rows[4]["phq9_baseline"] == "18"
    assert "patient_ref" not in first


@pytest.mark.parametrize(
    "params",
    [
        {"week": 105},
        {"week": -1},
        {"week": "four"},
        {"from": "2026-04-01", "to": "2026-03-01"},
        {"from": "2026-02-30"},
        {"format": "xml"},
        {"colour": "blue"},
    ],
)
def test_bad_report_queries_are_422(api: Api, params) -> None:
    assert_problem(api.call("coordinator", "GET", REPORT, params=params), 422, "validation_error")


def test_from_after_to_names_the_field(api: Api) -> None:
    params = {"from": "2026-04-01", "to": "2026-03-01"}
    body = assert_problem(
        api.call("clinician", "GET", REPORT, params=params), 422, "validation_error"
    )
    assert body["errors"][0]["loc"] == ["query", "from"]


def test_every_staff_role_may_read_reports(api: Api) -> None:
    for role in ("admin", "coordinator", "clinician"):
        assert api.get(role, REPORT)["count"] == 0
    assert_problem(api.call(None, "GET", REPORT), 401, "unauthenticated")


# -- the chart ------------------------------------------------------------------------


def test_the_chart_is_svg_with_both_trajectories(api: Api, cohort) -> None:
    response = api.call("coordinator", "GET", f"{REPORT}.svg", params={"weeks": 6}, expect=200)
    assert response.headers["content-type"].startswith("image/svg+xml")
    svg = ET.fromstring(response.text)
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{ns}svg"
    texts = [t.text for t in svg.iter(f"{ns}text")]
    assert "PHQ-9 median" in texts and "ISI median" in texts
    assert "Weeks after the first dose" in texts
    assert len(list(svg.iter(f"{ns}polyline"))) == 2
    assert len(list(svg.iter(f"{ns}polygon"))) == 2


def test_an_empty_chart_says_so(api: Api) -> None:
    response = api.call("clinician", "GET", f"{REPORT}.svg", expect=200)
    assert "No measurements after a first dose" in response.text
    ET.fromstring(response.text)


def test_bad_chart_queries_are_422(api: Api) -> None:
    for params in ({"weeks": 0}, {"weeks": 105}, {"from": "2026-04-01", "to": "2026-03-01"}):
        response = api.call("clinician", "GET", f"{REPORT}.svg", params=params)
        assert_problem(response, 422, "validation_error")
