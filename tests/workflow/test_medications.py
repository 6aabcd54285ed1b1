"""The medication list, interaction screenings and tapers (SPEC.md section 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.facts import Medication
from tests.workflow.conftest import Clinic
from workflow.errors import Conflict, ValidationFailed
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


def test_a_stopped_medication_is_not_screened(clinic):
    case_id = clinic.open_case()
    opioid = clinic.add_med(case_id, "oxycodone")
    assert clinic.screen(case_id).result == "blocked"

    clinic.set_med_status(case_id, opioid.id, "stopped")

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
    clinic.set_med_status(case_id, benzo.id, "stopped")
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


def test_a_taper_needs_an_active_medication_of_this_case_and_none_in_progress(clinic):
    case_id, other = clinic.open_case(), clinic.open_case()
    benzo = clinic.add_med(case_id, "Restoril")
    stopped = clinic.add_med(case_id, "Lunesta")
    clinic.set_med_status(case_id, stopped.id, "stopped")
    elsewhere = clinic.add_med(other, "Sonata")
    clinic.plan_taper(case_id, benzo.id)
    before = clinic.snapshot(case_id)

    with pytest.raises(Conflict):
        clinic.plan_taper(case_id, benzo.id)
    with pytest.raises(Conflict):
        clinic.plan_taper(case_id, stopped.id)
    with pytest.raises(ValidationFailed):
        clinic.plan_taper(case_id, elsewhere.id)
    with pytest.raises(ValidationFailed):
        clinic.plan_taper(case_id, 999)

    assert clinic.snapshot(case_id) == before
