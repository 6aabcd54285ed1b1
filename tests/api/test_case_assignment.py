"""The case's own writes over HTTP: assignment, PATCH, and finding cases by patient or assignee
(SPEC.md section 5)."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import Api, assert_problem, case_url, open_case


def user_id(api: Api, role: str) -> int:
    return api.get(role, "/api/v1/users/me")["id"]


def new_user(api: Api, name: str, role: str) -> int:
    body: dict[str, Any] = {"name": name, "role": role}
    return api.post("admin", "/api/v1/users", body)["id"]


def assign(api: Api, case_id: int, role: str = "coordinator", **body: Any):
    return api.call(role, "POST", case_url(case_id, "/assignment"), json=body)


# -- assignment ------------------------------------------------------------------------


def test_assignment_answers_with_the_case_and_its_etag_and_is_audited(api: Api):
    case_id = open_case(api)
    clinician, coordinator = user_id(api, "clinician"), user_id(api, "coordinator")

    response = assign(api, case_id, clinician_id=clinician, coordinator_id=coordinator)

    assert response.status_code == 200, response.text
    case = response.json()
    assert (case["assigned_clinician_id"], case["assigned_coordinator_id"]) == (
        clinician,
        coordinator,
    )
    assert response.headers["etag"] == f'"{case["version"]}"' == '"2"'
    event = api.items("admin", case_url(case_id, "/events"))[-1]
    assert (event["kind"], event["data"]["fact"], event["actor_id"]) == (
        "fact",
        "assignment",
        coordinator,
    )


def test_a_bad_assignee_is_a_422_naming_the_field_and_changes_nothing(api: Api):
    case_id = open_case(api)
    gone = new_user(api, "gone", "coordinator")
    api.post("admin", f"/api/v1/users/{gone}/deactivate", expect=200)
    before = api.snapshot(case_id)
    cases = [
        ({"clinician_id": 9999}, "clinician_id"),
        ({"clinician_id": user_id(api, "coordinator")}, "clinician_id"),
        ({"coordinator_id": user_id(api, "admin")}, "coordinator_id"),
        ({"coordinator_id": gone}, "coordinator_id"),
    ]
    for body, field in cases:
        problem = assert_problem(assign(api, case_id, **body), 422, "validation_error")
        assert [e["loc"] for e in problem["errors"]] == [["body", field]], body
    for body in ({}, {"clinician_id": None}, {"clinician_id": "x"}, {"team": 1}):
        assert_problem(assign(api, case_id, **body), 422, "validation_error")
    assert api.snapshot(case_id) == before


def test_an_admin_may_not_assign_and_a_stale_if_match_is_refused(api: Api):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    assert_problem(
        assign(api, case_id, "admin", coordinator_id=user_id(api, "coordinator")), 403, "forbidden"
    )
    stale = api.call(
        "coordinator",
        "POST",
        case_url(case_id, "/assignment"),
        json={"coordinator_id": user_id(api, "coordinator")},
        headers={"If-Match": '"7"'},
    )
    assert_problem(stale, 412, "version_conflict")
    assert api.snapshot(case_id) == before


def test_cases_and_the_worklist_filter_by_assignee(api: Api):
    mine, clinicians, nobody = open_case(api), open_case(api), open_case(api)
    coordinator = user_id(api, "coordinator")
    assign(api, mine, coordinator_id=coordinator)
    assign(api, clinicians, clinician_id=user_id(api, "clinician"))

    def case_ids(role: str, path: str, assignee: str) -> list[int]:
        items = api.items(role, path, params={"assignee": assignee})
        return [item["case"]["id"] if "case" in item else item["id"] for item in items]

    assert case_ids("coordinator", "/api/v1/cases", "me") == [mine]
    assert case_ids("admin", "/api/v1/cases", str(coordinator)) == [mine]
    assert case_ids("clinician", "/api/v1/cases", "me") == [clinicians]
    assert case_ids("coordinator", "/api/v1/worklist", "me") == [mine]
    page = api.get("coordinator", "/api/v1/worklist", params={"assignee": "me"})
    assert page["items"][0]["case"]["assigned_coordinator_id"] == coordinator
    assert nobody not in case_ids("admin", "/api/v1/cases", "me")
    for bad in ("you", "-1", "0", ""):
        response = api.call("coordinator", "GET", "/api/v1/cases", params={"assignee": bad})
        assert_problem(response, 422, "validation_error")


def test_reminders_name_the_assigned_user_and_a_taper_s_check_in_its_taper(api: Api):
    case_id = open_case(api)
    coordinator = user_id(api, "coordinator")
    assign(api, case_id, coordinator_id=coordinator)
    medication = api.post("clinician", case_url(case_id, "/medications"), {"name": "Xanax"})
    body = {"medication_id": medication["id"], "plan": "Reduce 0.25 mg a week."}
    taper = api.post("clinician", case_url(case_id, "/tapers"), body)

    reminders = {r["kind"]: r for r in api.items("admin", case_url(case_id, "/reminders"))}
    evaluation, checkin = reminders["evaluation_overdue"], reminders["taper_checkin"]
    assert (evaluation["recipient_id"], evaluation["taper_id"]) == (coordinator, None)
    assert (checkin["recipient_role"], checkin["taper_id"]) == ("clinician", taper["id"])


# -- PATCH -----------------------------------------------------------------------------


def patch(api: Api, case_id: int, role: str, body: Any, **kwargs: Any):
    return api.call(role, "PATCH", case_url(case_id), json=body, **kwargs)


def test_a_clinician_moves_the_patient_and_a_repeat_is_audited_with_no_change(api: Api):
    case_id = open_case(api, state="CA")
    response = patch(api, case_id, "clinician", {"patient_state": "NY"})
    assert response.status_code == 200, response.text
    assert (response.json()["patient_state"], response.headers["etag"]) == ("NY", '"2"')

    patch(api, case_id, "clinician", {"patient_state": "NY"}, expect=200)
    events = [e for e in api.items("admin", case_url(case_id, "/events")) if e["kind"] == "fact"]
    assert [(e["data"]["fact"], e["data"]["record"]["changes"]) for e in events] == [
        ("case_update", {"patient_state": "NY"}),
        ("case_update", {}),
    ]


def test_patch_is_a_clinician_s_and_takes_only_a_us_state(api: Api):
    case_id = open_case(api)
    before = api.snapshot(case_id)
    for role in ("coordinator", "admin"):
        assert_problem(patch(api, case_id, role, {"patient_state": "NY"}), 403, "forbidden")
    for body in ({"patient_state": "ZZ"}, {"patient_state": "ny"}, {}, {"state": "monitoring"}):
        assert_problem(patch(api, case_id, "clinician", body), 422, "validation_error")
    stale = patch(api, case_id, "clinician", {"patient_state": "NY"}, headers={"If-Match": '"9"'})
    assert_problem(stale, 412, "version_conflict")
    assert_problem(patch(api, 9999, "clinician", {"patient_state": "NY"}), 404, "not_found")
    assert api.snapshot(case_id) == before


def test_a_closed_case_takes_no_patch_and_no_assignment(api: Api):
    case_id = open_case(api)
    api.fire("coordinator", case_id, "withdraw", reason="Moved abroad.")
    before = api.snapshot(case_id)
    assert_problem(patch(api, case_id, "clinician", {"patient_state": "NY"}), 409, "conflict")
    response = assign(api, case_id, coordinator_id=user_id(api, "coordinator"))
    assert_problem(response, 409, "conflict")
    assert api.snapshot(case_id) == before


# -- patient_ref -------------------------------------------------------------------------


def test_patient_ref_is_one_patient_whatever_the_letter_case(api: Api):
    body = {"patient_ref": "Pt-0042", "patient_state": "CA"}
    first = api.post("coordinator", "/api/v1/cases", body)
    again = api.call("coordinator", "POST", "/api/v1/cases", json=body | {"patient_ref": "PT-0042"})
    assert_problem(again, 409, "conflict")

    found = api.items("clinician", "/api/v1/cases", params={"patient_ref": "pt-0042"})
    assert [(c["id"], c["patient_ref"]) for c in found] == [(first["id"], "Pt-0042")]
    for other in ("Pt-004", "Pt-00420", "Pt"):
        assert api.items("clinician", "/api/v1/cases", params={"patient_ref": other}) == []
    for bad in ("x" * 65, "PT-\u212a", "Jane Doe", "p\x00"):  # the Kelvin sign lowers to k
        response = api.call("clinician", "GET", "/api/v1/cases", params={"patient_ref": bad})
        assert_problem(response, 422, "validation_error")
