"""The typed, bounded view of a case's facts that the guards read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import CompoundSelect, Select, text
from sqlalchemy.engine import Row
from sqlalchemy.sql.util import find_tables

from models.db import session_scope
from models.facts import Assessment, CareSession
from models.tables import Case
from tests.conftest import ON_POSTGRES
from workflow import casefacts
from workflow.casefacts import (
    ALL_LATEST,
    DOSES_SINCE,
    EVENTS,
    OPEN_CLEARANCES,
    OPEN_CLEARANCES_SINCE,
    CaseFacts,
)


def loads_during(monkeypatch, action) -> list[str]:
    """The reads ``action`` made the view run against the database, by key."""
    loaded: list[str] = []
    original = CaseFacts._load

    def spy(self, key, query, session):
        loaded.append(key)
        return original(self, key, query, session)

    monkeypatch.setattr(CaseFacts, "_load", spy)
    action()
    return loaded


def test_a_trigger_without_guards_reads_only_what_its_record_needs(clinic, case_in, monkeypatch):
    """confirm_delivery has no guard: it reads the dispense on its way, to receive it."""
    case_id = case_in("delivery.shipped")
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "confirm_delivery"))
    assert loaded == ["unreceived_dispense"]


def test_a_guarded_trigger_reads_only_what_its_guards_need(clinic, case_in, monkeypatch):
    case_id = case_in("on_hold", held_from="evaluation")
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "resume"))
    assert loaded == [EVENTS]  # the open events and the latest ideation, in one statement


def test_the_ongoing_set_reads_each_fact_once_and_no_collection_of_readings(
    clinic, case_in, monkeypatch
):
    case_id = case_in("on_hold", held_from="integration")
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "resume"))
    assert sorted(loaded) == sorted(
        [
            EVENTS,
            "profile",
            "history",
            "blood_pressure_mean:30.0",
            "medications",
            "latest_screening",
            "tapers",
        ]
    )


def test_a_read_is_made_once_until_forgotten(clinic, monkeypatch):
    case_id = clinic.open_case()
    clinic.vital(case_id)
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)

        def read_twice() -> None:
            assert facts.latest_vital is facts.latest_vital is not None

        assert loads_during(monkeypatch, read_twice) == ["latest_vital"]
        facts.forget()
        assert "latest_vital" not in facts.preloaded


def test_the_facts_read_no_case_row_nor_audit_event():
    """What a transition writes (the case's row, its audit event) is nothing the facts read, so
    the hooks after it see the facts as the guards read them (``CaseWrite.fire``)."""
    statements = [
        value for value in vars(casefacts).values() if isinstance(value, Select | CompoundSelect)
    ]
    read = {table.name for statement in statements for table in find_tables(statement)}
    assert len(statements) > 20 and {"assessments", "care_sessions", "tapers"} <= read
    assert not read & {"cases", "audit_events"}


def test_latest_assessment_is_the_newest_taken_by_now(clinic):
    case_id = clinic.open_case()
    clinic.assess(case_id, "phq9", 12, taken_at=clinic.now - timedelta(days=2))
    newest = clinic.assess(case_id, "phq9", 15, taken_at=clinic.now - timedelta(days=1))
    clinic.assess(case_id, "isi", 20)
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)
        latest = facts.latest_assessment("phq9")
        assert latest is not None and (latest.id, latest.score) == (newest.id, 15)
        assert facts.latest_assessment("gad7") is None


def test_the_newest_score_of_every_instrument_is_one_read(clinic, monkeypatch):
    """The guards ask for two or three instruments' newest scores: one statement reads all,
    each the newest of its own instrument, and none is read again."""
    case_id = clinic.open_case()
    clinic.assess(case_id, "phq9", 12, taken_at=clinic.now - timedelta(days=2))
    phq9 = clinic.assess(case_id, "phq9", 15, taken_at=clinic.now - timedelta(days=1))
    isi = clinic.assess(case_id, "isi", 20)
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)

        def newest() -> list[object]:
            return [facts.latest_assessment(i) for i in ("phq9", "gad7", "isi", "phq9")]

        found: list[object] = []
        assert loads_during(monkeypatch, lambda: found.extend(newest())) == [ALL_LATEST]
        assert [a.id if a is not None else None for a in found] == [phq9.id, None, isi.id, phq9.id]


def test_reads_are_rows_and_what_a_service_writes_back_is_an_orm_object(clinic, case_in):
    """The guards' reads come back as read-only rows: one that a service tried to change
    would fail at once. The history, profile and medication list stay ORM objects in the
    session, for the services that change them."""
    case_id = case_in("evaluation", meds=("Xanax",))
    clinic.assess(case_id, "phq9", 12)
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)
        latest = facts.latest_assessment("phq9")
        assert isinstance(latest, Row) and latest.score == 12
        with pytest.raises(AttributeError):
            latest.score = 13  # type: ignore[misc]
        assert facts.history is not None and facts.history in session
        assert facts.medications and all(m in session for m in facts.medications)


def test_a_view_that_only_reads_answers_every_read_with_rows(clinic, case_in):
    case_id = case_in("evaluation", meds=("Xanax",))
    with session_scope(clinic.engine) as session:
        case = session.get(Case, case_id)
        facts = CaseFacts(case=case, now=clinic.now, session=session, writable=False)
        assert isinstance(facts.history, Row) and isinstance(facts.profile, Row)
        assert facts.medications and all(isinstance(m, Row) for m in facts.medications)
        assert [o for o in session if o is not case] == []


def test_a_read_sees_what_the_session_holds_unwritten_unless_autoflush_is_held(clinic):
    """As an ORM query would: the session's pending rows are flushed before a read."""
    case_id = clinic.open_case()
    clinic.assess(case_id, "phq9", 12, taken_at=clinic.now - timedelta(days=1))
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)
        pending = Assessment(
            case_id=case_id, instrument="phq9", score=20, taken_at=clinic.now, created_at=clinic.now
        )
        session.add(pending)
        with session.no_autoflush:
            assert facts.latest_assessment("phq9").score == 12
        facts.forget()
        assert facts.latest_assessment("phq9").score == 20
        session.rollback()


