"""The medication list, interaction screenings and benzodiazepine/Z-drug tapers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.deps import (
    CaseId,
    CaseWrite,
    CurrentActor,
    RecordId,
    SessionDep,
    fact_writer,
    write_responses,
)
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.schemas import Page
from models.facts import InteractionScreening, Medication, Taper
from models.schemas import (
    MedicationCreate,
    MedicationUpdate,
    ScreeningCreate,
    TaperConfirm,
    TaperCreate,
)
from workflow import medications

router = APIRouter(
    prefix="/api/v1/cases/{case_id}",
    tags=["medications"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.post("/medications", status_code=201, responses=write_responses(201))
def add_medication(
    data: MedicationCreate, write: Annotated[CaseWrite, fact_writer("medication")]
) -> Medication:
    """Add a medication; its `drug_class` comes from the drug table. Screenings go stale."""
    return write(medications.add_medication, data=data)


@router.get("/medications")
def list_medications(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Medication]:
    """A page of the medication list, oldest first."""
    return records_page(session, Medication, "medications", case_id, limit, cursor)


@router.patch("/medications/{medication_id}", responses=write_responses(200))
def update_medication(
    medication_id: RecordId,
    data: MedicationUpdate,
    write: Annotated[CaseWrite, fact_writer("medication_update")],
) -> Medication:
    """Mark a medication `active` or `stopped` (200)."""
    return write(medications.update_medication, medication_id=medication_id, data=data)


@router.post("/interaction-screenings", status_code=201, responses=write_responses(201))
def screen_interactions(
    write: Annotated[CaseWrite, fact_writer("interaction_screening")],
    data: ScreeningCreate | None = None,
) -> InteractionScreening:
    """A clinician screens the active medication list; the service computes the findings."""
    return write(medications.screen_interactions, data=data or ScreeningCreate())


@router.get("/interaction-screenings")
def list_screenings(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[InteractionScreening]:
    """A page of the case's interaction screenings, oldest first."""
    return records_page(
        session, InteractionScreening, "interaction-screenings", case_id, limit, cursor
    )


@router.post("/tapers", status_code=201, responses=write_responses(201))
def plan_taper(data: TaperCreate, write: Annotated[CaseWrite, fact_writer("taper")]) -> Taper:
    """A clinician plans the taper of a benzodiazepine or Z-drug."""
    return write(medications.plan_taper, data=data)


@router.get("/tapers")
def list_tapers(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Taper]:
    """A page of the case's tapers, oldest first."""
    return records_page(session, Taper, "tapers", case_id, limit, cursor)


@router.post("/tapers/{taper_id}/confirm", responses=write_responses(200))
def confirm_taper(
    taper_id: RecordId,
    data: TaperConfirm,
    write: Annotated[CaseWrite, fact_writer("taper_confirm")],
) -> Taper:
    """A clinician confirms a taper complete (200); the medication is stopped."""
    return write(medications.confirm_taper, taper_id=taper_id, data=data)
