"""One guard per requirement code (SPEC.md section 3).

A guard is a small pure function of a case's facts and the clock: it returns
a message a coordinator can act on when its requirement is unmet, else
``None``. Guards never write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from workflow import drugs
from workflow.casefacts import BloodPressure, CaseFacts
from workflow.drugs import TAPER_CLASSES

Guard = Callable[[CaseFacts], str | None]
GUARDS: dict[str, Guard] = {}


@dataclass(frozen=True)
class Unmet:
    """A requirement that is not met, in a code a client can act on and words a person can."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def requirement(code: str) -> Callable[[Guard], Guard]:
    """Register ``func`` as the guard for requirement ``code``."""

    def register(func: Guard) -> Guard:
        GUARDS[code] = func
        return func

    return register


def evaluate(codes: Iterable[str], facts: CaseFacts) -> list[Unmet]:
    """Every unmet requirement among ``codes``, in the order given."""
    unmet = []
    for code in codes:
        message = GUARDS[code](facts)
        if message is not None:
            unmet.append(Unmet(code, message))
    return unmet


def found_unmet(codes: Iterable[str], facts: CaseFacts) -> list[str]:
    """The codes among ``codes`` unmet by what is recorded, not for a record still missing."""
    return [u.code for u in evaluate(codes, facts) if u.message not in MISSING_DATA]


# -- helpers -----------------------------------------------------------------

NAMES = {"phq9": "PHQ-9", "gad7": "GAD-7", "isi": "ISI"}
NO_HISTORY = "Record the clinical history first."
NO_PROFILE = "Record the patient profile (date of birth, pregnancy, breastfeeding) first."
NO_READING = "Record a blood-pressure reading."
MISSING_DATA = frozenset({NO_HISTORY, NO_PROFILE, NO_READING})
"""The messages of a requirement unmet only because a record is missing."""


def _missing_within(facts: CaseFacts, instruments: tuple[str, ...], days: float) -> list[str]:
    since = facts.now - timedelta(days=days)
    missing = []
    for instrument in instruments:
        latest = facts.latest_assessment(instrument)
        if latest is None or latest.taken_at < since:
            missing.append(NAMES[instrument])
    return missing


def latest_reading(facts: CaseFacts) -> tuple[int, int, datetime] | None:
    """The newest blood-pressure reading: from vitals or a granted clearance's pre-dose one."""
    readings = []
    if (v := facts.latest_vital) is not None:
        readings.append((v.taken_at, v.systolic, v.diastolic))
    if (c := facts.latest_granted_clearance) is not None:
        readings.append((c.created_at, c.systolic, c.diastolic))
    if not readings:
        return None
    at, systolic, diastolic = max(readings, key=lambda r: r[0])
    return systolic, diastolic, at


def recent_blood_pressure(facts: CaseFacts) -> tuple[BloodPressure, str] | None:
    """The blood pressure ``contraindication.hypertension`` judges, and how to say what it is.

    The mean of the last ``baseline_window_days`` days (SPEC.md 3.2), or the latest
    reading when none is that recent; None when there is no reading at all.
    """
    days = facts.rules.baseline_window_days
    mean = facts.blood_pressure_mean(days)
    if mean is not None:
        readings = "1 reading" if mean.readings == 1 else f"{mean.readings} readings"
        return mean, f"The mean blood pressure of the last {days:g} days ({readings})"
    latest = latest_reading(facts)
    if latest is None:
        return None
    systolic, diastolic, at = latest
    when = f"{at:%Y-%m-%d}, none within the last {days:g} days"
    return BloodPressure(systolic, diastolic), f"The latest blood pressure ({when})"


def below_limit(pressure: BloodPressure, rules: Any) -> bool:
    """SPEC.md section 0: below the limit when systolic and diastolic are both below it."""
    return pressure.systolic < rules.bp_limit_systolic and (
        pressure.diastolic < rules.bp_limit_diastolic
    )


def _mmhg(value: float) -> str:
    return f"{round(value, 1):g}"


