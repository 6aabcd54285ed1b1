"""The controlled-substance record: dispenses and their receipts, counts, returns."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CaseId, CaseWrite, CurrentActor, RecordId, SessionDep, write_responses
from api.problems import problem_responses
from api.queries import Cursor, Limit, records_page
from api.routing import ThreadedRoute
from api.schemas import Page
from models.facts import Dispense, MedicationCount, MedicationReturn
from models.schemas import CountCreate, DispenseCreate, ReceiptCreate, ReturnCreate
from workflow import substance

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/cases/{case_id}",
    tags=["controlled substance"],
    responses=problem_responses(401, 404, 422, 503),
)


@router.post("/dispenses", status_code=201, responses=write_responses(201))
def record_dispense(data: DispenseCreate, write: CaseWrite) -> Dispense:
    """A clinician dispenses a refill (integration or monitoring). Guarded like `ship` plus
    `clinician.licensed` (409 `transition_blocked` with `unmet`); a 409 `conflict` while more
    than `units_per_dose` + `refill_grace_units` units are on hand, while a dispense is not yet
    received, or once the prescription is over 180 days old or has had 5 refills."""
    return write(substance.record_dispense, data=data)


@router.get("/dispenses")
def list_dispenses(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Dispense]:
    """A page of the case's dispenses, oldest first: the first (`ship`) and each refill."""
    return records_page(session, Dispense, "dispenses", case_id, limit, cursor)


@router.post("/dispenses/{dispense_id}/receipt", responses=write_responses(200))
def receive_dispense(dispense_id: RecordId, data: ReceiptCreate, write: CaseWrite) -> Dispense:
    """The patient received a dispense (200): its units are on hand from `received_at`.
    `confirm_delivery` records the first dispense's receipt itself."""
    return write(substance.receive_dispense, dispense_id=dispense_id, data=data)


@router.post("/medication-counts", status_code=201, responses=write_responses(201))
def record_count(data: CountCreate, write: CaseWrite) -> MedicationCount:
    """A count of the units at home. Short of `units_on_hand` by more than
    `count_tolerance_units`, it records `substance_misuse` (a hold) and the shortfall, once,
    as a `lost` entry (witness `count`). Accepted on closed cases too."""
    return write(substance.record_count, data=data)


@router.get("/medication-counts")
def list_counts(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MedicationCount]:
    """A page of the case's medication counts, oldest first."""
    return records_page(session, MedicationCount, "medication-counts", case_id, limit, cursor)


@router.post("/medication-returns", status_code=201, responses=write_responses(201))
def record_return(data: ReturnCreate, write: CaseWrite) -> MedicationReturn:
    """Units `returned` or `disposed` of (each with a `witness`) or `lost`: at most the units
    on hand. A loss staff report records an event for a clinician's review. Accepted on
    closed cases too."""
    return write(substance.record_return, data=data)


@router.get("/medication-returns")
def list_returns(
    actor: CurrentActor,
    case_id: CaseId,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MedicationReturn]:
    """A page of the case's returns, disposals and losses, oldest first; a short count's
    loss among them."""
    return records_page(session, MedicationReturn, "medication-returns", case_id, limit, cursor)
