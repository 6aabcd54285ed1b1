"""The dose clearance's own requirements (SPEC.md 3.3), one guard per code.

A clearance is judged with ``judge``: the request's reading and monitor are
put on the case's facts (``CaseFacts.dose_request``) for the guards that need
them, and every code of ``CLEARANCE_REQUIREMENTS`` (the codes of 3.3, then
``ONGOING``) is evaluated by ``workflow.guards.evaluate``, like a trigger's.
An open clearance counts as a dose at its grant time, so two doses can never
be cleared at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models.settings import Settings
from workflow.casefacts import CaseFacts, DoseRequest, Window
from workflow.definition import CLEARANCE_REQUIREMENTS, DOSING_STATES
from workflow.guards import Unmet, evaluate, requirement


def judge(facts: CaseFacts, request: DoseRequest) -> list[Unmet]:
    """Every unmet requirement of a dose clearance for ``request``, in table order."""
    facts.dose_request = request
    try:
        return evaluate(CLEARANCE_REQUIREMENTS, facts)
    finally:
        facts.dose_request = None


def below_limit(systolic: int, diastolic: int, limit: tuple[int, int]) -> bool:
    """SPEC.md section 0: below a limit when the systolic and the diastolic are both below."""
    return systolic < limit[0] and diastolic < limit[1]


def is_crisis(systolic: int, diastolic: int, rules: Settings) -> bool:
    """At or above the crisis limit: the systolic or the diastolic (SPEC.md section 0)."""
    crisis = (rules.bp_crisis_systolic, rules.bp_crisis_diastolic)
    return not below_limit(systolic, diastolic, crisis)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


@requirement("case.dosing_state")
def dosing_state(facts: CaseFacts) -> str | None:
    if facts.case.state in DOSING_STATES:
        return None
    state = facts.case.state
    return f"Doses are cleared only in integration or monitoring; the case is in {state}."


@requirement("emergency_contact.recorded")
def emergency_contact(facts: CaseFacts) -> str | None:
    if facts.emergency_contact_recorded:
        return None
    return "Record an emergency contact (POST emergency-contacts)."


@requirement("monitor.registered")
def monitor_registered(facts: CaseFacts) -> str | None:
    request = facts.dose_request
    if request is None:
        return "Name the treatment monitor who stays through the dose (monitor_id)."
    monitor = facts.monitor(request.monitor_id)
    if monitor is None:
        return (
            f"Monitor {request.monitor_id} is not registered on this case: "
            "register the treatment monitor (POST monitors)."
        )
    if not monitor.active:
        return f"Monitor {request.monitor_id} is inactive: name an active treatment monitor."
    return None


def _doses_and_open(facts: CaseFacts, hours: float) -> Window:
    since = facts.now - timedelta(hours=hours)
    doses, opened = facts.doses_since(since), facts.open_clearances_since(since)
    latest = [at for at in (doses.latest, opened.latest) if at is not None]
    return Window(doses.count + opened.count, max(latest, default=None))


@requirement("dose.interval")
def dose_interval(facts: CaseFacts) -> str | None:
    """An open clearance blocks the next whatever its age (two are never open at once);
    a dose, or an open clearance at its grant, within the interval blocks it too."""
    if facts.open_clearances:
        clearance = facts.open_clearances[0]
        return (
            f"Dose clearance #{clearance.id} (granted {_when(clearance.created_at)}) is still "
            "open: record the dose that used it, or cancel it if the dose was not taken."
        )
    hours = facts.rules.min_hours_between_doses
    if hours <= 0:
        return None
    recent = facts.doses_since(facts.now - timedelta(hours=hours))
    if recent.latest is None:
        return None
    return (
        f"A dose was taken within the last {hours:g} hours (at {_when(recent.latest)}): "
        f"the next may be cleared from {_when(recent.latest + timedelta(hours=hours))}."
    )


@requirement("dose.weekly_limit")
def dose_weekly_limit(facts: CaseFacts) -> str | None:
    hours, most = facts.rules.dose_limit_window_hours, facts.rules.max_doses_per_window
    if hours <= 0:
        return None
    recent = _doses_and_open(facts, hours)
    if recent.count < most:
        return None
    return (
        f"{recent.count} doses (open clearances included) within the last {hours:g} hours: "
        f"at most {most} are allowed."
    )


@requirement("units.on_hand")
def units_on_hand(facts: CaseFacts) -> str | None:
    per_dose = (facts.case.prescription or {}).get("units_per_dose")
    if per_dose is None:
        return "The case has no prescription: a clinician must prescribe first."
    on_hand = facts.units_on_hand
    if on_hand >= per_dose:
        return None
    return (
        f"{on_hand} units are on hand and a dose takes {per_dose}: record the receipt of a "
        "dispense, or dispense a refill."
    )


@requirement("dose.blood_pressure")
def dose_blood_pressure(facts: CaseFacts) -> str | None:
    request, rules = facts.dose_request, facts.rules
    if request is None:
        return "Take a pre-dose blood pressure."
    limit = (rules.bp_limit_systolic, rules.bp_limit_diastolic)
    if below_limit(request.systolic, request.diastolic, limit):
        return None
    return (
        f"The pre-dose blood pressure {request.systolic}/{request.diastolic} must be below "
        f"{limit[0]}/{limit[1]} to dose."
    )
