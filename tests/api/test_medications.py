"""The medications router over HTTP: classification, clinician classes, stop rules (SPEC.md 4.3)."""

from __future__ import annotations

from tests.api.helpers import Api, case_url, open_case
from workflow import drugs


def add(api: Api, case_id: int, body: dict) -> dict:
    return api.post("coordinator", case_url(case_id, "/medications"), body)


def test_a_combination_is_returned_with_every_class(api: Api):
    case_id = open_case(api)
    med = add(api, case_id, {"name": "hydrocodone/acetaminophen 5-325 mg"})
    assert med["drug_classes"] == ["opioid", "no_known_interaction"]
    assert med["drug_class"] == "opioid" and med["stopped_on"] is None


def test_an_already_stopped_medication_and_a_bad_stop_date(api: Api):
    case_id = open_case(api)
    med = add(api, case_id, {"name": "Xanax", "status": "stopped", "stopped_on": "2026-01-02"})
    assert (med["status"], med["stopped_on"]) == ("stopped", "2026-01-02")
    api.post(
        "coordinator",
        case_url(case_id, "/medications"),
        {"name": "Xanax", "stopped_on": "2026-01-02"},
        expect=422,
    )


def test_a_clinician_classifies_an_unknown_name_and_a_coordinator_may_not(api: Api):
    case_id = open_case(api)
    med = add(api, case_id, {"name": "Frobnitol"})
    assert med["drug_classes"] == ["unknown"]
    url = case_url(case_id, f"/medications/{med['id']}")
    body = {"drug_class": "no_known_interaction", "class_reason": "A herbal tea."}
    problem = api.call("coordinator", "PATCH", url, json=body, expect=403).json()
    assert problem["status"] == 403
    api.call("clinician", "PATCH", url, json={"drug_class": "ssri"}, expect=422)
    api.call("clinician", "PATCH", url, json={**body, "drug_class": "nope"}, expect=422)

    classified = api.call("clinician", "PATCH", url, json=body, expect=200).json()

    assert classified["drug_classes"] == ["no_known_interaction"]
    assert classified["class_reason"] == "A herbal tea."
    screening = api.post("clinician", case_url(case_id, "/interaction-screenings"))
    assert (screening["result"], screening["findings"]) == ("clear", [])
    assert screening["drug_table_version"] == drugs.current_table().version


def test_a_near_miss_screens_as_unknown_with_a_hint(api: Api):
    case_id = open_case(api)
    add(api, case_id, {"name": "alprazolm 1 mg"})
    screening = api.post("clinician", case_url(case_id, "/interaction-screenings"))
    (finding,) = screening["findings"]
    assert finding["drug_class"] == "unknown" and "did you mean alprazolam" in finding["message"]


def test_bad_names_are_stored_as_unknown(api: Api):
    case_id = open_case(api)
    for name in ["\u0301" * 200, "?!...", "10 mg tablet", "X\u0430nax", "\u963f\u666e\u5511\u4ed1"]:
        med = add(api, case_id, {"name": name})
        assert med["drug_classes"] == ["unknown"], name


def test_only_a_clinician_moves_the_stop_date_of_a_blocking_medication(api: Api):
    # The stop date starts the washout: moving it back would end an MAOI's 14 days
    # early, so it is a clinician's, as stopping it is (SPEC.md 4.3).
    case_id = open_case(api)
    maoi = add(api, case_id, {"name": "phenelzine"})
    url = case_url(case_id, f"/medications/{maoi['id']}")
    today = api.clock.now.date().isoformat()
    api.call("clinician", "PATCH", url, json={"status": "stopped", "stopped_on": today})
    version = api.get("coordinator", case_url(case_id))["version"]
    backdated = {"status": "stopped", "stopped_on": api.ago(days=60)[:10]}
    refused = api.call("coordinator", "PATCH", url, json=backdated, expect=403)
    assert "change the stop date of phenelzine" in refused.json()["detail"]
    listed = api.items("coordinator", case_url(case_id, "/medications"))
    assert [m["stopped_on"] for m in listed if m["id"] == maoi["id"]] == [today]
    assert api.get("coordinator", case_url(case_id))["version"] == version
    # Sending the date it already has changes nothing, and is no stop.
    same = {"status": "stopped", "stopped_on": today}
    assert api.call("coordinator", "PATCH", url, json=same).json()["stopped_on"] == today
    moved = api.call("clinician", "PATCH", url, json=backdated).json()
    assert moved["stopped_on"] == backdated["stopped_on"]
    # A medication that is neither taper-required nor blocking: the coordinator may.
    plain = add(api, case_id, {"name": "ibuprofen", "status": "stopped", "stopped_on": today})
    plain_url = case_url(case_id, f"/medications/{plain['id']}")
    assert api.call("coordinator", "PATCH", plain_url, json=backdated).status_code == 200
