"""Schemathesis against the app's own OpenAPI schema: no 5xx, no answer that breaks the schema.

Every operation is fuzzed as the role that may call it (users as an admin,
cases as a clinician, who may make every write to a case), with data that fits
its schema and data that does not, on a database seeded with cases and their facts. Generated ids
and triggers are sometimes pinned to the seeded ones, so that the fuzzer
reaches stored rows and real transitions, not only 404s.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from models.db import make_engine
from tests.api.helpers import (
    Api,
    assert_problem,
    case_in,
    case_url,
    open_case,
    record_evaluation,
)
from workflow.definition import TRIGGERS

# The OpenAPI document does not depend on the database: read it from an app on a
# throwaway in-memory one, and send each test's requests to an app on its own.
OPENAPI = create_app(make_engine("sqlite://")).openapi()
SCHEMA = schemathesis.openapi.from_dict(OPENAPI)

# Left out: positive_data_acceptance (a body that fits the schema may still be refused by the
# workflow: 404, 409 and 412 are the contract) and negative_data_rejection (a malformed
# If-Match is a 412 by design, even when another part of the request is also malformed).
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
EXAMPLES_PER_OPERATION = 25
SEEDED_IDS = (1, 2, 3)
"""Cases 1 to 3 exist, and so does record 1 (or more) of every collection seeded."""
TRIGGER_NAMES = tuple(t.name for t in TRIGGERS)
ID_PARAMETERS = ("case_id", "medication_id", "taper_id", "event_id")
STAFF_USER_IDS = (2, 3)
"""The seeded coordinator and clinician: users the admin may deactivate and re-key without
locking itself out of the rest of the run."""


@SCHEMA.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Sometimes swap a valid generated id or trigger for a seeded one; leave invalid ones be."""
    if not path_parameters:
        return st.just(path_parameters)
    strategies = {}
    for name, value in path_parameters.items():
        if name in ID_PARAMETERS and type(value) is int and value >= 1:
            strategies[name] = st.sampled_from((value, *SEEDED_IDS))
        elif name == "user_id" and type(value) is int and value >= 1:
            strategies[name] = st.sampled_from((value, *STAFF_USER_IDS))
        elif name == "trigger" and isinstance(value, str) and len(value) <= 40:
            strategies[name] = st.sampled_from((value, *TRIGGER_NAMES))
        else:
            strategies[name] = st.just(value)
    return st.fixed_dictionaries(strategies)


@SCHEMA.hook
def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
    """A generated ``If-Match`` is nearly always malformed (a 412): often send none or a version."""
    if not headers or "If-Match" not in headers:
        return st.just(headers)
    without = {k: v for k, v in headers.items() if k != "If-Match"}
    versions = st.integers(1, 8).map(lambda n: {**without, "If-Match": f'"{n}"'})
    return st.one_of(st.just(without), versions, st.just(headers))


def seed(api: Api) -> None:
    """Case 1 in evaluation with every evaluation fact, 2 in monitoring, 3 on hold."""
    case_id = open_case(api)
    record_evaluation(api, case_id)
    medications = case_url(case_id, "/medications")
    benzo = api.post("coordinator", medications, {"name": "alprazolam", "dose": "0.5 mg"})
    api.post("coordinator", medications, {"name": "sertraline"})
    api.post("clinician", case_url(case_id, "/tapers"), {"medication_id": benzo["id"], "plan": "x"})
    api.post("clinician", case_url(case_id, "/interaction-screenings"), {})
    event = {"kind": "nausea", "severity": "mild", "description": "after dinner"}
    api.post("coordinator", case_url(case_id, "/adverse-events"), event)
    case_in(api, "monitoring")
    held = open_case(api)
    api.fire("coordinator", held, "hold", reason="travelling")


@pytest.fixture
def seeded_api(api: Api) -> Api:
    seed(api)
    return api


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    # The database is one per operation on purpose: examples build on each other's rows.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_keeps_to_its_schema(case, seeded_api: Api) -> None:
    role = "admin" if case.path.startswith("/api/v1/users") else "clinician"
    case.call_and_validate(
        app=seeded_api.client.app, headers=seeded_api.headers(role), checks=CHECKS
    )


# -- what the fuzzer found, pinned down ------------------------------------------------


def test_every_error_is_documented_as_problem_json():
    """It found ``GET /workflow/diagram`` documenting its 401 and 503 as ``text/plain``."""
    media_types = {
        (path, method, status): list(response.get("content", {}))
        for path, operations in OPENAPI["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    }
    assert {k: v for k, v in media_types.items() if v != [PROBLEM_MEDIA_TYPE]} == {}


@pytest.mark.parametrize(
    "content", [b'{"patient_ref": "\x80"}', b"[" * 30_000 + b"]" * 30_000], ids=["utf8", "deep"]
)
def test_a_body_that_cannot_be_decoded_is_a_422(api: Api, content: bytes):
    """It found bytes that are not UTF-8 answered 400, undocumented; so is JSON nested too deep."""
    headers = api.headers("coordinator", {"Content-Type": "application/json"})
    response = api.client.post("/api/v1/cases", content=content, headers=headers)
    assert assert_problem(response, 422, "validation_error")["errors"][0]["loc"] == ["body"]
