"""The dispatcher's writes and the workflow's take turns in one writer queue."""

from __future__ import annotations

import threading
from datetime import timedelta

from models.facts import Assessment
from models.schemas import VitalCreate
from workflow import records, unit


def test_dispatcher_and_case_writers_interleave_without_a_locked_database(clinic, reminders):
    """Reminder deliveries and case writes queue in the same writer queue, none fails."""
    case_ids = [clinic.case_in("evaluation", prepared=False) for _ in range(4)]
    for case_id in case_ids:
        for minutes in range(25):
            reminders.add(case_id, f"probe-{minutes}", clinic.now - timedelta(minutes=minutes))
    errors: list[BaseException] = []
    reading = VitalCreate(systolic=120, diastolic=78, taken_at=clinic.now)

    def write_vitals(case_id: int) -> None:
        try:
            for _ in range(15):
                unit.commit_write(
                    clinic.engine,
                    records.record_vital,
                    case_id=case_id,
                    actor=clinic.coordinator,
                    now=clinic.now,
                    data=reading,
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write_vitals, args=(c,)) for c in case_ids]
    for thread in threads:
        thread.start()
    result = reminders.dispatch(clinic.now)
    for thread in threads:
        thread.join()

    assert errors == []
    assert (result.sent, result.errors) == (100, 0)
    assert all(len(clinic.rows(Assessment, c)) == 0 for c in case_ids)
    for case_id in case_ids:
        assert clinic.case(case_id).version == 1 + 15
