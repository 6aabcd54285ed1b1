"""The typed, bounded view of a case's facts that the guards read."""

from __future__ import annotations

from datetime import timedelta

from models.db import session_scope
from models.tables import Case
from workflow.casefacts import CaseFacts


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


def test_a_trigger_without_guards_reads_no_facts(clinic, case_in, monkeypatch):
    case_id = case_in("delivery.shipped")
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "confirm_delivery"))
    assert loaded == []


def test_a_guarded_trigger_reads_only_what_its_guards_need(clinic, case_in, monkeypatch):
    case_id = case_in("on_hold", held_from="evaluation")
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "resume"))
    assert loaded == ["open_adverse_events", "latest_event:suicidal_ideation"]


def test_the_ongoing_set_reads_each_fact_once_and_no_collection_of_readings(
    clinic, case_in, monkeypatch
):
    case_id = case_in("on_hold", held_from="integration")
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "resume"))
    assert sorted(loaded) == sorted(
        [
            "open_adverse_events",
            "latest_event:suicidal_ideation",
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
