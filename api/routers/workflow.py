"""The workflow itself, generated from the shared machine: as JSON and as a Mermaid diagram."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import CurrentActor
from api.machine_doc import WorkflowDoc, describe, mermaid
from api.problems import problem_responses
from api.routing import ThreadedRoute

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/workflow",
    tags=["workflow"],
    responses=problem_responses(401, 503),
)


@router.get("")
def get_workflow(actor: CurrentActor) -> WorkflowDoc:
    """States, phases and triggers (sources, destinations, roles, requirements, body fields)."""
    return describe()


@router.get(
    "/diagram",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"example": "stateDiagram-v2\n..."}}}},
)
def get_diagram(actor: CurrentActor) -> str:
    """The machine as a Mermaid `stateDiagram-v2`."""
    return mermaid()
