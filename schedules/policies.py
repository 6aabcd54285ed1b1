"""The reminder policies of SPEC.md section 7, declared once as a table.

Read a row as: a reminder of ``kind`` goes ``to`` a role; each event in
``created_by`` schedules it, ``due`` after that event; while unacknowledged it
is delivered again every ``repeat_after``, and ``escalate_after`` past due one
escalation goes to ``escalate_to``. It is cancelled as soon as any condition in
``until`` (or ``done``) holds, and when the case closes, except the two
reviews. A fact's write checks only the reminders that fact can end
(``ended_by``); a transition checks every one. A case that goes on hold leaves
its state, so that state's reminder is cancelled; resuming enters the state
again, which schedules it afresh; a hold cancels no other reminder. One open
reminder per case and kind, except escalations (one per original) and
``taper_checkin`` (one per unconfirmed taper).
A reminder goes to the case's assigned user of its role, and follows the
assignment while it is open (``schedules.scheduling.readdress``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from models.reminders import ESCALATION, Reminder
from models.tables import CLOSED_PHASE
from schedules.rules import (
    AT_ONCE,
    AfterWashout,
    CheckedIn,
    Done,
    EarlyThenLater,
    Entered,
    Left,
    Policy,
    Recorded,
    SettingDays,
    days,
    hours,
)
from schedules.scheduling import ReminderListener
from workflow import hooks
from workflow.casefacts import CaseFacts
from workflow.definition import CLINICIAN, COORDINATOR
from workflow.risk import EVENT_REVIEW, REVIEW_BY_REMINDER, SAFETY_REVIEW

MINUTE = timedelta(minutes=1)

# -- what a reminder asks for, as small named predicates -----------------------


def _waiting(taper: Any) -> bool:
    """A taper still waiting for a clinician's confirmation (not confirmed, not ended)."""
    return taper.confirmed_at is None and taper.ended_at is None


def a_taper_waits(facts: CaseFacts) -> bool:
    """Some taper plan is waiting for a clinician's confirmation."""
    return any(_waiting(taper) for taper in facts.tapers)


def taper_settled(facts: CaseFacts, reminder: Reminder | None) -> bool:
    """The reminder's taper is confirmed, or ended by its medication being made active again.

    A check-in made before reminders knew their taper waits for every taper of the case.
    """
    if reminder is None:
        return False
    if reminder.taper_id is None:
        return not a_taper_waits(facts)
    return not any(t.id == reminder.taper_id and _waiting(t) for t in facts.tapers)


def awaiting_prescription(record: Any, facts: CaseFacts) -> bool:
    """The case waits for its prescription (a taper confirmed now may let it go on)."""
    return facts.case.state == "delivery.awaiting_prescription"


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


def approved_and_open(screening: Any, facts: CaseFacts) -> bool:
    """The case is past approval and not closed (on hold counts, unless held from evaluation)."""
    case = facts.case
    state = case.held_from if case.state == "on_hold" else case.state
    return case.phase != CLOSED_PHASE and state not in (None, "evaluation")


def newer_screening(facts: CaseFacts, reminder: Reminder | None) -> bool:
    """A screening was recorded after this reminder was made."""
    if reminder is None:
        return False
    latest = facts.latest_screening
    return latest is not None and latest.created_at > reminder.created_at


def counted_since(facts: CaseFacts, reminder: Reminder | None) -> bool:
    """A medication count was taken since the latest dispense was received."""
    count, received = facts.last_count, facts.last_receipt
    return count is not None and (received is None or count.counted_at >= received)


def is_dosing(session: Any, facts: CaseFacts) -> bool:
    return session.kind == "dosing"


def is_first_dose(session: Any, facts: CaseFacts) -> bool:
    dosing = facts.session_stats.get("dosing")
    return is_dosing(session, facts) and dosing is not None and dosing.count == 1


def opens(review: str) -> Callable[[Any, CaseFacts], bool]:
    """The adverse events that open ``review``: ``workflow.risk.REVIEWS`` says which."""
    row = REVIEW_BY_REMINDER[review]

    def opened_by(event: Any, facts: CaseFacts) -> bool:
        return row.opened_by(event)

    opened_by.__name__ = f"opens_{review}"
    return opened_by


def reviewed(opened_by: Callable[[Any, CaseFacts], bool]) -> Done:
    """A review is done when every adverse event that opened it, or was recorded while it was
    open, is resolved. Closing the case does not end it (``outlives_close``)."""

    def done(facts: CaseFacts, reminder: Reminder | None) -> bool:
        since = reminder.created_at if reminder is not None else None
        return not any(
            opened_by(e, facts) or (since is not None and e.created_at >= since)
            for e in facts.open_adverse_events
        )

    return done


# -- the table -------------------------------------------------------------------
# kind, to, created by, due, repeat_after, escalate_after, escalate_to: SPEC.md section 7.

DAY, HOUR = timedelta(days=1), timedelta(hours=1)

