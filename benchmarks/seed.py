"""Preparing a benchmark database through carepath's own code: schema, users, cases, facts.

Users are made with the ``carepath users add`` command (it prints the token);
cases and facts go through the workflow services, in process, with the
reminder policies installed, so the rows are exactly what the API would have
written (audit events and reminders included), only faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from harness import run_checked, uv_run
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.auth import as_actor
from models.db import session_scope
from models.migrate import upgrade
from models.schemas import AssessmentCreate, CaseCreate, HistoryIn, Instrument, VitalCreate
from models.tables import User
from models.types import utcnow
from schedules import policies
from workflow import patient, records
from workflow.cases import create_case
from workflow.definition import Actor

BATCH = 250
"""Cases per transaction while seeding."""
BASELINE_SCORES: tuple[tuple[Instrument, int], ...] = (("phq9", 16), ("gad7", 12), ("isi", 19))


@dataclass(frozen=True)
class Staff:
    """A user made for the benchmark: its token for HTTP, its actor for the services."""

    token: str
    actor: Actor

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def migrate(engine: Engine) -> None:
    """Bring the schema to head, as ``carepath db upgrade`` does."""
    upgrade(engine)


def add_user(url: str, engine: Engine, name: str, role: str, *states: str) -> Staff:
    """Create a user with the CLI (``carepath users add``) and return its token and actor."""
    argv = uv_run("carepath", "users", "add", name, "--role", role)
    for state in states:
        argv += ["--license-state", state]
    token = run_checked(argv, env={"CAREPATH_DATABASE_URL": url}).strip().splitlines()[-1]
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.name == name)).one()
        actor = as_actor(user)
    return Staff(token=token, actor=actor)


def create_cases(engine: Engine, actor: Actor, count: int, prefix: str) -> list[int]:
    """Open ``count`` cases in ``evaluation`` through ``workflow.cases.create_case``."""
    policies.install()
    ids: list[int] = []
    for start in range(0, count, BATCH):
        with session_scope(engine) as session:
            for n in range(start, min(count, start + BATCH)):
                data = CaseCreate(patient_ref=f"{prefix}-{n}", patient_state="CA")
                case = create_case(session, data=data, actor=actor, now=utcnow())
                session.flush()
                assert case.id is not None
                ids.append(case.id)
    return ids


def evaluation_facts(engine: Engine, actor: Actor, case_ids: list[int]) -> None:
    """Give each case what an evaluation usually holds: a history, three scores, a vital."""
    policies.install()
    history = HistoryIn(
        insomnia_nights_per_week=5,
        insomnia_duration_months=12,
        diagnoses=["depression"],
        failed_antidepressant_trials=2,
        cbti_completed=True,
        seeking_sleep_med_replacement=False,
        substance_use_disorder_history=False,
        uncontrolled_hypertension=False,
        active_psychosis=False,
        psychosis_or_mania_history=False,
        severe_psychiatric_instability=False,
        significant_breathing_problems=False,
        sleep_apnea=False,
        aneurysm_avm_or_ich=False,
        recent_mi_or_stroke=False,
    )
    for start in range(0, len(case_ids), BATCH):
        with session_scope(engine) as session:
            for case_id in case_ids[start : start + BATCH]:
                now = utcnow()
                taken = now - timedelta(days=2)
                patient.put_history(session, case_id=case_id, data=history, actor=actor, now=now)
                for instrument, score in BASELINE_SCORES:
                    item9 = 0 if instrument == "phq9" else None  # required on a PHQ-9
                    data = AssessmentCreate(
                        instrument=instrument, score=score, item9=item9, taken_at=taken
                    )
                    records.record_assessment(
                        session, case_id=case_id, data=data, actor=actor, now=now
                    )
                vital = VitalCreate(systolic=128, diastolic=82, taken_at=taken)
                records.record_vital(session, case_id=case_id, data=vital, actor=actor, now=now)
