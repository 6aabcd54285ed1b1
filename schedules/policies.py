"""The reminder policies of SPEC.md section 7, declared once as a table.

Read a row as: a reminder of ``kind`` goes ``to`` a role; each event in
``created_by`` schedules it, ``due`` after that event; it is cancelled as soon
as any condition in ``until`` holds, and whenever the case closes. A case that
goes on hold leaves its state, so that state's reminder is cancelled; resuming
enters the state again, which schedules that state's reminder afresh.
There is never more than one pending reminder per case and kind.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schedules.rules import (
    AT_ONCE,
    CheckedIn,
    EarlyThenLater,
    Entered,
    Left,
    Policy,
    Recorded,
    days,
    hours,
)
from schedules.scheduling import ReminderListener
from workflow import hooks
from workflow.casefacts import CaseFacts
from workflow.definition import CLINICIAN, COORDINATOR

# -- what a reminder asks for, as small named predicates -----------------------


def every_taper_confirmed(facts: CaseFacts) -> bool:
    """No taper plan is waiting for a clinician's confirmation."""
    return all(taper.confirmed_at is not None for taper in facts.tapers)


def preparation_recorded(facts: CaseFacts) -> bool:
    """A preparation session has been recorded."""
    return "preparation" in facts.session_stats


def integrated_since_last_dose(facts: CaseFacts) -> bool:
    """An integration session was completed after the latest dosing session."""
    dosing = facts.session_stats.get("dosing")
    if dosing is None:
        return True
    integration = facts.session_stats.get("integration")
    return integration is not None and integration.last > dosing.last


def service_events_resolved(facts: CaseFacts) -> bool:
    """Every adverse event the service recorded itself has been resolved."""
    return not any(e.recorded_by_system for e in facts.open_adverse_events)


def is_dosing(session: Any, facts: CaseFacts) -> bool:
    return session.kind == "dosing"


def is_first_dose(session: Any, facts: CaseFacts) -> bool:
    dosing = facts.session_stats.get("dosing")
    return is_dosing(session, facts) and dosing is not None and dosing.count == 1


def found_by_the_service(event: Any, facts: CaseFacts) -> bool:
    return bool(event.recorded_by_system)


# -- the table -------------------------------------------------------------------

POLICIES: tuple[Policy, ...] = (
    Policy(
        "evaluation_overdue",
        to=COORDINATOR,
        created_by=(Entered("evaluation"),),
        due=days(7),
        until=(Left("evaluation"),),
    ),
    Policy(
        "taper_checkin",
        to=CLINICIAN,
        created_by=(Recorded("taper"),),
        due=days(7),
        until=(every_taper_confirmed,),
        repeats=True,
    ),
    Policy(
        "prescription_pending",
        to=CLINICIAN,
        created_by=(Entered("delivery.awaiting_prescription"),),
        due=days(3),
        until=(Left("delivery.awaiting_prescription"),),
    ),
    Policy(
        "shipment_pending",
        to=COORDINATOR,
        created_by=(Entered("delivery.prescribed"),),
        due=days(2),
        until=(Left("delivery.prescribed"),),
    ),
    Policy(
        "delivery_overdue",
        to=COORDINATOR,
        created_by=(Entered("delivery.shipped"),),
        due=days(5),
        until=(Left("delivery.shipped"),),
    ),
    Policy(
        "preparation_due",
        to=COORDINATOR,
        created_by=(Entered("integration"),),
        due=days(3),
        until=(Left("integration"), preparation_recorded),
    ),
    Policy(
        "integration_followup",
        to=COORDINATOR,
        created_by=(Recorded("session", where=is_dosing),),
        due=hours(72),
        until=(integrated_since_last_dose,),
    ),
    Policy(
        "checkin_due",
        to=COORDINATOR,
        created_by=(Recorded("session", where=is_first_dose), CheckedIn()),
        due=EarlyThenLater(
            early=timedelta(days=7), window=timedelta(weeks=4), later=timedelta(days=28)
        ),
        repeats=True,
        restarts=True,
    ),
    Policy(
        "hold_review",
        to=CLINICIAN,
        created_by=(Entered("on_hold"),),
        due=hours(24),
        until=(Left("on_hold"),),
    ),
    Policy(
        "safety_review",
        to=CLINICIAN,
        created_by=(Recorded("adverse_event", where=found_by_the_service),),
        due=AT_ONCE,
        until=(service_events_resolved,),
    ),
)

POLICY_BY_KIND = {policy.kind: policy for policy in POLICIES}
KINDS = tuple(POLICY_BY_KIND)
LISTENER = ReminderListener(POLICIES)


def install() -> None:
    """Register the reminder listener with the workflow hook (idempotent)."""
    hooks.register(LISTENER)


def uninstall() -> None:
    """Unregister the reminder listener (tests that want the workflow alone)."""
    if LISTENER in hooks.LISTENERS:
        hooks.LISTENERS.remove(LISTENER)