def test_a_held_case_reads_its_open_events_and_latest_ideation_in_one(clinic, monkeypatch):
    """Oldest first, the resolved left out; the latest ideation by onset, resolved or not.
    Only a held case reads both at once (``resume`` asks for both); another reads the open
    events alone."""
    case_id = clinic.open_case()
    hours = [clinic.now - timedelta(hours=n) for n in (5, 4, 3, 2)]
    older = clinic.adverse_event(case_id, "suicidal_ideation", onset_at=hours[0])
    nausea = clinic.adverse_event(case_id, "nausea", onset_at=hours[1])
    latest = clinic.adverse_event(case_id, "suicidal_ideation", onset_at=hours[3])
    dizziness = clinic.adverse_event(case_id, "dizziness", onset_at=hours[2])
    clinic.resolve(case_id, latest.id)
    assert clinic.case(case_id).state == "on_hold"  # suicidal ideation holds the case
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)

        def read_both() -> None:
            assert [e.id for e in facts.open_adverse_events] == [older.id, nausea.id, dizziness.id]
            assert facts.latest_event("suicidal_ideation").id == latest.id
            assert facts.latest_event("nausea").id == nausea.id  # another kind: its own read

        assert loads_during(monkeypatch, read_both) == [EVENTS, "latest_event:nausea"]
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)
        assert facts.latest_event("suicidal_ideation").id == latest.id  # asked first
        assert [e.id for e in facts.open_adverse_events] == [older.id, nausea.id, dizziness.id]
    other = clinic.open_case()
    clinic.adverse_event(other, "nausea")
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, other), now=clinic.now, session=session)
        assert facts.case.state == "evaluation"
        read = loads_during(monkeypatch, lambda: facts.open_adverse_events)
        assert read == ["open_adverse_events"]


def test_without_a_session_the_view_is_empty(now):
    facts = CaseFacts(
        case=Case(id=1, patient_ref="p", patient_state="CA", state="x", phase="x"), now=now
    )
    assert (facts.history, facts.latest_assessment("phq9"), facts.open_adverse_events) == (
        None,
        None,
        [],
    )
    assert facts.session_stats == {}


def test_preloaded_facts_are_used_as_given(now):
    case = Case(id=1, patient_ref="p", patient_state="CA", state="x", phase="x")
    facts = CaseFacts(case=case, now=now, preloaded={"medications": ["sertraline"]})
    assert facts.medications == ["sertraline"]


