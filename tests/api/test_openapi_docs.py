"""The OpenAPI document: every field described, every body with an example, a schema per trigger."""

from __future__ import annotations

import pytest

from api import schemas as api_schemas
from api.glossary import EXAMPLES
from api.main import create_app
from api.openapi_docs import trigger_example, trigger_schema_name, undocumented
from models import schemas as model_schemas
from workflow.definition import TRIGGERS

TRIGGER_PATH = "/api/v1/cases/{case_id}/transitions/{trigger}"


@pytest.fixture(scope="module")
def schema():
    return create_app().openapi()


def test_every_field_is_described_and_every_body_has_an_example(schema):
    gaps = undocumented(schema)
    assert not gaps, "add a line to api/glossary.py for each:\n" + "\n".join(gaps)


def test_undocumented_names_what_is_missing():
    schema = {
        "components": {"schemas": {"Thing": {"properties": {"size": {"type": "integer"}}}}},
        "paths": {"/things": {"post": {"requestBody": {"content": {"application/json": {}}}}}},
    }
    assert undocumented(schema) == ["field Thing.size", "example for POST /things"]


def test_each_trigger_has_its_own_body_schema(schema):
    components = schema["components"]["schemas"]
    operation = schema["paths"][TRIGGER_PATH]["post"]
    media = operation["requestBody"]["content"]["application/json"]
    refs = [option["$ref"].rsplit("/", 1)[1] for option in media["schema"]["anyOf"]]
    assert refs == [trigger_schema_name(t) for t in TRIGGERS]
    for trigger in TRIGGERS:
        body = components[trigger_schema_name(trigger)]
        assert set(body["properties"]) == {*trigger.body, *trigger.optional, "reason"}
        assert body.get("required", []) == list(trigger.body)
        assert body["additionalProperties"] is False
        assert media["examples"][trigger.name]["value"] == trigger_example(trigger)
    prescribe = components["PrescribeTransitionBody"]
    assert prescribe["required"] == ["dose_mg", "route", "formulation", "units_per_dose"]
    assert prescribe["properties"]["dose_mg"]["description"]
    assert components["AdjustDoseTransitionBody"]["required"] == ["dose_mg", "rationale"]


def test_examples_are_valid_bodies():
    """Each example body passes the model of the same name, each trigger's the transition body."""
    for name, example in EXAMPLES.items():
        model = getattr(model_schemas, name, None) or getattr(api_schemas, name)
        model.model_validate(example)
    for trigger in TRIGGERS:
        model_schemas.TransitionBody.model_validate(trigger_example(trigger))
