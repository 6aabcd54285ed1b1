"""A dose clearance is void for good once what it was granted on changes (SPEC.md 4.4).

After a clearance is granted and before the dose that uses it, any of these
makes it void: an adverse event is recorded; the medication list, the history
or the profile changes (a write that changes no value does not count); its
monitor is made inactive; the case is held; the case's ``patient_state``
changes. The rules are keyed by the names of facts and triggers, so a fact
another part of the service records (``profile``, ``case_update``) is picked up
by its name alone. ``workflow.unit`` calls ``after_fact`` for every recorded
fact and ``after_transition`` for every transition.

Voiding is stored on the clearance (``void``, ``voided_at``, ``void_reason``)
and audited as the service's own fact ``dose_clearance_void``: undoing the
change (resolving the event, restoring the medication) does not restore it.
Only open clearances are voided, so nothing after a dose voids the clearance it
used; a dose recorded late, taken before the void, did not use a void clearance
(``workflow.dosing``).

A deactivated monitor voids only the open clearances that name that monitor:
a clearance names the monitor who stays through its dose, and another
monitor's clearance is still watched over. Closing the case (``discharge``,
``withdraw``) voids them too: no dose or cancellation is recorded on a closed
case, so nothing else would ever close them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from models.facts import DoseClearance
from workflow.definition import SYSTEM_ACTOR

if TYPE_CHECKING:
    from workflow.unit import CaseWrite

VOID_FACT = "dose_clearance_void"
"""The fact the service records when it voids a clearance (no user records it)."""

UNCOUNTED = frozenset({"created_at", "updated_at"})
"""Columns a write may touch without changing a value that matters."""


@dataclass(frozen=True)
class Change:
    """A fact just recorded: the record, the case columns it set, and its own changed columns.

    ``columns`` is None for a new record.
    """

    fact: str
    record: Any
    changes: dict[str, Any]
    columns: frozenset[str] | None

    @property
    def changed(self) -> bool:
        """Whether the write changed any value: a new record, or a case or record column."""
        return self.columns is None or bool(self.columns) or bool(self.changes)

    def sets(self, name: str) -> bool:
        """Whether the write changed ``name``, on the case or on the record."""
        return name in self.changes or name in (self.columns or ())


def changed_columns(record: Any) -> frozenset[str] | None:
    """The columns of ``record`` with a new value not yet flushed; None for a new record.

    Read before the record is flushed (``Tracker`` keeps what an earlier flush
    wrote): a value set to what it already was is no change.
    """
    state = inspect(record)
    if state.key is None:
        return None
    return frozenset(
        attr.key for attr in state.attrs if attr.key not in UNCOUNTED and attr.history.has_changes()
    )


@dataclass
class Tracker:
    """What one write changed on its rows, even when a query flushed them before ``record``.

    A query autoflushes pending changes, which clears the attribute history
    ``changed_columns`` reads: the tracker keeps, per row, the columns each flush
    wrote and the rows it inserted, until the row is recorded.
    """

    flushed: dict[int, set[str]] = field(default_factory=dict)
    inserted: set[int] = field(default_factory=set)

    @classmethod
    def attach(cls, session: Session) -> Tracker:
        """A tracker that sees every flush of ``session`` from now on, for as long as the
        session lives (``_before_any_flush``, one listener for every session, finds it)."""
        tracker = cls()
        session.info.setdefault(TRACKERS, []).append(tracker)
        return tracker

    def _before_flush(self, session: Session, context: Any, instances: Any) -> None:
        self.inserted |= {id(row) for row in session.new}
        for row in session.dirty:
            columns = changed_columns(row)
            if columns:
                self.flushed.setdefault(id(row), set()).update(columns)

    def columns(self, record: Any) -> frozenset[str] | None:
        """The columns ``record`` changed in this write; None for a row it inserted."""
        now = changed_columns(record)
        if now is None or id(record) in self.inserted:
            self.inserted.discard(id(record))
            self.flushed.pop(id(record), None)
            return None
        return now | self.flushed.pop(id(record), set())


TRACKERS = "carepath_voiding_trackers"
"""``session.info`` key: the session's trackers, one for each write made in it."""


@event.listens_for(OrmSession, "before_flush")
def _before_any_flush(session: Session, context: Any, instances: Any) -> None:
    # One listener for every session, registered once: listening on each write's session
    # cost an ``event.listen`` a write (27 us on the benchmark machine).
    for tracker in session.info.get(TRACKERS, ()):
        tracker._before_flush(session, context, instances)


Rule = Callable[[Change], str | None]
"""The reason ``Change`` voids the case's open clearances, or None."""


def _when_changed(reason: str) -> Rule:
    return lambda change: reason if change.changed else None


def _adverse_event(change: Change) -> str | None:
    return f"adverse event #{change.record.id} recorded" if change.changed else None


def _medication_list(change: Change) -> str | None:
    """A fact of another kind that changed the medication list (a taper confirmed stops its
    medication): the list's version says so."""
    return "the medication list changed" if change.sets("medication_list_version") else None


def _patient_state(change: Change) -> str | None:
    return "the case's patient_state changed" if change.sets("patient_state") else None


def _monitor(change: Change) -> str | None:
    if change.sets("active") and change.record.active is False:
        return f"monitor #{change.record.id} made inactive"
    return None


FACT_RULES: dict[str, Rule] = {
    "adverse_event": _adverse_event,
    "medication": _when_changed("the medication list changed"),
    "medication_update": _when_changed("the medication list changed"),
    "taper_confirm": _medication_list,
    "history": _when_changed("the clinical history changed"),
    "profile": _when_changed("the patient profile changed"),
    "case_update": _patient_state,
    "monitor_update": _monitor,
}
"""Facts that void the open clearances, by name."""

TRIGGER_RULES: dict[str, str] = {
    "hold": "the case was put on hold",
    # Not in SPEC 4.4's list: a closed case takes no dose and no cancellation, so a
    # clearance left open there would show ``open`` for ever.
    "discharge": "the case was closed",
    "withdraw": "the case was closed",
}
"""Transitions that void the open clearances, by trigger."""


def after_fact(
    write: CaseWrite,
    fact: str,
    record: Any,
    changes: dict[str, Any],
    columns: frozenset[str] | None,
) -> None:
    """Void the case's open clearances if recording ``fact`` calls for it."""
    rule = FACT_RULES.get(fact)
    if rule is None:
        return
    reason = rule(Change(fact, record, changes, columns))
    if reason is None:
        return
    only_monitor = record.id if fact == "monitor_update" else None
    void_open(write, reason, monitor_id=only_monitor)


def after_transition(write: CaseWrite, trigger: str) -> None:
    """Void the case's open clearances if ``trigger`` calls for it."""
    reason = TRIGGER_RULES.get(trigger)
    if reason is not None:
        void_open(write, reason)


def void_open(write: CaseWrite, reason: str, *, monitor_id: int | None = None) -> None:
    """Void every open clearance of the case (only those naming ``monitor_id``, if given)."""
    for clearance in write.facts.open_clearances:
        if monitor_id is not None and clearance.monitor_id != monitor_id:
            continue
        void(write, clearance, reason)


def void(write: CaseWrite, clearance: DoseClearance, reason: str) -> None:
    """Void one clearance for good, as the service, audited."""
    clearance.open, clearance.void = False, True
    clearance.voided_at, clearance.void_reason = write.now, reason[:400]
    write.record(VOID_FACT, clearance, actor=SYSTEM_ACTOR)