def test_checkin_assessments_are_the_phq9_and_isi_after_the_first_dose(clinic):
    case_id = clinic.open_case()
    first_dose = clinic.now - timedelta(days=10)
    clinic.assess(case_id, "isi", 20, taken_at=first_dose - timedelta(days=1))
    after = clinic.assess(case_id, "phq9", 12, taken_at=first_dose + timedelta(days=1))
    clinic.assess(case_id, "gad7", 9, taken_at=first_dose + timedelta(days=2))
    later = clinic.assess(case_id, "isi", 14, taken_at=first_dose + timedelta(days=3))
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)
        found = facts.checkin_assessments(after=first_dose)
        assert [a.id for a in found] == [after.id, later.id]


def test_a_clearance_reads_bounded_facts_only(clinic, case_in, monkeypatch):
    """A clearance reads counts and single rows: never every session or clearance."""
    case_id = case_in("monitoring")
    clinic.tick(hours=73)
    loaded = loads_during(monkeypatch, lambda: clinic.clearance(case_id))
    dose_reads = {key.split(":")[0] for key in loaded} - {
        "history",
        "profile",
        "current_consent",
        "blood_pressure_mean",
        "latest_assessment",
        "latest_vital",
        "latest_clearance",
        "latest_screening",
        "medications",
        "tapers",
        "open_adverse_events",
        "session_stats",
    }
    assert dose_reads == {
        "emergency_contact_recorded",
        "monitor",
        "open_clearances",
        "doses_since",
        "open_clearances_since",
        "units_on_hand",
    }


def test_doses_and_open_clearances_are_counted_in_a_window(clinic, case_in):
    case_id = case_in("monitoring")  # one dose, used by its clearance
    (dose,) = [s for s in clinic.rows(CareSession, case_id) if s.kind == "dosing"]
    clinic.now = dose.dosed_at + timedelta(hours=80)
    opened = clinic.clearance(case_id)
    assert opened.granted, opened.unmet
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)
        week = facts.doses_since(clinic.now - timedelta(hours=168))
        recent = facts.doses_since(clinic.now - timedelta(hours=72))
        still_open = facts.open_clearances_since(clinic.now - timedelta(hours=1))
    assert (week.count, week.latest) == (1, dose.dosed_at)
    assert (recent.count, recent.latest) == (0, None)
    assert (still_open.count, still_open.latest) == (1, opened.created_at)


@pytest.mark.parametrize(
    ("statement", "index"),
    [
        (DOSES_SINCE, "ix_care_sessions_case_kind_dosed"),
        (OPEN_CLEARANCES_SINCE, "ix_dose_clearances_case_open_created"),
        (OPEN_CLEARANCES, "INDEX ix_dose_clearances_case_"),  # either: at most one is open
    ],
)
def test_the_dose_window_reads_use_their_index(engine, now, statement, index):
    bound = statement.params(case_id=1, since=now, now=now)
    compiled = bound.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if ON_POSTGRES:
            conn.execute(text("SET enable_seqscan = off"))
            plan = conn.execute(text(f"EXPLAIN {compiled}")).scalars().all()
            assert not any("Seq Scan" in line for line in plan), plan
        else:
            plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
            assert any(index in line for line in plan), plan


def test_units_and_clearances_are_read_only_for_a_case_that_was_approved(
    clinic, case_in, monkeypatch
):
    """Every dispense follows ``approve``, and a clearance needs units: a case never approved
    has neither, and reads nothing for them."""
    evaluating, dosing = case_in("evaluation"), case_in("integration")
    read: dict[int, tuple[int, int, list[str]]] = {}
    for case_id in (evaluating, dosing):
        with session_scope(clinic.engine) as session:
            facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)
            seen: list[int] = []

            def both(facts: CaseFacts = facts, seen: list[int] = seen) -> None:
                seen.extend((facts.units_on_hand, len(facts.open_clearances)))

            with monkeypatch.context() as patched:
                loaded = loads_during(patched, both)
            read[case_id] = (seen[0], seen[1], loaded)
    assert read[evaluating] == (0, 0, [])
    assert read[dosing] == (clinic.units(dosing), 0, ["units_on_hand", "open_clearances"])
    assert read[dosing][0] > 0
