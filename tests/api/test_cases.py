"""Cases, users and fact collections: shapes, paging, ETags and If-Match."""

from __future__ import annotations

from tests.api.helpers import ELIGIBLE_HISTORY, Api, case_url, open_case

CASE_FIELDS = {
    "id",
    "patient_ref",
    "patient_state",
    "state",
    "phase",
    "version",
    "assigned_clinician_id",
    "assigned_coordinator_id",
    "created_at",
    "updated_at",
    "referrals",
    "held_from",
    "prescription",
    "units_on_hand",
}


def test_create_and_read_a_case(api: Api):
    body = {"patient_ref": "P-1", "patient_state": "CA"}
    response = api.call("coordinator", "POST", "/api/v1/cases", json=body, expect=201)
    case = response.json()
    assert set(case) == CASE_FIELDS
    assert (case["state"], case["phase"], case["version"]) == ("evaluation", "evaluation", 1)
    assert case["units_on_hand"] == 0  # nothing dispensed yet (SPEC.md 4.5)
    assert response.headers["etag"] == '"1"'
    assert case["created_at"] == "2026-11-02T15:00:00Z"
    response = api.call("clinician", "GET", case_url(case["id"]), expect=200)
    assert response.json() == case and response.headers["etag"] == '"1"'
    events = api.items("clinician", case_url(case["id"], "/events"))
    assert [(e["trigger"], e["from_state"], e["to_state"]) for e in events] == [
        ("create", None, "evaluation")
    ]


def test_invalid_case_bodies_are_422(api: Api):
    for body in (
        {"patient_ref": "P-1", "patient_state": "ZZ"},
        {"patient_ref": "P-1", "patient_state": "ca"},
        {"patient_ref": "Jane Doe", "patient_state": "CA"},
        {"patient_ref": "P-1"},
        {"patient_ref": "P-1", "patient_state": "CA", "state": "monitoring"},
    ):
        response = api.call("coordinator", "POST", "/api/v1/cases", json=body)
        assert response.status_code == 422, body
    assert api.get("coordinator", "/api/v1/cases")["items"] == []


