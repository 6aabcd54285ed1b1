"""The lazily loaded facts view the guards read."""

from __future__ import annotations

import pytest

from models.db import session_scope
from models.tables import Case
from workflow.casefacts import CaseFacts


def loads_during(monkeypatch, action) -> list[str]:
    """The fact collections ``action`` made the view load from the database."""
    loaded: list[str] = []
    original = CaseFacts._load

    def spy(self, name):
        loaded.append(name)
        return original(self, name)

    monkeypatch.setattr(CaseFacts, "_load", spy)
    action()
    return loaded


def test_a_trigger_without_guards_reads_no_facts(clinic, case_in, monkeypatch):
    case_id = case_in("delivery.prescribed")
    assert loads_during(monkeypatch, lambda: clinic.fire(case_id, "ship")) == []


def test_a_guarded_trigger_reads_only_what_its_guards_need(clinic, case_in, monkeypatch):
    case_id = case_in("on_hold", held_from="integration")
    loaded = loads_during(monkeypatch, lambda: clinic.fire(case_id, "resume"))
    assert loaded == ["adverse_events"]


def test_a_collection_is_loaded_once_until_forgotten(clinic, monkeypatch):
    case_id = clinic.open_case()
    clinic.vital(case_id)
    with session_scope(clinic.engine) as session:
        facts = CaseFacts(case=session.get(Case, case_id), now=clinic.now, session=session)

        def read_twice() -> None:
            assert len(facts.vitals) == len(facts.vitals) == 1

        assert loads_during(monkeypatch, read_twice) == ["vitals"]
        facts.forget("vitals")
        assert "vitals" not in facts.preloaded


def test_without_a_session_the_view_is_empty(now):
    facts = CaseFacts(
        case=Case(id=1, patient_ref="p", patient_state="CA", state="x", phase="x"), now=now
    )
    assert (facts.history, facts.assessments, facts.adverse_events) == (None, [], [])
    with pytest.raises(AttributeError):
        _ = facts.not_a_collection


def test_preloaded_facts_are_used_as_given(now):
    case = Case(id=1, patient_ref="p", patient_state="CA", state="x", phase="x")
    facts = CaseFacts(case=case, now=now, preloaded={"vitals": ["reading"]})
    assert facts.vitals == ["reading"]
