"""The words the reminder policies are written in: what creates a reminder, when it is due,
and what ends it. ``schedules.policies`` uses them to declare SPEC.md section 7 as a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from models.facts import Assessment
from models.reminders import Reminder
from models.settings import Settings
from models.tables import CLOSED_PHASE
from workflow.casefacts import CaseFacts
from workflow.definition import FACT_BY_NAME
from workflow.guards import first_dosing_at
from workflow.medications import washout_ends

Condition = Callable[[CaseFacts], bool]
Done = Callable[[CaseFacts, Reminder | None], bool]
"""Whether what one reminder (or, given None, a reminder about to be made) asks is done."""


@dataclass(frozen=True)
class Change:
    """What just happened to a case, as the workflow hook reported it."""

    facts: CaseFacts
    now: datetime
    entered: str | None = None
    fact: str | None = None
    record: Any = None


class Event(Protocol):
    """Something that creates a reminder; ``anchor`` is when its delay starts, or None.

    ``facts``: the facts whose recording may make it (none: a transition alone)."""

    @property
    def facts(self) -> frozenset[str]: ...

    def anchor(self, change: Change) -> datetime | None: ...


def occurred_at(record: Any) -> datetime:
    """When a recorded fact happened: a session's completion, a taper's confirmation, a
    dispense's receipt, else when it was recorded."""
    return (
        getattr(record, "completed_at", None)
        or getattr(record, "confirmed_at", None)
        or getattr(record, "received_at", None)
        or record.created_at
    )


@dataclass(frozen=True)
class Entered:
    """The case enters ``state`` from another state (resuming into it counts)."""

    state: str

    @property
    def facts(self) -> frozenset[str]:
        return frozenset()

    def anchor(self, change: Change) -> datetime | None:
        return change.now if change.entered == self.state else None


@dataclass(frozen=True)
class Recorded:
    """A ``fact`` is recorded, and ``where`` holds for it."""

    fact: str
    where: Callable[[Any, CaseFacts], bool] | None = None

    @property
    def facts(self) -> frozenset[str]:
        return frozenset({self.fact})

    def anchor(self, change: Change) -> datetime | None:
        if change.fact != self.fact:
            return None
        if self.where is not None and not self.where(change.record, change.facts):
            return None
        return occurred_at(change.record)


CHECKIN_INSTRUMENTS = frozenset({"phq9", "isi"})


def checkins(facts: CaseFacts) -> list[Assessment]:
    """The assessment that completed each check-in: a PHQ-9 and an ISI after the first dose."""
    first_dose = first_dosing_at(facts)
    if first_dose is None:
        return []
    done: list[Assessment] = []
    taken: set[str] = set()
    for assessment in facts.checkin_assessments(after=first_dose):
        taken.add(assessment.instrument)
        if taken == CHECKIN_INSTRUMENTS:
            done.append(assessment)
            taken = set()
    return done


CHECKIN_FACTS = frozenset({"assessment"})
"""The facts whose recording may complete a check-in."""


@dataclass(frozen=True)
class CheckedIn:
    """An assessment completes a check-in; the delay runs from the latest check-in."""

    @property
    def facts(self) -> frozenset[str]:
        return CHECKIN_FACTS

    def anchor(self, change: Change) -> datetime | None:
        if change.fact not in CHECKIN_FACTS:
            return None
        done = checkins(change.facts)
        if not any(a.id == change.record.id for a in done):
            return None
        return done[-1].taken_at


def scaled(delay: timedelta, rules: Settings) -> timedelta:
    """``delay`` times ``reminder_time_scale``: every reminder duration goes through here."""
    return delay * rules.reminder_time_scale


class Delay(Protocol):
    """When a reminder is due, given when its delay started."""

    def due(self, anchor: datetime, facts: CaseFacts) -> datetime: ...


@dataclass(frozen=True)
class After:
    """A fixed delay."""

    delay: timedelta

    def due(self, anchor: datetime, facts: CaseFacts) -> datetime:
        return anchor + scaled(self.delay, facts.rules)


@dataclass(frozen=True)
class EarlyThenLater:
    """``early`` after an anchor within ``window`` of the first dose, else ``later``."""

    early: timedelta
    window: timedelta
    later: timedelta

    def due(self, anchor: datetime, facts: CaseFacts) -> datetime:
        first_dose = first_dosing_at(facts) or anchor
        early = anchor < first_dose + scaled(self.window, facts.rules)
        return anchor + scaled(self.early if early else self.later, facts.rules)