POLICIES: tuple[Policy, ...] = (
    Policy(
        "evaluation_overdue",
        to=COORDINATOR,
        created_by=(Entered("evaluation"),),
        due=days(7),
        repeat_after=DAY,
        escalate_after=3 * DAY,
        escalate_to=CLINICIAN,
        until=(Left("evaluation"),),
    ),
    Policy(
        "taper_checkin",
        to=CLINICIAN,
        created_by=(Recorded("taper"),),
        due=days(7),
        repeat_after=DAY,
        escalate_after=3 * DAY,
        escalate_to=CLINICIAN,
        done=taper_settled,
        recurs=True,
        per_taper=True,
        ended_by=frozenset({"taper_confirm", "medication_update"}),
    ),
    Policy(
        "prescription_pending",
        to=CLINICIAN,
        created_by=(
            Entered("delivery.awaiting_prescription"),
            Recorded("taper_confirm", where=awaiting_prescription),
        ),
        due=AfterWashout(timedelta(days=3)),
        repeat_after=DAY,
        escalate_after=2 * DAY,
        escalate_to=CLINICIAN,
        # Not while a taper waits: its confirmation (the last one) makes it.
        until=(Left("delivery.awaiting_prescription"), a_taper_waits),
        ended_by=frozenset({"taper"}),
    ),
    Policy(
        "shipment_pending",
        to=COORDINATOR,
        created_by=(Entered("delivery.prescribed"),),
        due=days(2),
        repeat_after=DAY,
        escalate_after=2 * DAY,
        escalate_to=CLINICIAN,
        until=(Left("delivery.prescribed"),),
    ),
    Policy(
        "delivery_overdue",
        to=COORDINATOR,
        created_by=(Entered("delivery.shipped"),),
        due=days(5),
        repeat_after=DAY,
        escalate_after=2 * DAY,
        escalate_to=CLINICIAN,
        until=(Left("delivery.shipped"),),
    ),
    Policy(
        "preparation_due",
        to=COORDINATOR,
        created_by=(Entered("integration"),),
        due=days(3),
        repeat_after=DAY,
        escalate_after=3 * DAY,
        escalate_to=CLINICIAN,
        until=(Left("integration"), preparation_recorded),
        ended_by=frozenset({"session"}),
    ),
    Policy(
        "integration_followup",
        to=COORDINATOR,
        created_by=(Recorded("session", where=is_dosing),),
        due=hours(72),
        repeat_after=DAY,
        escalate_after=2 * DAY,
        escalate_to=CLINICIAN,
        until=(integrated_since_last_dose,),
        ended_by=frozenset({"session"}),
    ),
    Policy(
        "checkin_due",
        to=COORDINATOR,
        created_by=(Recorded("session", where=is_first_dose), CheckedIn()),
        due=EarlyThenLater(
            early=timedelta(days=7), window=timedelta(weeks=4), later=timedelta(days=12)
        ),
        repeat_after=DAY,
        escalate_after=3 * DAY,
        escalate_to=CLINICIAN,
        recurs=True,
        restarts=True,
    ),
    Policy(
        "screening_due",
        to=CLINICIAN,
        created_by=(Recorded("interaction_screening", where=approved_and_open),),
        due=SettingDays(lambda rules: rules.screening_valid_days, before=3),
        repeat_after=DAY,
        escalate_after=3 * DAY,
        escalate_to=CLINICIAN,
        done=newer_screening,
        ended_by=frozenset({"interaction_screening"}),
        restarts=True,
    ),
    Policy(
        "count_due",
        to=COORDINATOR,
        created_by=(Recorded("dispense_receipt"),),
        due=days(14),
        repeat_after=DAY,
        escalate_after=3 * DAY,
        escalate_to=CLINICIAN,
        done=counted_since,
        ended_by=frozenset({"medication_count"}),
        restarts=True,
    ),
    Policy(
        "hold_review",
        to=CLINICIAN,
        created_by=(Entered("on_hold"),),
        due=hours(24),
        repeat_after=4 * HOUR,
        escalate_after=24 * HOUR,
        escalate_to=CLINICIAN,
        until=(Left("on_hold"),),
    ),
    Policy(
        SAFETY_REVIEW,
        to=CLINICIAN,
        created_by=(Recorded("adverse_event", where=opens(SAFETY_REVIEW)),),
        due=AT_ONCE,
        repeat_after=15 * MINUTE,
        escalate_after=HOUR,
        escalate_to=CLINICIAN,
        done=reviewed(opens(SAFETY_REVIEW)),
        outlives_close=True,
        ended_by=frozenset({"adverse_event_resolve"}),
    ),
    Policy(
        EVENT_REVIEW,
        to=CLINICIAN,
        created_by=(Recorded("adverse_event", where=opens(EVENT_REVIEW)),),
        due=days(1),
        repeat_after=DAY,
        escalate_after=2 * DAY,
        escalate_to=CLINICIAN,
        done=reviewed(opens(EVENT_REVIEW)),
        outlives_close=True,
        ended_by=frozenset({"adverse_event_resolve"}),
    ),
    Policy(
        ESCALATION,
        to=CLINICIAN,  # an escalation goes to its original's escalate_to
        created_by=(),  # made by the dispatcher (schedules.escalation)
        due=AT_ONCE,
        repeat_after=HOUR,
        outlives_close=True,  # ends with its original
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
