"""Complete the generated OpenAPI document: field descriptions, example bodies, trigger bodies.

Models are not annotated one by one: a field gets its description from
``FIELDS`` (by name, or ``Schema.field`` where one name means different things),
and each request body its example from ``EXAMPLES`` (by schema name). A new
field needs one line here; ``tests/api/test_openapi_docs.py`` names any field
without a description and any body without an example. Each trigger's body is a
schema of its own, generated from ``workflow.definition.TRIGGERS``.
"""

from __future__ import annotations

from typing import Any

from api.glossary import EXAMPLES, FIELD_EXAMPLES, FIELDS
from workflow.definition import TRIGGERS, TriggerDef

REF = "#/components/schemas/"
TRANSITION_BODY = "TransitionBody"
TRIGGER_PATH = "/api/v1/cases/{case_id}/transitions/{trigger}"


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every known description and example filled in (in place)."""
    schemas = schema.get("components", {}).get("schemas", {})
    for name, component in schemas.items():
        _describe(name, component)
    _trigger_bodies(schema, schemas)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            _example(operation, schemas)
    return schema


def _describe(name: str, component: dict[str, Any]) -> None:
    for field, prop in component.get("properties", {}).items():
        if "description" not in prop:
            text = FIELDS.get(f"{name}.{field}") or FIELDS.get(field)
            if text:
                prop["description"] = text


def _body_schema(operation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The operation's JSON body media entry and its schema, if it takes one."""
    content = operation.get("requestBody", {}).get("content", {})
    media = content.get("application/json")
    if media is None:
        return None
    return media, media.get("schema", {})


def _schema_name(body: dict[str, Any]) -> str | None:
    """The component a body refers to, through ``anyOf: [ref, null]`` when it is optional."""
    for candidate in [body, *body.get("anyOf", ()), *body.get("allOf", ())]:
        ref = candidate.get("$ref", "")
        if ref.startswith(REF):
            return ref.removeprefix(REF)
    return None


def _example(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    found = _body_schema(operation)
    if found is None:
        return
    media, body = found
    name = _schema_name(body)
    if name in EXAMPLES and "example" not in media and "examples" not in media:
        media["example"] = EXAMPLES[name]


def trigger_schema_name(trigger: TriggerDef) -> str:
    """``prescribe`` -> ``PrescribeTransitionBody``."""
    return "".join(part.capitalize() for part in trigger.name.split("_")) + TRANSITION_BODY


def _trigger_bodies(schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """One schema per trigger, from the trigger table; the transition body is any of them."""
    general = schemas.get(TRANSITION_BODY)
    operation = schema.get("paths", {}).get(TRIGGER_PATH, {}).get("post")
    if general is None or operation is None:
        return
    for trigger in TRIGGERS:
        schemas[trigger_schema_name(trigger)] = _one_trigger(trigger, general)
    found = _body_schema(operation)
    if found is None:
        return
    media, _ = found
    media["schema"] = {
        "anyOf": [{"$ref": REF + trigger_schema_name(t)} for t in TRIGGERS],
        "description": "The body the path's trigger takes: see each `<Trigger>TransitionBody`.",
    }
    media["examples"] = {
        t.name: {"summary": f"POST .../transitions/{t.name}", "value": trigger_example(t)}
        for t in TRIGGERS
    }
    operation["x-trigger-bodies"] = {t.name: REF + trigger_schema_name(t) for t in TRIGGERS}


def trigger_example(trigger: TriggerDef) -> dict[str, Any]:
    """An example body for ``trigger``: every field it takes, from ``FIELD_EXAMPLES``."""
    names = (*trigger.body, *trigger.optional) or ("reason",)
    return {name: FIELD_EXAMPLES.get(name, "...") for name in names}


def _one_trigger(trigger: TriggerDef, general: dict[str, Any]) -> dict[str, Any]:
    taken = dict.fromkeys((*trigger.body, *trigger.optional, "reason"))
    known = general.get("properties", {})
    properties = {name: known.get(name, {"description": FIELDS.get(name, "")}) for name in taken}
    leads_to = f"`{trigger.dest}`" if trigger.dest else "the same state"
    body: dict[str, Any] = {
        "title": trigger_schema_name(trigger),
        "type": "object",
        "description": (
            f"The body of `POST /api/v1/cases/{{case_id}}/transitions/{trigger.name}`"
            f": leads to {leads_to}. Other fields are a 422."
        ),
        "properties": properties,
        "additionalProperties": False,
    }
    if trigger.body:
        body["required"] = list(trigger.body)
    return body


def undocumented(schema: dict[str, Any]) -> list[str]:
    """Every field without a description and every body without an example, by name."""
    gaps = [
        f"field {name}.{field}"
        for name, component in schema.get("components", {}).get("schemas", {}).items()
        for field, prop in component.get("properties", {}).items()
        if not prop.get("description")
    ]
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if any("example" not in m and "examples" not in m for m in content.values()):
                gaps.append(f"example for {method.upper()} {path}")
    return gaps