def age_on(born: date, day: date) -> int:
    """How many whole years old someone born on ``born`` is on ``day``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def current_screening(facts: CaseFacts) -> Any | None:
    """The newest interaction screening, if nothing on the medication list changed since."""
    latest = facts.latest_screening
    if latest is None or latest.medication_list_version != facts.case.medication_list_version:
        return None
    return latest


def first_dosing_at(facts: CaseFacts) -> datetime | None:
    """When the first dose was taken (the earliest ``dosed_at``), if there was one: the one
    place that says so (SPEC.md 0)."""
    dosing = facts.session_stats.get("dosing")
    return None if dosing is None else (dosing.first_dosed or dosing.first)


def baseline_assessment(facts: CaseFacts, instrument: str) -> Any | None:
    """The baseline of ``instrument`` (SPEC.md 0): its latest score taken before the first
    dose; before any dose, its latest score so far."""
    first_dose = first_dosing_at(facts)
    if first_dose is None:
        return facts.latest_assessment(instrument)
    return facts.latest_assessment_before(instrument, first_dose)


def _classes(medication: Any) -> list[str]:
    return list(medication.drug_classes or [medication.drug_class])


def _taper_meds(facts: CaseFacts) -> list[Any]:
    return [m for m in facts.medications if TAPER_CLASSES & set(_classes(m))]


def _live_tapers(facts: CaseFacts) -> list[Any]:
    """Tapers not ended by their medication being made active again."""
    return [t for t in facts.tapers if getattr(t, "ended_at", None) is None]


def last_taken(facts: CaseFacts, medication: Any) -> date | None:
    """The later of a medication's ``stopped_on`` and its confirmed taper's ``last_dose_on``."""
    days = [medication.stopped_on] + [
        t.last_dose_on
        for t in _live_tapers(facts)
        if t.medication_id == medication.id and t.confirmed_at is not None
    ]
    return max((d for d in days if d is not None), default=None)


# -- evaluation --------------------------------------------------------------


@requirement("history.recorded")
def history_recorded(facts: CaseFacts) -> str | None:
    return None if facts.history is not None else "Record the clinical history (PUT history)."


@requirement("profile.recorded")
def profile_recorded(facts: CaseFacts) -> str | None:
    if facts.profile is not None:
        return None
    return "Record the patient profile: date of birth, pregnancy, breastfeeding (PUT profile)."


@requirement("consent.signed")
def consent_signed(facts: CaseFacts) -> str | None:
    if facts.current_consent is not None:
        return None
    version = facts.rules.consent_version
    return f"Record the patient's signed consent to version {version} (POST consents)."


@requirement("assessments.baseline")
def assessments_baseline(facts: CaseFacts) -> str | None:
    days = facts.rules.baseline_window_days
    missing = _missing_within(facts, ("phq9", "gad7", "isi"), days)
    if not missing:
        return None
    return f"Record a baseline {', '.join(missing)} (none within the last {days:g} days)."


@requirement("assessments.recent")
def assessments_recent(facts: CaseFacts) -> str | None:
    days = facts.rules.recent_window_days
    missing = _missing_within(facts, ("phq9", "isi"), days)
    if not missing:
        return None
    return f"Record a current {', '.join(missing)} (none within the last {days:g} days)."


@requirement("vitals.baseline")
def vitals_baseline(facts: CaseFacts) -> str | None:
    days = facts.rules.baseline_window_days
    latest = facts.latest_vital
    if latest is not None and latest.taken_at >= facts.now - timedelta(days=days):
        return None
    return f"Record a blood-pressure reading (none within the last {days:g} days)."


@requirement("vitals.recent")
def vitals_recent(facts: CaseFacts) -> str | None:
    days = facts.rules.vitals_recent_days
    latest = facts.latest_vital
    if latest is not None and latest.taken_at >= facts.now - timedelta(days=days):
        return None
    return f"Record a current blood-pressure reading (none within the last {days:g} days)."


@requirement("criteria.adult")
def adult(facts: CaseFacts) -> str | None:
    profile = facts.profile
    if profile is None:
        return NO_PROFILE
    years = facts.rules.adult_age_years
    if age_on(profile.date_of_birth, facts.rules.today(facts.now)) >= years:
        return None
    return (
        f"The program is for adults: the patient must be at least {years} years old today "
        "(check the date of birth in the profile)."
    )


@requirement("criteria.chronic_insomnia")
def chronic_insomnia(facts: CaseFacts) -> str | None:
    h, rules = facts.history, facts.rules
    if h is None:
        return NO_HISTORY
    nights, months = rules.insomnia_nights_min, rules.insomnia_months_min
    if h.insomnia_nights_per_week >= nights and h.insomnia_duration_months >= months:
        return None
    return (
        f"Chronic insomnia means at least {nights} nights a week for at least {months} months; "
        f"the history records {h.insomnia_nights_per_week} nights for "
        f"{h.insomnia_duration_months} months."
    )


@requirement("criteria.mood_disorder")
def mood_disorder(facts: CaseFacts) -> str | None:
    h = facts.history
    if h is None:
        return NO_HISTORY
    if not {"depression", "anxiety"} & set(h.diagnoses):
        return "The diagnoses must include depression or anxiety."
    threshold = facts.rules.mood_score_min
    scores = [facts.latest_assessment(i) for i in ("phq9", "gad7")]
    if not any(s is not None and s.score >= threshold for s in scores):
        return f"The latest PHQ-9 or GAD-7 must be at least {threshold}."
    if not h.insomnia_mood_driven:
        return "A clinician must judge that the insomnia follows the mood disorder (history)."
    return None


@requirement("criteria.treatment_resistant")
def treatment_resistant(facts: CaseFacts) -> str | None:
    h, least = facts.history, facts.rules.failed_trials_min
    if h is None:
        return NO_HISTORY
    if h.failed_antidepressant_trials >= least:
        return None
    return (
        f"Treatment resistance means at least {least} failed antidepressant treatments; "
        f"the history records {h.failed_antidepressant_trials}."
    )


@requirement("criteria.cbti_trial")
def cbti_trial(facts: CaseFacts) -> str | None:
    h = facts.history
    if h is None:
        return NO_HISTORY
    return None if h.cbti_completed else "An adequate CBT-I trial must be completed first."


@requirement("criteria.not_sleep_med_replacement")
def not_sleep_med_replacement(facts: CaseFacts) -> str | None:
    h = facts.history
    if h is None:
        return NO_HISTORY
    if not h.seeking_sleep_med_replacement:
        return None
    return "The patient is seeking a sleep-medication replacement: ketamine is not one."


# -- contraindications -------------------------------------------------------


@requirement("contraindication.substance_use")
def substance_use(facts: CaseFacts) -> str | None:
    h = facts.history
    if h is None:
        return NO_HISTORY
    if not h.substance_use_disorder_history:
        return None
    return "A history of substance use disorder contraindicates ketamine."


@requirement("contraindication.hypertension")
def hypertension(facts: CaseFacts) -> str | None:
    h, rules = facts.history, facts.rules
    if h is None:
        return NO_HISTORY
    if h.uncontrolled_hypertension:
        return "Uncontrolled hypertension in the history contraindicates ketamine."
    found = recent_blood_pressure(facts)
    if found is None:
        return NO_READING
    pressure, what = found
    if below_limit(pressure, rules):
        return None
    return (
        f"{what}, {_mmhg(pressure.systolic)}/{_mmhg(pressure.diastolic)}, must be below "
        f"{rules.bp_limit_systolic}/{rules.bp_limit_diastolic}."
    )


@requirement("contraindication.psychosis")
def psychosis(facts: CaseFacts) -> str | None:
    h = facts.history
    if h is None:
        return NO_HISTORY
    if h.active_psychosis or h.severe_psychiatric_instability:
        return "Active psychosis or severe psychiatric instability contraindicates ketamine."
    if h.psychosis_or_mania_history:
        return "A history of psychosis or mania contraindicates ketamine."
    return None


@requirement("contraindication.respiratory")
def respiratory(facts: CaseFacts) -> str | None:
    h = facts.history
    if h is None:
        return NO_HISTORY
    if h.significant_breathing_problems or h.sleep_apnea:
        return "Significant breathing problems or sleep apnea contraindicate ketamine."
    return None


@requirement("contraindication.cardiovascular")
def cardiovascular(facts: CaseFacts) -> str | None:
    h = facts.history
    if h is None:
        return NO_HISTORY
    if h.aneurysm_avm_or_ich:
        return (
            "Aneurysmal vascular disease, an arteriovenous malformation or an intracerebral "
            "haemorrhage in the history contraindicates ketamine."
        )
    if h.recent_mi_or_stroke:
        return "A myocardial infarction or stroke in the last 6 months contraindicates ketamine."
    return None


@requirement("contraindication.pregnancy")
def pregnancy(facts: CaseFacts) -> str | None:
    profile = facts.profile
    if profile is None:
        return NO_PROFILE
    if profile.pregnant or profile.breastfeeding:
        return "Pregnancy or breastfeeding (profile) contraindicates ketamine."
    return None


# -- medications -------------------------------------------------------------


@requirement("medications.classified")
def medications_classified(facts: CaseFacts) -> str | None:
    table = drugs.current_table(facts.rules)
    unknown = []
    for medication in facts.medications:
        if medication.status != "active":
            continue
        found = drugs.classes_of(medication, table)
        if drugs.UNKNOWN in found.drug_classes:
            why = f" ({'; '.join(found.notes)})" if found.notes else ""
            unknown.append(f"{medication.name}{why}")
    if not unknown:
        return None
    names = ", ".join(unknown)
    return f"A clinician must classify the medications the drug table does not know: {names}."


@requirement("screening.interactions")
def interactions_screened(facts: CaseFacts) -> str | None:
    latest = facts.latest_screening
    if latest is None:
        return "A clinician must screen the medication list for interactions."
    if latest.medication_list_version != facts.case.medication_list_version:
        return "The medication list changed since the last screening: screen it again."
    if latest.drug_table_version != drugs.current_table(facts.rules).version:
        return "The drug table changed since the last screening: screen the list again."
    days = facts.rules.screening_valid_days
    if latest.created_at < facts.now - timedelta(days=days):
        return f"The last interaction screening is more than {days:g} days old: screen again."
    if latest.result == "blocked":
        blocking = [f["medication"] for f in latest.findings if f["severity"] == "blocking"]
        return f"The interaction screening is blocked by: {', '.join(dict.fromkeys(blocking))}."
    return None


@requirement("taper.planned")
def taper_planned(facts: CaseFacts) -> str | None:
    planned = {t.medication_id for t in _live_tapers(facts)}
    missing = [m.name for m in _taper_meds(facts) if m.status == "active" and m.id not in planned]
    if not missing:
        return None
    return f"A clinician must plan a taper for: {', '.join(missing)}."


@requirement("taper.confirmed")
def taper_confirmed(facts: CaseFacts) -> str | None:
    confirmed = {t.medication_id for t in _live_tapers(facts) if t.confirmed_at is not None}
    missing = [m.name for m in _taper_meds(facts) if m.id not in confirmed or m.status == "active"]
    if not missing:
        return None
    return f"A clinician must confirm the taper is complete for: {', '.join(missing)}."


@requirement("taper.washout")
def taper_washout(facts: CaseFacts) -> str | None:
    table = drugs.current_table(facts.rules)
    today = facts.rules.today(facts.now)
    waiting = []
    for medication in facts.medications:
        found = drugs.classes_of(medication, table)
        watched = [c for c in found.drug_classes if c in TAPER_CLASSES or table.is_watched(c)]
        if not watched:
            continue
        if medication.status == "active":
            waiting.append(f"{medication.name} (still taken)")
            continue
        last = last_taken(facts, medication)
        if last is None:
            waiting.append(f"{medication.name} (no stop date recorded)")
        elif last + timedelta(days=found.washout_days) > today:
            ends = last + timedelta(days=found.washout_days)
            waiting.append(f"{medication.name} (last taken {last}, washout ends {ends})")
    if not waiting:
        return None
    return f"Wait for the washout of: {', '.join(waiting)}."


@requirement("clinician.licensed")
def clinician_licensed(facts: CaseFacts) -> str | None:
    state = facts.case.patient_state
    today = facts.rules.today(facts.now)
    if facts.actor is not None and facts.actor.licensed_in(state, today):
        return None
    return f"The acting clinician must hold a licence valid today in {state}, the patient's state."


# -- sessions and safety -----------------------------------------------------


def _has_session(facts: CaseFacts, kind: str) -> bool:
    return kind in facts.session_stats


@requirement("session.preparation")
def session_preparation(facts: CaseFacts) -> str | None:
    return None if _has_session(facts, "preparation") else "Record a completed preparation session."


@requirement("session.dosing")
def session_dosing(facts: CaseFacts) -> str | None:
    # Check the clearance itself, not just that an id is set: the requirement is a
    # *granted* clearance, whatever wrote the session row.
    if facts.dosed_with_granted_clearance:
        return None
    return "Record a completed dosing session that used a granted dose clearance."


@requirement("session.integration")
def session_integration(facts: CaseFacts) -> str | None:
    first = first_dosing_at(facts)
    integration = facts.session_stats.get("integration")
    if first is not None and integration is not None and integration.last > first:
        return None
    return "Record a completed integration session after the first dosing session."


@requirement("adverse_events.resolved")
def adverse_events_resolved(facts: CaseFacts) -> str | None:
    open_events = facts.open_adverse_events
    if not open_events:
        return None
    kinds = ", ".join(f"{e.kind} (#{e.id})" for e in open_events)
    return f"A clinician must resolve the open adverse events: {kinds}."


# -- suicide risk (SPEC.md 3.1, 4.6) -----------------------------------------------------------


@requirement("adverse_events.suicide_risk_resolved")
def suicide_risk_resolved(facts: CaseFacts) -> str | None:
    open_events = [e for e in facts.open_adverse_events if e.kind == "suicidal_ideation"]
    if not open_events:
        return None
    ids = ", ".join(f"#{e.id}" for e in open_events)
    return f"A clinician must first review and resolve the suicidal ideation ({ids})."


@requirement("safety.reassessed")
def safety_reassessed(facts: CaseFacts) -> str | None:
    """The clinician's documented risk assessment decides, not a later score of zero: the
    latest safety plan must follow the latest suicidal ideation and rate the risk low."""
    event = facts.latest_event("suicidal_ideation")
    if event is None:
        return None
    plan = facts.latest_safety_plan
    since = f"after the suicidal ideation of {event.onset_at:%Y-%m-%d %H:%M} UTC (#{event.id})"
    if plan is None or plan.reviewed_with_patient_at <= event.onset_at:
        return f"A clinician must review a safety plan with the patient {since}."
    if plan.risk_level != "low":
        return (
            f"The latest safety plan rates the suicide risk {plan.risk_level}: "
            "a clinician must reassess it as low before the case resumes."
        )
    if facts.units_on_hand > 0 and not plan.means_secured:
        return "The ketamine at home must be secured (locked away or held by the monitor)."
    return None


@requirement("medication.reconciled")
def medication_reconciled(facts: CaseFacts) -> str | None:
    """Every dispensed unit taken, returned, disposed of or lost: none at home, none on its
    way there."""
    on_its_way = facts.unreceived_dispense
    if on_its_way is not None:
        return (
            f"Dispense #{on_its_way.id} ({on_its_way.quantity_units} units) has not been "
            "received: record its receipt, then where its units went."
        )
    on_hand = facts.units_on_hand
    if on_hand == 0:
        return None
    return (
        f"{on_hand} units are still at the patient's home: record their return, disposal or "
        "loss (POST medication-returns) first."
    )


# The dose clearance's own requirements (SPEC.md 3.3) register themselves here too.
from workflow import dose_guards  # noqa: E402, F401
