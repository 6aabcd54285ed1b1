"""The unit of work: the one role check, bounded reads, and writers that take turns."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert

from models.facts import Assessment
from models.schemas import ScreeningCreate
from workflow import medications, unit
from workflow.errors import Conflict, Forbidden

ROOT = Path(__file__).resolve().parents[2]


def test_the_role_check_of_the_unit_is_the_one_that_counts(clinic, case_in, monkeypatch):
    """Without the unit's check, a coordinator's interaction screening goes through."""
    case_id = case_in("evaluation", prepared=False)
    screen = {"case_id": case_id, "data": ScreeningCreate(), "actor": clinic.coordinator}
    with pytest.raises(Forbidden):
        clinic.call(medications.screen_interactions, **screen)

    monkeypatch.setattr(unit, "check_role", lambda actor, action: None)
    screening = clinic.call(medications.screen_interactions, **screen)
    assert screening.id is not None
    assert clinic.events(case_id)[-1].actor_role == "coordinator"


def test_a_fact_is_refused_in_a_state_that_does_not_take_it(clinic, case_in):
    """The fact table says where each fact may be recorded: sessions only while dosing."""
    case_id = case_in("evaluation", prepared=False)
    before = clinic.snapshot(case_id)
    with pytest.raises(Conflict):
        clinic.session(case_id, "preparation")
    assert clinic.snapshot(case_id) == before


def _count_statements(engine, action) -> int:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def _bulk_assessments(clinic, case_id: int, n: int) -> None:
    rows = [
        {
            "case_id": case_id,
            "instrument": ("phq9", "gad7", "isi")[i % 3],
            "score": 10 + i % 10,
            "item9": 0 if i % 3 == 0 else None,
            "taken_at": clinic.now - timedelta(days=40, minutes=i),
            "created_at": clinic.now,
        }
        for i in range(n)
    ]
    with clinic.engine.begin() as conn:
        conn.execute(insert(Assessment), rows)


@pytest.mark.parametrize("write", ["vital", "assessment", "approve"])
def test_a_write_reads_the_same_number_of_statements_with_thousands_of_facts(
    clinic, case_in, write
):
    fresh, full = case_in("evaluation"), case_in("evaluation")
    _bulk_assessments(clinic, full, 3000)

    def do(case_id: int):
        if write == "vital":
            return lambda: clinic.vital(case_id)
        if write == "assessment":
            return lambda: clinic.assess(case_id, "isi", 18)
        return lambda: clinic.fire(case_id, "approve")

    assert _count_statements(clinic.engine, do(full)) == _count_statements(clinic.engine, do(fresh))


def test_mypy_catches_a_misspelt_fact(tmp_path):
    """The facts are typed: a guard that reads a fact that does not exist fails type-checking."""
    source = tmp_path / "misspelt.py"
    source.write_text(
        "from workflow.casefacts import CaseFacts\n\n\n"
        "def guard(facts: CaseFacts) -> object:\n"
        "    return facts.latest_vitl\n"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 1, checked.stdout
    assert '"CaseFacts" has no attribute "latest_vitl"' in checked.stdout
