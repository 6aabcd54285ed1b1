"""The workflow listing, its Mermaid diagram and the OpenAPI document."""

from __future__ import annotations

import re

from api.machine_doc import mermaid_id
from tests.api.helpers import Api
from workflow.definition import STATES, TRIGGERS
from workflow.machine import MACHINE


def test_workflow_lists_states_phases_and_triggers(api: Api):
    doc = api.get("coordinator", "/api/v1/workflow")
    assert [s["name"] for s in doc["states"]] == [s.name for s in STATES]
    closed = {s["name"] for s in doc["states"] if s["terminal"]}
    assert closed == {"ineligible", "discharged", "withdrawn"}
    assert {p["name"] for p in doc["phases"]} >= {"evaluation", "delivery", "closed"}
    triggers = {t["name"]: t for t in doc["triggers"]}
    assert set(triggers) == {t.name for t in TRIGGERS}
    prescribe = triggers["prescribe"]
    assert prescribe["sources"] == ["delivery.awaiting_prescription"]
    assert prescribe["dest"] == "delivery.prescribed" and prescribe["roles"] == ["clinician"]
    assert "taper.confirmed" in prescribe["requires"]
    assert prescribe["body"] == ["dose_mg", "route", "formulation", "units_per_dose"]
    assert triggers["adjust_dose"]["transitions"] == [
        {"source": s, "dest": s, "internal": True} for s in ("integration", "monitoring", "on_hold")
    ]
    assert triggers["adjust_dose"]["requires"] == ["clinician.licensed"]
    (raise_also,) = triggers["adjust_dose"]["also"]
    assert raise_also["when"] == "dose_raised" and "taper.washout" in raise_also["requires"]
    assert doc["clearance_requires"][0] == "case.dosing_state"
    assert "dose.interval" in doc["clearance_requires"]
    resume_dests = {m["dest"] for m in triggers["resume"]["transitions"]}
    assert "integration" in resume_dests and "on_hold" not in resume_dests
    assert "adverse_events.resolved" in doc["requirements"]
    assert doc["fact_roles"]["taper"] == ["clinician"]
    discharge = triggers["discharge"]
    assert discharge["sources"] == ["monitoring", "on_hold"]
    assert discharge["requires"] == ["adverse_events.resolved", "medication.reconciled"]
    assert triggers["ship"]["body"] == ["quantity_units", "lot"]
    assert "units.on_hand" in doc["clearance_requires"]
    assert doc["fact_roles"]["dispense"] == ["clinician"]
    assert discharge["also"] == [
        {"requires": ["assessments.recent"], "source": ["monitoring"], "to": None, "when": None}
    ]
    assert discharge["on_hold_from"] == ["integration", "monitoring"]
    assert triggers["decline"]["on_hold_from"] == ["evaluation"]
    assert triggers["resume"]["on_hold_from"] is None
    assert {"safety.reassessed", "adverse_events.suicide_risk_resolved"} <= set(doc["requirements"])


def test_diagram_is_mermaid_generated_from_the_machine(api: Api):
    response = api.call("clinician", "GET", "/api/v1/workflow/diagram", expect=200)
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert text.startswith("stateDiagram-v2\n")
    assert 'state "delivery.awaiting_prescription" as delivery_awaiting_prescription' in text
    assert "evaluation --> delivery_awaiting_prescription: approve" in text
    assert "[*] --> evaluation" in text and "discharged --> [*]" in text
    for line in text.splitlines()[1:]:
        if "-->" in line:
            assert "." not in line.split(":")[0], line  # ids never hold dots
    edges = {
        (mermaid_id(source), mermaid_id(t.dest or source), name)
        for name, event in MACHINE.events.items()
        for source, moves in event.transitions.items()
        for t in moves
    }
    drawn = set()
    for source, dest, labels in re.findall(r"^\s+(\w+) --> (\w+): (.+)$", text, re.M):
        drawn |= {(source, dest, label) for label in labels.split(" / ")}
    assert drawn == edges


def test_openapi_describes_every_endpoint_and_its_problems(api: Api):
    schema = api.client.get("/openapi.json").json()
    assert "ProblemDetails" in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    fire = schema["paths"]["/api/v1/cases/{case_id}/transitions/{trigger}"]["post"]
    assert {"200", "401", "403", "404", "409", "412", "422"} <= set(fire["responses"])
    blocked = fire["responses"]["409"]["content"]
    assert list(blocked) == ["application/problem+json"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path != "/health":
                assert "401" in operation["responses"], (method, path)
            assert operation.get("summary") and operation.get("description"), (method, path)
    assert api.client.get("/docs").status_code == 200
