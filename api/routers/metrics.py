"""``GET /metrics``: Prometheus text, for an admin's token (see ``api.metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api import metrics as process_metrics
from api.deps import AdminActor, Now
from api.problems import problem_responses
from api.routing import ThreadedRoute

router = APIRouter(route_class=ThreadedRoute, tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."},
        **problem_responses(401, 403, 503),
    },
)
def metrics(request: Request, _admin: AdminActor, now: Now) -> Response:
    """This process's metrics in Prometheus text format; each process exposes its own."""
    body = process_metrics.render(request.app.state.read_engine, now)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
