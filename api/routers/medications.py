"""The medication list, interaction screenings and benzodiazepine/Z-drug tapers."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import (
    CaseId,
    CaseWrite,
    CurrentActor,
    RecordId,
    SessionDep,
    write_responses,
)
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
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
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}",
    tags=["medications"],
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)


@router.post("/medications", status_code=201, responses=write_responses(201))
def add_medication(data: MedicationCreate, write: CaseWrite) -> Medication:
    """Add a medication, classified from the drug table (`drug_classes`, and `drug_class` the
    most severe). Send `status` `stopped` with `stopped_on` for one already stopped. A
    blocking-class medication added on an approved case records an adverse event. Screenings
    go stale."""
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
    write: CaseWrite,
) -> Medication:
    """Mark a medication `active` or `stopped` (with `stopped_on`, default today), or, as a
    clinician, classify a name the drug table does not know (`drug_class`, `class_reason`).
    A coordinator may not stop a taper-required or blocking medication (403). Making one
    active again clears `stopped_on` and ends its earlier taper (200)."""
    return write(medications.update_medication, medication_id=medication_id, data=data)


@router.post("/interaction-screenings", status_code=201, responses=write_responses(201))
def screen_interactions(
    write: CaseWrite,
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
def plan_taper(data: TaperCreate, write: CaseWrite) -> Taper:
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
    write: CaseWrite,
) -> Taper:
    """A clinician confirms a taper complete (200); the medication is stopped."""
    return write(medications.confirm_taper, taper_id=taper_id, data=data)