@dataclass(frozen=True)
class SettingDays:
    """A delay of a setting's number of days, less ``before`` days (``screening_due``)."""

    setting: Callable[[Settings], float]
    before: float = 0

    def due(self, anchor: datetime, facts: CaseFacts) -> datetime:
        days = max(self.setting(facts.rules) - self.before, 0)
        return anchor + scaled(timedelta(days=days), facts.rules)


@dataclass(frozen=True)
class AfterWashout:
    """``delay`` after the anchor, or after the last washout of a confirmed taper ends if that
    is later (``prescription_pending``: the prescription cannot be written before)."""

    delay: timedelta

    def due(self, anchor: datetime, facts: CaseFacts) -> datetime:
        ends = [day for day in taper_washouts(facts) if day is not None]
        if ends:
            zone = ZoneInfo(facts.rules.timezone)
            anchor = max(anchor, datetime.combine(max(ends), time.min, tzinfo=zone))
        return anchor + scaled(self.delay, facts.rules)


def taper_washouts(facts: CaseFacts) -> list[date | None]:
    """When the washout of each medication with a confirmed, live taper ends."""
    confirmed = {
        t.medication_id for t in facts.tapers if t.confirmed_at is not None and t.ended_at is None
    }
    return [washout_ends(facts, m) for m in facts.medications if m.id in confirmed]


def days(n: float) -> After:
    return After(timedelta(days=n))


def hours(n: float) -> After:
    return After(timedelta(hours=n))


AT_ONCE = After(timedelta(0))


@dataclass(frozen=True)
class Left:
    """The case is no longer in ``state`` (held, moved on, or closed)."""

    state: str

    def __call__(self, facts: CaseFacts) -> bool:
        return facts.case.state != self.state


@dataclass(frozen=True)
class Policy:
    """One kind of reminder, a row of SPEC.md section 7's table.

    ``created_by``: the events that make it, ``due`` after the event. ``until``:
    any of these holding cancels an open reminder (and stops one being made);
    ``done`` does the same with the reminder itself in view. A closed case ends
    every reminder, unless ``outlives_close``. ``recurs``: once delivered (or
    given up on), the next is due one delay after this one, while it is still
    wanted. ``restarts``: a new creating event replaces the open reminder
    instead of keeping it. While ``sent`` and unacknowledged it is delivered
    again every ``repeat_after``; ``escalate_after`` past its due time, one
    ``escalation`` goes to ``escalate_to``. All three durations are scaled by
    ``reminder_time_scale`` where they are used. ``per_taper``: one open
    reminder per taper (the record that created it) instead of one per case;
    the reminder keeps its ``taper_id``. ``ended_by``: the facts whose recording
    can make ``until`` or ``done`` hold; a write of any other fact leaves an open
    reminder of this kind alone, unread (a transition checks every reminder).
    The stateful test checks after every step that no open reminder is done.
    """

    kind: str
    to: str
    created_by: tuple[Event, ...]
    due: Delay
    repeat_after: timedelta
    escalate_after: timedelta | None = None
    escalate_to: str | None = None
    until: tuple[Condition, ...] = ()
    done: Done | None = None
    recurs: bool = False
    restarts: bool = False
    outlives_close: bool = False
    per_taper: bool = False
    ended_by: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = self.ended_by - set(FACT_BY_NAME)
        if unknown:
            raise ValueError(f"{self.kind}: ended_by names no fact: {sorted(unknown)}")

    def may_end(self, fact: str | None) -> bool:
        """Whether recording ``fact`` (None: a transition) may end an open reminder of this kind."""
        return fact is None or fact in self.ended_by

    def satisfied(self, facts: CaseFacts, reminder: Reminder | None = None) -> bool:
        """Whether the reminder is no longer wanted: done, out of its state, or the case closed."""
        if facts.case.phase == CLOSED_PHASE and not self.outlives_close:
            return True
        if self.done is not None and self.done(facts, reminder):
            return True
        return any(done(facts) for done in self.until)

    def next_due(self, after: datetime, facts: CaseFacts, now: datetime) -> datetime:
        """The next occurrence after one due at ``after``, skipping those already past ``now``."""
        due = self.due.due(after, facts)
        # After an outage, catch up with one reminder, not one per missed period.
        while due <= now and due > after:
            after, due = due, self.due.due(due, facts)
        return due
