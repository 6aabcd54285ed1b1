"""The medication list, interaction screenings and tapers (SPEC.md section 4)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

from models.facts import AdverseEvent, Medication, Taper
from models.schemas import MedicationCreate, MedicationUpdate, TaperConfirm
from models.settings import settings
from tests.workflow.conftest import Clinic
from workflow import drugs, medications
from workflow.errors import Conflict, Forbidden, ValidationFailed
from workflow.guards import GUARDS


def screening_unmet(clinic: Clinic, case_id: int) -> str | None:
    """The screening.interactions message for the case now, or None when it is met."""
    return GUARDS["screening.interactions"](clinic.facts(case_id))


@pytest.mark.parametrize(
    ("name", "drug_class"),
    [
        ("Xanax 0.5 mg", "benzodiazepine"),
        ("Ambien CR", "z_drug"),
        ("oxycodone", "opioid"),
        ("sertraline", "ssri"),
        ("Frobnitol", "unknown"),
    ],
)
def test_a_medication_is_classified_when_added(clinic, name, drug_class):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, name)
    assert (medication.drug_class, medication.status) == (drug_class, "active")


@pytest.mark.parametrize(
    ("meds", "result", "severities"),
    [
        ((), "clear", []),
        (("sertraline",), "clear", []),
        (("Frobnitol",), "caution", ["caution"]),
        (("lamotrigine",), "caution", ["caution"]),
        (("Xanax",), "caution", ["taper_required"]),
        (("Ambien", "oxycodone"), "blocked", ["taper_required", "blocking"]),
    ],
)
def test_a_screening_reads_the_active_list(clinic, meds, result, severities):
    case_id = clinic.open_case()
    for name in meds:
        clinic.add_med(case_id, name)

    screening = clinic.screen(case_id)

    assert screening.result == result
    assert [f["severity"] for f in screening.findings] == severities
    assert screening.clinician_id == clinic.clinician.id


def test_a_stopped_medication_is_screened_only_until_its_washout_ends(clinic):
    case_id = clinic.open_case()
    opioid = clinic.add_med(case_id, "oxycodone")
    assert clinic.screen(case_id).result == "blocked"

    clinic.set_med_status(case_id, opioid.id, "stopped", actor=clinic.clinician)
    screening = clinic.screen(case_id)

    # SPEC.md 4.3: a stopped blocking medication stays blocking until its washout has passed.
    assert screening.result == "blocked"
    assert f"stopped on {clinic.now.date()}" in screening.findings[0]["message"]
    clinic.tick(days=7)
    assert (clinic.screen(case_id).result, screening_unmet(clinic, case_id)) == ("clear", None)


def test_adding_a_medication_makes_earlier_screenings_stale(clinic):
    case_id = clinic.open_case()
    clinic.screen(case_id)
    assert screening_unmet(clinic, case_id) is None

    clinic.add_med(case_id, "sertraline")

    assert "changed since the last screening" in screening_unmet(clinic, case_id)
    clinic.screen(case_id)
    assert screening_unmet(clinic, case_id) is None


@pytest.mark.parametrize("status", ["stopped", "active"])
def test_changing_a_status_makes_earlier_screenings_stale(clinic, status):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, "sertraline")
    if status == "active":
        clinic.set_med_status(case_id, medication.id, "stopped")
    clinic.screen(case_id)
    version = clinic.case(case_id).medication_list_version

    clinic.set_med_status(case_id, medication.id, status)

    assert clinic.case(case_id).medication_list_version == version + 1
    assert screening_unmet(clinic, case_id) is not None


def test_setting_the_same_status_again_is_not_a_change(clinic):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, "sertraline")
    clinic.screen(case_id)
    before = clinic.case(case_id)

    clinic.set_med_status(case_id, medication.id, "active")

    after = clinic.case(case_id)
    assert after.medication_list_version == before.medication_list_version
    assert after.version == before.version + 1  # still a write, still audited
    assert screening_unmet(clinic, case_id) is None


def test_a_blocked_screening_names_the_blocking_medication(clinic):
    case_id = clinic.open_case()
    clinic.add_med(case_id, "memantine")
    clinic.screen(case_id)
    assert screening_unmet(clinic, case_id).endswith("blocked by: memantine.")


# -- tapers -------------------------------------------------------------------------------


def test_taper_confirmation_stops_the_medication_and_stales_the_screening(clinic):
    case_id = clinic.open_case()
    benzo = clinic.add_med(case_id, "Klonopin")
    taper = clinic.plan_taper(case_id, benzo.id)
    clinic.screen(case_id)
    version = clinic.case(case_id).medication_list_version
    clinic.tick(days=21)

    confirmed = clinic.confirm_taper(case_id, taper.id, last_dose_on=clinic.now.date())

    assert (confirmed.confirmed_at, confirmed.confirmed_by) == (clinic.now, clinic.clinician.id)
    assert confirmed.last_dose_on == clinic.now.date()
    (medication,) = clinic.rows(Medication, case_id)
    assert (medication.status, medication.updated_at) == ("stopped", clinic.now)
    assert clinic.case(case_id).medication_list_version == version + 1
    assert screening_unmet(clinic, case_id) is not None


def test_confirming_a_taper_of_an_already_stopped_medication_keeps_the_list(clinic):
    case_id = clinic.open_case()
    benzo = clinic.add_med(case_id, "Valium")
    taper = clinic.plan_taper(case_id, benzo.id)
    clinic.set_med_status(case_id, benzo.id, "stopped", actor=clinic.clinician)
    clinic.screen(case_id)

    clinic.confirm_taper(case_id, taper.id)

    assert screening_unmet(clinic, case_id) is None


def test_a_taper_is_confirmed_only_once(clinic):
    case_id = clinic.open_case()
    taper = clinic.plan_taper(case_id, clinic.add_med(case_id, "Ativan").id)
    clinic.confirm_taper(case_id, taper.id)
    before = clinic.snapshot(case_id)

    with pytest.raises(Conflict):
        clinic.confirm_taper(case_id, taper.id)

    assert clinic.snapshot(case_id) == before


def test_a_taper_last_dose_in_the_future_is_refused(clinic):
    case_id = clinic.open_case()
    taper = clinic.plan_taper(case_id, clinic.add_med(case_id, "Ativan").id)
    before = clinic.snapshot(case_id)

    with pytest.raises(ValidationFailed):
        clinic.confirm_taper(case_id, taper.id, last_dose_on=clinic.now.date() + timedelta(1))

    assert clinic.snapshot(case_id) == before


def refused_last_dose(clinic: Clinic, case_id: int, taper_id: int, day) -> str:
    """Confirm with ``day`` as the last dose, expecting a 422 on it that changes nothing."""
    before = clinic.snapshot(case_id)
    with pytest.raises(ValidationFailed) as refused:
        clinic.confirm_taper(case_id, taper_id, last_dose_on=day)
    assert [e["loc"] for e in refused.value.errors] == [["body", "last_dose_on"]]
    assert clinic.snapshot(case_id) == before
    return refused.value.detail


def test_a_medication_taken_when_its_taper_was_planned_was_last_taken_on_or_after_the_plan(
    clinic,
):
    case_id = clinic.open_case()
    taper = clinic.plan_taper(case_id, clinic.add_med(case_id, "Ativan").id)
    planned_on = clinic.now.date()
    assert taper.active_when_planned is True
    clinic.tick(days=14)

    message = refused_last_dose(clinic, case_id, taper.id, planned_on - timedelta(days=1))
    assert str(planned_on) in message

    confirmed = clinic.confirm_taper(case_id, taper.id, last_dose_on=planned_on)
    assert confirmed.last_dose_on == planned_on


def test_a_medication_stopped_before_its_taper_was_planned_was_last_taken_by_its_stop(clinic):
    case_id = clinic.open_case()
    benzo = clinic.add_med(case_id, "Xanax")
    stopped_on = clinic.now.date() - timedelta(days=10)
    clinic.set_med_status(case_id, benzo.id, "stopped", clinic.clinician, stopped_on=stopped_on)
    taper = clinic.plan_taper(case_id, benzo.id)
    assert taper.active_when_planned is False

    message = refused_last_dose(clinic, case_id, taper.id, stopped_on + timedelta(days=1))
    assert str(stopped_on) in message
    refused_last_dose(clinic, case_id, taper.id, clinic.now.date() + timedelta(days=1))

    earlier = stopped_on - timedelta(days=20)  # before the plan: allowed, the drug was stopped
    confirmed = clinic.confirm_taper(case_id, taper.id, last_dose_on=earlier)
    assert confirmed.last_dose_on == earlier
    (medication,) = clinic.rows(Medication, case_id)
    assert medication.stopped_on == earlier  # the earlier date is the stop date


def test_the_last_dose_day_is_today_in_the_program_s_time_zone(clinic):
    case_id = clinic.open_case()
    taper = clinic.plan_taper(case_id, clinic.add_med(case_id, "Ativan").id)
    clinic.tick(days=3)
    late = clinic.now.replace(hour=23, minute=30)  # already tomorrow in Auckland
    rules = settings.model_copy(update={"timezone": "Pacific/Auckland"})
    tomorrow = late.date() + timedelta(days=1)
    confirmed = clinic.call(
        medications.confirm_taper,
        case_id=case_id,
        taper_id=taper.id,
        data=TaperConfirm(last_dose_on=tomorrow),
        actor=clinic.clinician,
        now=late,
        rules=rules,
    )
    assert confirmed.last_dose_on == tomorrow


def test_a_taper_needs_a_medication_of_this_case_and_none_in_progress(clinic):
    case_id, other = clinic.open_case(), clinic.open_case()
    benzo = clinic.add_med(case_id, "Restoril")
    stopped = clinic.add_med(case_id, "Lunesta")
    clinic.set_med_status(case_id, stopped.id, "stopped", actor=clinic.clinician)
    elsewhere = clinic.add_med(other, "Sonata")
    clinic.plan_taper(case_id, benzo.id)
    before = clinic.snapshot(case_id)

    with pytest.raises(Conflict):
        clinic.plan_taper(case_id, benzo.id)
    with pytest.raises(ValidationFailed):
        clinic.plan_taper(case_id, elsewhere.id)
    with pytest.raises(ValidationFailed):
        clinic.plan_taper(case_id, 999)

    assert clinic.snapshot(case_id) == before
    # SPEC.md v2 4.3: a medication already stopped is planned and confirmed the same way.
    assert clinic.plan_taper(case_id, stopped.id).medication_id == stopped.id


# -- drug knowledge (SPEC.md v2 4.3) -------------------------------------------------------


def guard(clinic: Clinic, case_id: int, code: str) -> str | None:
    return GUARDS[code](clinic.facts(case_id))


def patch(clinic: Clinic, case_id: int, medication_id: int | None, actor=None, **fields):
    return clinic.call(
        medications.update_medication,
        case_id=case_id,
        medication_id=medication_id,
        data=MedicationUpdate(**fields),
        actor=actor or clinic.clinician,
    )


def learnt_table(tmp_path: Path, *rows: str, replace: tuple[str, str] | None = None) -> str:
    for name in ("drug_names.csv", "interactions.csv"):
        with resources.as_file(resources.files("workflow") / "data" / name) as path:
            shutil.copy(path, tmp_path / name)
    names = tmp_path / "drug_names.csv"
    names.write_text(names.read_text() + "".join(f"{row}\n" for row in rows))
    if replace:
        interactions = tmp_path / "interactions.csv"
        interactions.write_text(interactions.read_text().replace(*replace))
    return str(tmp_path)


def test_a_combination_is_stored_with_every_class(clinic):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, "sertraline + clobazam")
    assert medication.drug_classes == ["ssri", "antiseizure_benzodiazepine"]
    assert medication.drug_class == "antiseizure_benzodiazepine"


def test_an_unknown_name_leaves_medications_classified_unmet_until_a_clinician_classifies_it(
    clinic,
):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, "Frobnitol 5 mg")
    clinic.add_med(case_id, "alprazolm")
    assert "Frobnitol 5 mg" in guard(clinic, case_id, "medications.classified")
    assert "did you mean alprazolam" in guard(clinic, case_id, "medications.classified")

    updated = patch(
        clinic, case_id, medication.id, drug_class="no_known_interaction", class_reason="Vitamin."
    )

    assert (updated.drug_classes, updated.drug_class) == (
        ["no_known_interaction"],
        "no_known_interaction",
    )
    assert (updated.class_reason, updated.class_set_by) == ("Vitamin.", clinic.clinician.id)
    (event,) = [e for e in clinic.events(case_id) if e.data.get("fact") == "medication_update"]
    assert event.data["record"]["class_reason"] == "Vitamin."
    assert event.actor_id == clinic.clinician.id
    message = guard(clinic, case_id, "medications.classified")
    assert "Frobnitol" not in message and "alprazolm" in message


def test_only_a_clinician_classifies_and_only_names_the_table_does_not_know(clinic):
    case_id = clinic.open_case()
    unknown = clinic.add_med(case_id, "Frobnitol")
    known = clinic.add_med(case_id, "oxycodone")
    before = clinic.snapshot(case_id)

    with pytest.raises(Forbidden):
        patch(clinic, case_id, unknown.id, clinic.coordinator, drug_class="ssri", class_reason="x")
    with pytest.raises(Conflict):
        patch(clinic, case_id, known.id, drug_class="no_known_interaction", class_reason="x")
    with pytest.raises(ValidationFailed):
        patch(clinic, case_id, unknown.id, drug_class="made_up", class_reason="x")
    with pytest.raises(ValidationFailed):
        patch(clinic, case_id, unknown.id, drug_class="unknown", class_reason="x")

    assert clinic.snapshot(case_id) == before


@pytest.mark.parametrize("name", ["oxycodone", "Xanax", "Ambien", "clobazam", "Nardil"])
def test_a_coordinator_may_not_stop_a_taper_or_blocking_medication(clinic, name):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, name)
    before = clinic.snapshot(case_id)

    with pytest.raises(Forbidden):
        clinic.set_med_status(case_id, medication.id, "stopped")

    assert clinic.snapshot(case_id) == before
    stopped = clinic.set_med_status(case_id, medication.id, "stopped", actor=clinic.clinician)
    assert (stopped.status, stopped.stopped_on) == ("stopped", clinic.now.date())


def test_a_coordinator_may_stop_other_medications_with_a_date(clinic):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, "sertraline")
    day = clinic.now.date() - timedelta(days=3)
    stopped = clinic.set_med_status(case_id, medication.id, "stopped", stopped_on=day)
    assert (stopped.status, stopped.stopped_on) == ("stopped", day)
    with pytest.raises(ValidationFailed):
        clinic.set_med_status(
            case_id, medication.id, "stopped", stopped_on=clinic.now.date() + timedelta(days=1)
        )


def test_an_already_stopped_medication_can_be_added(clinic):
    case_id = clinic.open_case()
    day = clinic.now.date() - timedelta(days=10)
    data = MedicationCreate(name="Klonopin", status="stopped", stopped_on=day)
    medication = clinic.call(
        medications.add_medication, case_id=case_id, data=data, actor=clinic.coordinator
    )
    assert (medication.status, medication.stopped_on) == ("stopped", day)
    # Clonazepam is long-acting: a 14-day washout, 10 days gone.
    assert "washout ends" in guard(clinic, case_id, "taper.washout")
    clinic.tick(days=4)
    assert guard(clinic, case_id, "taper.washout") is None


def test_making_a_medication_active_again_clears_stopped_on_and_ends_its_taper(clinic):
    case_id = clinic.open_case()
    benzo = clinic.add_med(case_id, "lorazepam")
    taper = clinic.plan_taper(case_id, benzo.id)
    clinic.confirm_taper(case_id, taper.id)
    clinic.tick(days=10)
    assert guard(clinic, case_id, "taper.confirmed") is None
    assert guard(clinic, case_id, "taper.washout") is None

    active = clinic.set_med_status(case_id, benzo.id, "active")

    assert (active.status, active.stopped_on) == ("active", None)
    (ended,) = clinic.rows(Taper, case_id)
    assert ended.ended_at == clinic.now
    assert "lorazepam" in guard(clinic, case_id, "taper.planned")
    assert "lorazepam" in guard(clinic, case_id, "taper.confirmed")
    assert "still taken" in guard(clinic, case_id, "taper.washout")
    # A new taper can be planned; the ended one cannot be confirmed.
    with pytest.raises(Conflict):
        clinic.confirm_taper(case_id, ended.id)
    clinic.plan_taper(case_id, benzo.id)
    assert guard(clinic, case_id, "taper.planned") is None


def test_taper_washout_counts_from_the_later_of_stop_and_last_dose(clinic):
    case_id = clinic.open_case()
    benzo = clinic.add_med(case_id, "alprazolam")
    opioid = clinic.add_med(case_id, "tramadol")
    clinic.add_med(case_id, "sertraline")
    taper = clinic.plan_taper(case_id, benzo.id)
    clinic.tick(days=5)
    clinic.confirm_taper(case_id, taper.id, last_dose_on=clinic.now.date())
    clinic.set_med_status(case_id, opioid.id, "stopped", actor=clinic.clinician)
    message = guard(clinic, case_id, "taper.washout")
    assert "alprazolam" in message and "tramadol" in message and "sertraline" not in message

    clinic.tick(days=6)
    assert guard(clinic, case_id, "taper.washout") is not None
    clinic.tick(days=1)
    assert guard(clinic, case_id, "taper.washout") is None


def test_an_antiseizure_benzodiazepine_is_referred_not_tapered(clinic):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, "Onfi 10 mg")
    assert clinic.screen(case_id).result == "blocked"
    with pytest.raises(Conflict):
        clinic.plan_taper(case_id, medication.id)
    assert guard(clinic, case_id, "taper.planned") is None  # not on the taper track


def test_a_screening_records_the_table_version_and_goes_stale_with_the_table(
    clinic, tmp_path, monkeypatch
):
    case_id = clinic.open_case()
    clinic.add_med(case_id, "sertraline")
    screening = clinic.screen(case_id)
    assert screening.drug_table_version == drugs.current_table().version
    assert guard(clinic, case_id, "screening.interactions") is None

    directory = learnt_table(tmp_path, replace=("opioid,blocking,7,", "opioid,blocking,10,"))
    monkeypatch.setattr(settings, "drug_table_dir", directory)

    assert "drug table changed" in guard(clinic, case_id, "screening.interactions")
    clinic.screen(case_id)
    assert guard(clinic, case_id, "screening.interactions") is None


def test_a_screening_is_valid_for_screening_valid_days(clinic, monkeypatch):
    case_id = clinic.open_case()
    clinic.screen(case_id)
    clinic.tick(days=30)
    assert guard(clinic, case_id, "screening.interactions") is None
    clinic.tick(seconds=1)
    assert "more than 30 days old" in guard(clinic, case_id, "screening.interactions")
    monkeypatch.setattr(settings, "screening_valid_days", 45)
    assert guard(clinic, case_id, "screening.interactions") is None


def test_a_stored_unknown_becomes_known_when_the_table_learns_the_name(
    clinic, tmp_path, monkeypatch
):
    case_id = clinic.open_case()
    medication = clinic.add_med(case_id, "Frobnitol")
    assert clinic.screen(case_id).result == "caution"
    directory = learnt_table(tmp_path, "frobnitol,opioid,,program_policy,a test opioid source")
    monkeypatch.setattr(settings, "drug_table_dir", directory)

    screening = clinic.screen(case_id)

    assert screening.result == "blocked"
    (stored,) = clinic.rows(Medication, case_id)
    assert (stored.id, stored.drug_classes, stored.drug_class) == (
        medication.id,
        ["opioid"],
        "opioid",
    )
    assert guard(clinic, case_id, "medications.classified") is None


def test_a_blocking_medication_on_an_approved_case_is_an_adverse_event(clinic):
    case_id = clinic.case_in("delivery.awaiting_prescription")
    clinic.add_med(case_id, "lisinopril")
    assert clinic.rows(AdverseEvent, case_id) == []

    medication = clinic.add_med(case_id, "methadone 10 mg")

    (event,) = clinic.rows(AdverseEvent, case_id)
    assert (event.kind, event.severity, event.recorded_by_system) == ("other", "moderate", True)
    assert event.description.startswith("new interacting medication: methadone 10 mg")
    clinic.set_med_status(case_id, medication.id, "stopped", actor=clinic.clinician)
    clinic.set_med_status(case_id, medication.id, "active")
    assert len(clinic.rows(AdverseEvent, case_id)) == 2


def test_a_blocking_medication_before_approval_is_only_a_finding(clinic):
    case_id = clinic.open_case()
    clinic.add_med(case_id, "methadone")
    assert clinic.rows(AdverseEvent, case_id) == []
