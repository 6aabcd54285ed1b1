"""The case as a FHIR R4B Bundle: it parses with fhir.resources, and it names nobody."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from tests.api.helpers import Api, assert_problem, case_in, case_url, open_case


def keys(value: Any) -> set[str]:
    """Every key of every object nested in ``value``."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def codes(resource: dict[str, Any], field: str = "code") -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in resource[field]["coding"]}


def fhir_case(api: Api) -> int:
    """A case in monitoring with a medication, an adverse event and a later PHQ-9."""
    case_id = case_in(api, "monitoring")
    api.post(
        "coordinator", case_url(case_id, "/medications"), {"name": "sertraline", "dose": "50 mg"}
    )
    event = {"kind": "nausea", "severity": "mild", "description": "Nausea after the dose."}
    api.post("clinician", case_url(case_id, "/adverse-events"), event)
    body = {"instrument": "phq9", "score": 9, "item9": 0, "taken_at": api.ago(hours=1)}
    api.post("coordinator", case_url(case_id, "/assessments"), body)
    return case_id


def get_bundle(api: Api, case_id: int, role: str = "clinician") -> dict[str, Any]:
    response = api.call(role, "GET", case_url(case_id, "/fhir"), expect=200)
    assert response.headers["content-type"].startswith("application/fhir+json")
    return response.json()


def test_the_bundle_parses_with_fhir_resources_and_has_no_name(api: Api) -> None:
    body = get_bundle(api, fhir_case(api))
    bundle = Bundle.model_validate(body)
    assert bundle.type == "collection"
    assert "name" not in keys(body)
    assert all(entry.resource is not None for entry in bundle.entry or [])


def test_the_bundle_holds_every_kind_of_record(api: Api) -> None:
    case_id = fhir_case(api)
    body = get_bundle(api, case_id)
    resources = [e["resource"] for e in body["entry"]]
    kinds = Counter(r["resourceType"] for r in resources)
    assert kinds["CarePlan"] == 1
    assert kinds["Observation"] == 4 + 1 + 1  # four scores, a blood pressure, a clearance
    assert kinds["MedicationStatement"] == 1 and kinds["AdverseEvent"] == 1
    events = api.items("admin", case_url(case_id, "/events"))
    assert kinds["Provenance"] == len(events)
    open_reminders = [
        r for r in api.items("admin", case_url(case_id, "/reminders")) if r["status"] == "pending"
    ]
    assert kinds["Task"] == len(open_reminders) > 0
    plan = next(r for r in resources if r["resourceType"] == "CarePlan")
    assert plan["status"] == "active"


def test_observations_carry_the_spec_codes(api: Api) -> None:
    resources = [e["resource"] for e in get_bundle(api, fhir_case(api))["entry"]]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    found = set().union(*(codes(o) for o in observations))
    loinc = "http://loinc.org"
    assert {(loinc, "44261-6"), (loinc, "70274-6"), (loinc, "85354-9")} <= found
    assert ("urn:carepath:instrument", "isi") in found
    panel = next(o for o in observations if (loinc, "85354-9") in codes(o))
    parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in panel["component"]}
    assert parts["8480-6"]["value"] == 128 and parts["8462-4"]["value"] == 82
    assert parts["8480-6"]["code"] == "mm[Hg]"
    phq9 = [o for o in observations if (loinc, "44261-6") in codes(o)]
    assert sorted(o["valueInteger"] for o in phq9) == [9, 16]


def test_the_patient_is_only_a_reference(api: Api) -> None:
    case_id = fhir_case(api)
    patient_ref = api.get("admin", case_url(case_id))["patient_ref"]
    body = get_bundle(api, case_id)
    for entry in body["entry"]:
        resource = entry["resource"]
        subject = resource.get("subject") or resource.get("for")
        if subject is not None:
            assert subject == {
                "type": "Patient",
                "identifier": {"system": "urn:carepath:patient-ref", "value": patient_ref},
            }
    assert not any(e["resource"]["resourceType"] == "Patient" for e in body["entry"])


def test_provenance_says_who_when_and_what(api: Api) -> None:
    case_id = fhir_case(api)
    resources = [e["resource"] for e in get_bundle(api, case_id)["entry"]]
    provenance = [r for r in resources if r["resourceType"] == "Provenance"]
    approve = next(p for p in provenance if p["activity"]["coding"][0]["code"] == "approve")
    assert approve["activity"]["text"] == "approve: evaluation -> delivery.awaiting_prescription"
    assert approve["agent"][0]["role"][0]["text"] == "clinician"
    assert approve["agent"][0]["who"]["type"] == "Practitioner"
    assert approve["recorded"]
    urls = {e["fullUrl"] for e in get_bundle(api, case_id)["entry"]}
    assert all(t["reference"] in urls for p in provenance for t in p["target"])
    recorded_fact = [p for p in provenance if len(p["target"]) == 2]
    assert recorded_fact, "a fact's provenance points at the fact's resource too"


def test_a_closed_case_is_a_closed_plan(api: Api) -> None:
    case_id = open_case(api)
    api.fire("coordinator", case_id, "withdraw", reason="Moved away.")
    plan = get_bundle(api, case_id)["entry"][0]["resource"]
    assert (plan["resourceType"], plan["status"]) == ("CarePlan", "revoked")


def test_every_role_reads_it_and_unknown_cases_are_404(api: Api) -> None:
    case_id = open_case(api)
    for role in ("admin", "coordinator", "clinician"):
        assert get_bundle(api, case_id, role)["resourceType"] == "Bundle"
    assert_problem(api.call("admin", "GET", case_url(999_999, "/fhir")), 404, "not_found")
    assert_problem(api.call(None, "GET", case_url(case_id, "/fhir")), 401, "unauthenticated")
