"""Outcomes: every definition at its thresholds, one case, and a cohort counted by hand."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from models.db import session_scope
from models.facts import Assessment, CareSession
from models.tables import Case
from workflow import cohort, outcomes
from workflow.errors import ValidationFailed

PHQ9, GAD7, ISI = (outcomes.definitions()[i] for i in ("phq9", "gad7", "isi"))
DOSE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_refs = itertools.count(1)


def dosing_row(case_id: int, dosed_at: datetime) -> CareSession:
    ended = dosed_at + timedelta(hours=2, minutes=30)
    return CareSession(case_id=case_id, kind="dosing", dosed_at=dosed_at, completed_at=ended)


def seed(engine: Engine, first_dose: datetime | None, **scores: list[tuple[float, int]]) -> int:
    """A case with a dosing session at ``first_dose`` and scores at (days after it, score)."""
    anchor = first_dose or DOSE
    with session_scope(engine) as session:
        case = Case(patient_ref=f"P-{next(_refs)}", patient_state="CA", state="integration")
        case.phase = "integration"
        session.add(case)
        session.flush()
        assert case.id is not None
        if first_dose is not None:
            # The dose is when it was taken; the session ends after the observation.
            session.add(dosing_row(case.id, first_dose))
            # A later dose does not move the first one.
            session.add(dosing_row(case.id, first_dose + timedelta(days=3)))
        for instrument, points in scores.items():
            for days, score in points:
                taken = anchor + timedelta(days=days)
                session.add(
                    Assessment(case_id=case.id, instrument=instrument, score=score, taken_at=taken)
                )
        return case.id


# -- the definitions at their thresholds -------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [(20, 10, True), (20, 11, False), (21, 10, True), (21, 11, False), (1, 0, True), (0, 0, None)],
)
def test_response_is_a_drop_of_at_least_half(baseline, latest, expected) -> None:
    assert outcomes.responded(PHQ9, baseline, latest) is expected


@pytest.mark.parametrize(
    ("definition", "at_threshold", "below"), [(PHQ9, 5, 4), (GAD7, 5, 4), (ISI, 8, 7)]
)
def test_remission_is_below_the_threshold(definition, at_threshold, below) -> None:
    assert outcomes.remitted(definition, at_threshold) is False
    assert outcomes.remitted(definition, below) is True
    assert outcomes.remitted(definition, None) is None


@pytest.mark.parametrize(("definition", "points"), [(PHQ9, 5), (GAD7, 4), (ISI, 6)])
def test_improved_is_a_drop_of_at_least_the_points(definition, points) -> None:
    assert outcomes.improved(definition, 20, 20 - points) is True
    assert outcomes.improved(definition, 20, 21 - points) is False
    assert outcomes.improved(definition, None, 3) is None


def test_change_is_latest_minus_baseline_and_null_without_either() -> None:
    assert outcomes.change(18, 27) == 9
    assert outcomes.change(18, 6) == -12
    assert outcomes.change(None, 6) is None
    assert outcomes.change(18, None) is None


def test_a_worse_score_is_no_response_no_improvement() -> None:
    judged = outcomes.outcome(PHQ9, 18, 27)
    assert (judged.change, judged.response, judged.improved, judged.remission) == (
        9,
        False,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (1, 3, 0.0615, 0.7923)],
)
def test_wilson_interval_matches_known_values(k, n, low, high) -> None:
    interval = outcomes.wilson(k, n)
    assert interval is not None
    assert interval == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_a_rate_without_a_denominator_is_null() -> None:
    rate = outcomes.Rate.of(0, 0)
    assert (rate.rate, rate.ci_low, rate.ci_high) == (None, None, None)
    assert outcomes.Rate.of(3, 4).rate == 0.75


def test_every_definition_has_a_source() -> None:
    assert set(outcomes.definitions()) == set(outcomes.INSTRUMENTS)
    assert all(d.source.strip() for d in outcomes.definitions().values())


# -- one case -----------------------------------------------------------------------


def test_baseline_is_the_latest_score_before_the_first_dose(engine) -> None:
    case_id = seed(engine, DOSE, phq9=[(-20, 22), (-2, 18), (14, 12), (28, 8)], isi=[(-1, 21)])
    with session_scope(engine) as session:
        result = outcomes.load_case_outcomes(session, case_id, DOSE + timedelta(days=35))
    assert (result.phq9.baseline, result.phq9.latest, result.phq9.change) == (18, 8, -10)
    assert (result.phq9.response, result.phq9.improved, result.phq9.remission) == (
        True,
        True,
        False,
    )
    assert result.weeks_since_first_dose == 5.0
    assert result.first_dose_at == DOSE
    assert result.sleep_follows_mood.phq9_change == -10
    assert result.sleep_follows_mood.isi_change == 0
    assert [m.week for m in result.measurements if m.instrument == "phq9"] == [-2.9, -0.3, 2, 4]


def test_a_score_during_the_first_dose_s_observation_is_after_the_dose(engine) -> None:
    """SPEC section 0: the baseline is before the first ``dosed_at``, not its completion."""
    case_id = seed(engine, DOSE, phq9=[(-2, 18), (1 / 24, 25)])
    with session_scope(engine) as session:
        result = outcomes.load_case_outcomes(session, case_id, DOSE + timedelta(days=1))
    assert (result.phq9.baseline, result.phq9.latest, result.first_dose_at) == (18, 25, DOSE)


def test_before_any_dose_the_baseline_is_the_latest_so_far(engine) -> None:
    case_id = seed(engine, None, gad7=[(-10, 15), (-3, 11)])
    with session_scope(engine) as session:
        result = outcomes.load_case_outcomes(session, case_id, DOSE)
    assert (result.gad7.baseline, result.gad7.latest, result.gad7.change) == (11, 11, 0)
    assert result.weeks_since_first_dose is None
    assert result.measurements[0].week is None


def test_a_case_with_no_assessments_has_nulls(engine) -> None:
    case_id = seed(engine, DOSE)
    with session_scope(engine) as session:
        result = outcomes.load_case_outcomes(session, case_id, DOSE + timedelta(days=7))
    for instrument in (result.phq9, result.gad7, result.isi):
        assert set(instrument.model_dump().values()) == {None}
    assert result.weeks_since_first_dose == 1.0
    assert result.measurements == []


def test_a_score_only_after_the_first_dose_has_no_baseline(engine) -> None:
    case_id = seed(engine, DOSE, isi=[(7, 6)])
    with session_scope(engine) as session:
        result = outcomes.load_case_outcomes(session, case_id, DOSE + timedelta(days=7))
    assert (result.isi.baseline, result.isi.change, result.isi.improved) == (None, None, None)
    assert result.isi.remission is True


# -- the cohort ------------------------------------------------------------------------


def report(engine: Engine, week: int = 4, **dates: date) -> cohort.CohortReport:
    with session_scope(engine) as session:
        span = cohort.Cohort.of_dates(dates.get("first"), dates.get("last"))
        return cohort.cohort_report(session, span, week)


def test_cohort_rates_counted_by_hand(engine) -> None:
    # PHQ-9 at week 4 (day 28), baseline before the dose:
    seed(engine, DOSE, phq9=[(-1, 20), (28, 10)], isi=[(-1, 20), (27, 13)])  # responds, improves
    seed(engine, DOSE, phq9=[(-1, 20), (30, 4)], isi=[(-1, 20), (29, 7)])  # remits too
    seed(engine, DOSE, phq9=[(-1, 20), (21, 17)], isi=[(-1, 20), (35, 19)])  # 17: 3 points
    seed(engine, DOSE, phq9=[(-1, 18), (35, 27)])  # worse, on the window's last day
    seed(engine, DOSE, phq9=[(-1, 12), (36, 2)], gad7=[(-1, 9)])  # only outside the window
    seed(engine, DOSE)  # no measurement at all
    result = report(engine)
    assert (result.count, result.unmeasured) == (6, 2)
    phq9 = result.phq9
    assert (phq9.measured, phq9.unmeasured) == (4, 2)
    assert (phq9.improved.numerator, phq9.improved.denominator) == (2, 4)
    assert (phq9.response.numerator, phq9.response.denominator) == (2, 4)
    assert (phq9.remission.numerator, phq9.remission.denominator) == (1, 4)
    assert phq9.response.rate == 0.5
    assert (phq9.response.ci_low, phq9.response.ci_high) == outcomes.wilson(2, 4)
    isi = result.isi
    assert (isi.measured, isi.unmeasured) == (3, 3)
    assert (isi.improved.numerator, isi.improved.denominator) == (2, 3)
    assert (isi.response.numerator, isi.remission.numerator) == (1, 1)
    gad7 = result.gad7
    assert (gad7.measured, gad7.improved.denominator, gad7.improved.rate) == (0, 0, None)


def test_the_nearest_measurement_counts_and_the_earlier_on_a_tie(engine) -> None:
    seed(engine, DOSE, phq9=[(-1, 20), (26, 10), (30, 20)])  # 26 is 2 days off, 30 is 2 too
    seed(engine, DOSE, phq9=[(-1, 20), (25, 20), (28.5, 10)])  # 28.5 is nearer
    result = report(engine)
    assert (result.phq9.response.numerator, result.phq9.response.denominator) == (2, 2)


def test_the_window_is_seven_days_either_side(engine) -> None:
    seed(engine, DOSE, phq9=[(-1, 20), (21, 10)])
    seed(engine, DOSE, phq9=[(-1, 20), (21 - 1 / 86400, 10)])  # a second too early
    seed(engine, DOSE, phq9=[(-1, 20), (35 + 1 / 86400, 10)])  # a second too late
    assert report(engine).phq9.measured == 1


def test_week_zero_is_around_the_first_dose(engine) -> None:
    seed(engine, DOSE, phq9=[(-3, 20), (1, 9), (6, 20)])
    result = report(engine, week=0)
    assert result.phq9.measured == 1
    assert result.phq9.response.numerator == 1


def test_the_range_selects_cases_by_their_first_dose(engine) -> None:
    seed(engine, DOSE, phq9=[(-1, 20), (28, 10)])
    seed(engine, DOSE + timedelta(days=10), phq9=[(-1, 20), (28, 19)])
    seed(engine, DOSE - timedelta(days=10), phq9=[(-1, 20), (28, 19)])
    assert report(engine, first=DOSE.date(), last=DOSE.date()).count == 1
    assert report(engine, first=DOSE.date()).count == 2
    assert report(engine, last=DOSE.date()).count == 2
    assert report(engine).count == 3
    assert report(engine, first=date.min, last=date.max).count == 3


def test_from_after_to_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        cohort.Cohort.of_dates(date(2026, 3, 2), date(2026, 3, 1))
    assert refused.value.errors[0]["loc"] == ["query", "from"]


def test_cohort_rows_have_every_definition_per_case(engine) -> None:
    first = seed(engine, DOSE, phq9=[(-1, 20), (28, 10)], isi=[(-1, 20), (28, 12)])
    seed(engine, DOSE)
    with session_scope(engine) as session:
        rows = list(cohort.cohort_rows(session, cohort.Cohort(), 4))
    assert [r["case_id"] for r in rows] == [first, first + 1]
    assert rows[0]["first_dose_at"] == DOSE
    assert (rows[0]["phq9_change"], rows[0]["phq9_response"], rows[0]["isi_change"]) == (
        -10,
        True,
        -8,
    )
    assert rows[0]["phq9_week"] == 4.0
    assert (rows[1]["phq9_score"], rows[1]["phq9_improved"]) == (None, None)


def test_trajectories_give_median_and_quartiles(engine) -> None:
    for score in (10, 12, 14, 20):
        seed(engine, DOSE, phq9=[(-1, 20), (7, score)])
    with session_scope(engine) as session:
        found = cohort.trajectories(session, cohort.Cohort(), range(0, 3), ("phq9", "isi"))
    weeks = {s.week: s for s in found["phq9"]}
    assert weeks[1].n == 4
    assert (weeks[1].q1, weeks[1].median, weeks[1].q3) == (11.5, 13.0, 15.5)
    assert weeks[0].n == 4 and weeks[0].median == 20.0  # the pre-dose score, a day before
    assert found["isi"] == []


def test_quantile_interpolates_between_ranks() -> None:
    assert cohort.quantile([(3, 1)], 0.5) == 3.0
    assert cohort.quantile([(1, 1), (2, 1), (3, 1), (4, 1)], 0.25) == 1.75
    assert cohort.quantile([(5, 3), (9, 1)], 0.5) == 5.0