def test_list_pages_with_an_opaque_cursor(api: Api):
    ids = [open_case(api) for _ in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get("clinician", "/api/v1/cases", params=params)
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert not cursor.isdigit()
    assert seen == ids and pages == 3


def test_list_filters_by_phase_and_state(api: Api):
    held, open_ = open_case(api), open_case(api)
    api.fire("coordinator", held, "hold", reason="Travelling.")
    by_phase = api.get("coordinator", "/api/v1/cases", params={"phase": "on_hold"})
    assert [c["id"] for c in by_phase["items"]] == [held]
    by_state = api.get("coordinator", "/api/v1/cases", params={"state": "evaluation"})
    assert [c["id"] for c in by_state["items"]] == [open_]
    default = api.get("coordinator", "/api/v1/cases")
    assert len(default["items"]) == 2 and default["next_cursor"] is None


def test_transition_and_fact_writes_send_the_new_etag(api: Api):
    case_id = open_case(api)
    response = api.call(
        "coordinator", "PUT", case_url(case_id, "/history"), json=ELIGIBLE_HISTORY, expect=200
    )
    assert response.headers["etag"] == '"2"'
    history = response.json()
    assert history["id"] and history["created_at"] == history["updated_at"]
    changed = {**ELIGIBLE_HISTORY, "insomnia_nights_per_week": 6}
    response = api.call(
        "coordinator",
        "PUT",
        case_url(case_id, "/history"),
        json=changed,
        headers={"If-Match": '"2"'},
        expect=200,
    )
    assert response.json()["id"] == history["id"]
    assert api.get("coordinator", case_url(case_id, "/history"))["insomnia_nights_per_week"] == 6
    response = api.call(
        "coordinator",
        "POST",
        case_url(case_id, "/transitions/hold"),
        json={"reason": "Away."},
        headers={"If-Match": '"3"'},
        expect=200,
    )
    assert response.headers["etag"] == '"4"' and response.json()["version"] == 4


def test_collections_read_back_newest_last(api: Api):
    case_id = open_case(api)
    for score in (5, 7, 9):
        body = {"instrument": "isi", "score": score, "taken_at": api.ago(hours=score)}
        api.post("coordinator", case_url(case_id, "/assessments"), body)
    scores = [a["score"] for a in api.items("coordinator", case_url(case_id, "/assessments"))]
    assert scores == [5, 7, 9]
    med = api.post("coordinator", case_url(case_id, "/medications"), {"name": "Ambien"})
    assert med["drug_class"] == "z_drug" and med["status"] == "active"
    # SPEC.md 4.3: only a clinician may stop a taper-required or blocking medication.
    api.call(
        "coordinator",
        "PATCH",
        case_url(case_id, f"/medications/{med['id']}"),
        json={"status": "stopped"},
        expect=403,
    )
    response = api.call(
        "clinician",
        "PATCH",
        case_url(case_id, f"/medications/{med['id']}"),
        json={"status": "stopped"},
        expect=200,
    )
    assert response.json()["status"] == "stopped"
    for suffix in ("/vitals", "/interaction-screenings", "/tapers", "/dose-clearances"):
        assert api.items("coordinator", case_url(case_id, suffix)) == []
    assert api.items("coordinator", case_url(case_id, "/sessions")) == []
    assert api.items("coordinator", case_url(case_id, "/adverse-events")) == []


def test_unknown_medication_is_a_caution_finding(api: Api):
    case_id = open_case(api)
    api.post("coordinator", case_url(case_id, "/medications"), {"name": "zzqx-unlisted"})
    screening = api.post("clinician", case_url(case_id, "/interaction-screenings"))
    assert screening["result"] == "caution"
    assert screening["findings"][0]["severity"] == "caution"


def test_transitions_list_says_what_blocks_the_case(api: Api):
    case_id = open_case(api)
    options = api.get("coordinator", case_url(case_id, "/transitions"))
    by_trigger = {o["trigger"]: o for o in options}
    assert set(by_trigger) == {"approve", "decline", "hold", "withdraw"}
    approve = by_trigger["approve"]
    assert approve["dest"] == "delivery.awaiting_prescription"
    assert approve["roles"] == ["clinician"] and approve["allowed"] is False
    # Asked by a coordinator, who holds no licence: approve needs a licensed clinician.
    assert [u["code"] for u in approve["unmet"][:2]] == ["clinician.licensed", "history.recorded"]
    assert all(u["message"] for u in approve["unmet"])
    assert by_trigger["hold"]["allowed"] is True and by_trigger["hold"]["unmet"] == []


def test_users_are_created_by_admins_with_a_token_shown_once(api: Api):
    body = {"name": "nadia", "role": "clinician", "license_states": ["TX", "CA", "TX"]}
    created = api.post("admin", "/api/v1/users", body)
    assert created["license_states"] == ["CA", "TX"] and len(created["token"]) >= 40
    me = {"patient_ref": "P-9", "patient_state": "TX"}
    api.call(created["token"], "POST", "/api/v1/cases", json=me, expect=201)
    users = api.get("admin", "/api/v1/users")["items"]
    assert [u["name"] for u in users] == ["ada", "cora", "clio", "nadia"]
    assert all("token" not in u and "token_hash" not in u for u in users)
    bad = {"name": "x y", "role": "nurse", "license_states": ["XX"]}
    problem = api.call("admin", "POST", "/api/v1/users", json=bad, expect=422).json()
    assert {tuple(e["loc"])[:2] for e in problem["errors"]} >= {("body", "name"), ("body", "role")}


PER_CASE_LISTS = (
    "/events",
    "/vitals",
    "/assessments",
    "/medications",
    "/interaction-screenings",
    "/tapers",
    "/dose-clearances",
    "/sessions",
    "/adverse-events",
    "/reminders",
)


def test_every_per_case_list_is_paged(api: Api):
    case_id = open_case(api)
    for score in range(5):
        body = {"instrument": "isi", "score": score, "taken_at": api.ago(hours=score + 1)}
        api.post("coordinator", case_url(case_id, "/assessments"), body)
    first = api.get("admin", case_url(case_id, "/assessments"), params={"limit": 2})
    assert [a["score"] for a in first["items"]] == [0, 1] and first["next_cursor"]
    second = api.get(
        "admin",
        case_url(case_id, "/assessments"),
        params={"limit": 2, "cursor": first["next_cursor"]},
    )
    assert [a["score"] for a in second["items"]] == [2, 3]
    events = api.get("admin", case_url(case_id, "/events"), params={"limit": 4})
    assert len(events["items"]) == 4 and events["next_cursor"]
    assert len(api.items("admin", case_url(case_id, "/events"), params={"limit": 1})) == 6
    for suffix in PER_CASE_LISTS:
        page = api.get("admin", case_url(case_id, suffix), params={"limit": 200})
        assert set(page) == {"items", "next_cursor"}, suffix
        for bad in ({"limit": 0}, {"limit": 201}, {"cursor": "garbage"}):
            response = api.call("admin", "GET", case_url(case_id, suffix), params=bad)
            assert response.status_code == 422, (suffix, bad)
    # A cursor of one list is refused by another.
    response = api.call(
        "admin", "GET", case_url(case_id, "/events"), params={"cursor": first["next_cursor"]}
    )
    assert response.status_code == 422
