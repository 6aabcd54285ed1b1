"""Delivering due reminders: claim, notify, record the outcome, each in its own transaction.

A claim is a lease. Claiming a reminder bumps ``attempts`` (the claim token) and sets
``next_attempt_at`` to the end of the lease, in one short transaction that takes the row
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` serialises
it) and re-checks it with a conditional ``UPDATE ... WHERE attempts = <seen>``, so only
one dispatcher wins it. The row keeps its status while it is delivered. A ``sent``
reminder nobody acknowledged is claimed again at its ``next_attempt_at`` (its policy's
``repeat_after``) the same way, so a repeat is exactly-once too; escalations are made by
``schedules.escalation`` at the start of each pass and delivered like any other. The
outcome (``sent``; a retry after backoff; ``failed``) is written only if the token still
matches. If the process dies between claim and outcome, the lease runs out, the row is
due again, and the next pass delivers it with the same ``Idempotency-Key``: nothing is
lost, and a receiver that honours the key acts once. A crashed claim counts as an
attempt, so a reminder that kills its process ends ``failed``, never loops."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from models.db import read_only, session_scope
from models.reminders import FAILED, PENDING, SENT, Reminder
from models.settings import Settings, settings
from models.tables import Case
from models.types import utcnow
from schedules.escalation import Escalator, recipients
from schedules.notifiers import Delivery, Notifier, default_notifiers
from schedules.policies import POLICY_BY_KIND
from schedules.rules import scaled
from schedules.scheduling import cancel, schedule_next
from workflow import places
from workflow.audit import lock_case
from workflow.unit import write_transaction

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

LEASE_BASE_SECONDS = 60
"""A claim lasts this long plus four webhook timeouts (connect, write, read, pool)."""


def due_clause(now: datetime) -> tuple:
    """Pending and due, or sent and due for a repeat; neither leased nor backing off."""
    first = and_(
        col(Reminder.status) == PENDING,
        col(Reminder.due_at) <= now,
        or_(col(Reminder.next_attempt_at).is_(None), col(Reminder.next_attempt_at) <= now),
    )
    repeat = and_(col(Reminder.status) == SENT, col(Reminder.next_attempt_at) <= now)
    return (or_(first, repeat),)


def _finish(session: Session, delivery: Delivery, now: datetime, **values: Any) -> bool:
    """Write an attempt's outcome, only if the reminder is as it was claimed (same status, same
    token): an acknowledgement or a cancellation meanwhile wins."""
    values = {"next_attempt_at": None, "last_error": None, "updated_at": now, **values}
    status = SENT if delivery.repeat else PENDING
    reminder_id, attempt = delivery.id, delivery.attempt
    done = session.connection().execute(
        update(Reminder)
        .where(
            col(Reminder.id) == reminder_id,
            col(Reminder.status) == status,
            col(Reminder.attempts) == attempt,
        )
        .values(**values)
    )
    if done.rowcount == 1:
        return True
    logger.warning(
        "reminder %s: changed while attempt %s was out (cancelled, or its lease was lost); "
        "left as it is",
        reminder_id,
        attempt,
    )
    return False


def _schedule_next(session: Session, case: Case, delivery: Delivery, now: datetime) -> None:
    """Schedule a recurring reminder's next occurrence; an error here must not undo the outcome."""
    policy = POLICY_BY_KIND.get(delivery.kind)  # a kind since dropped from the table recurs no more
    if policy is None or not policy.recurs or delivery.repeat:
        return
    try:
        with session.begin_nested():
            delivered = session.get_one(Reminder, delivery.id)
            _supersede(session, delivered, now)
            schedule_next(session, case, policy, delivered, now)
    except Exception:
        logger.exception("reminder %s: could not schedule its next occurrence", delivery.id)


def _supersede(session: Session, delivered: Reminder, now: datetime) -> None:
    """A recurring reminder's new occurrence, once delivered, replaces the one before it (of
    the same taper, for a taper's reminder)."""
    taper = col(Reminder.taper_id)
    earlier = select(Reminder).where(
        col(Reminder.case_id) == delivered.case_id,
        col(Reminder.kind) == delivered.kind,
        col(Reminder.status) == SENT,
        col(Reminder.id) != delivered.id,
        taper.is_(None) if delivered.taper_id is None else taper == delivered.taper_id,
    )
    for reminder in session.exec(earlier):
        cancel(session, reminder, now)


def repeat_at(kind: str, now: datetime, rules: Settings) -> datetime | None:
    """When a sent, unacknowledged reminder of ``kind`` is delivered again."""
    policy = POLICY_BY_KIND.get(kind)
    return None if policy is None else now + scaled(policy.repeat_after, rules)


@dataclass(frozen=True)
class Claim:
    """A reminder this dispatcher holds the lease on."""

    delivery: Delivery
    exhausted: bool = False
    """Its last attempt's process died before recording the outcome: give up, never resend."""


@dataclass
class PassResult:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    escalated: int = 0


class Dispatcher:
    """Delivers the reminders that are due by ``clock()``; many may run over one database."""

    def __init__(
        self,
        engine: Engine,
        *,
        notifiers: Iterable[Notifier] | None = None,
        clock: Callable[[], datetime] = utcnow,
        rules: Settings = settings,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rules = rules
        self.notifiers = list(notifiers) if notifiers is not None else default_notifiers(rules)
        self.lease = timedelta(seconds=LEASE_BASE_SECONDS + 4 * rules.webhook_timeout_seconds)
        self.escalator = Escalator(engine, clock=clock, rules=rules)
        self.newest = 0

    def run_pass(self) -> PassResult:
        """Escalate what waited too long, then deliver every reminder due now, batch by batch;
        one failing never stops the rest."""
        result = PassResult()
        result.escalated = self.escalator.run()
        seen: set[int] = set()
        self.newest = self.newest_id()
        while True:
            # A reminder that failed to claim for a database error stays due: seen
            # keeps the pass from spinning on it; the next pass tries it again.
            batch = [rid for rid in self.due_ids() if rid not in seen]
            if not batch:
                return result
            seen.update(batch)
            for reminder_id in batch:
                self.process(reminder_id, result)

    def newest_id(self) -> int:
        """The newest reminder's id: a pass delivers none made after it began (a recurring
        reminder with a zero delay would otherwise keep one pass going forever)."""
        with session_scope(read_only(self.engine)) as session:
            return session.exec(select(func.max(Reminder.id))).one() or 0

    def due_query(self) -> SelectOfScalar[int | None]:
        """The next batch of due reminders, oldest first (uses the status indexes)."""
        return (
            select(col(Reminder.id))
            .where(*due_clause(self.clock()), col(Reminder.id) <= self.newest)
            .order_by(col(Reminder.due_at), col(Reminder.id))
            .limit(self.rules.dispatch_batch_size)
        )

    def due_ids(self) -> list[int]:
        with session_scope(read_only(self.engine)) as session:
            return [rid for rid in session.exec(self.due_query()) if rid is not None]

    def process(self, reminder_id: int, result: PassResult) -> None:
        """Claim, deliver and record one reminder, catching every error for it alone."""
        try:
            claim = self.claim(reminder_id)
            if claim is None:
                result.skipped += 1
                return
            if claim.exhausted:
                outcome = self.record_failure(claim.delivery, "last attempt never finished")
            else:
                outcome = self.deliver(claim.delivery)
            setattr(result, outcome, getattr(result, outcome) + 1)
        except Exception:
            logger.exception("reminder %s: dispatch error", reminder_id)
            result.errors += 1

    def claim(self, reminder_id: int) -> Claim | None:
        """Take the lease on a due reminder; None if it is not due or another dispatcher has it."""
        now = self.clock()
        with write_transaction(self.engine) as session:
            query = select(Reminder).where(col(Reminder.id) == reminder_id, *due_clause(now))
            row = session.exec(query.with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            # Only a first delivery gives up: a repeat was delivered once already.
            exhausted = row.status == PENDING and row.attempts >= self.rules.delivery_max_attempts
            token = row.attempts if exhausted else row.attempts + 1
            claimed = session.connection().execute(
                update(Reminder)
                .where(
                    col(Reminder.id) == reminder_id,
                    col(Reminder.attempts) == row.attempts,
                    col(Reminder.status) == row.status,
                    *due_clause(now),
                )
                .values(attempts=token, next_attempt_at=now + self.lease, updated_at=now)
            )
            if claimed.rowcount != 1:
                return None
            case = session.get_one(Case, row.case_id)
            delivery = Delivery(
                id=reminder_id,
                case_id=row.case_id,
                kind=row.kind,
                due_at=row.due_at,
                recipient_role=row.recipient_role,
                attempt=token,
                state=case.state,
                phase=case.phase,
                recipient_ids=recipients(session, row),
                escalates=row.escalates,
                repeat=row.deliveries if row.status == SENT else 0,
            )
            return Claim(delivery, exhausted)

    def deliver(self, delivery: Delivery) -> str:
        """Hand the reminder to every notifier, then record the outcome; returns which."""
        try:
            for notifier in self.notifiers:
                notifier.notify(delivery)
        except Exception as exc:  # any notifier error is a failed attempt, to retry
            return self.record_failure(delivery, f"{type(exc).__name__}: {exc}")
        self.record_sent(delivery)
        return "sent"

    def record_sent(self, delivery: Delivery) -> None:
        """Mark the reminder sent and due for a repeat; schedule the next one if it recurs."""
        now = self.clock()
        with write_transaction(self.engine) as session:
            # Lock the case as every workflow write does, before touching its reminders.
            case = lock_case(session, delivery.case_id)
            values: dict[str, Any] = {
                "status": SENT,
                "next_attempt_at": repeat_at(delivery.kind, now, self.rules),
                "deliveries": delivery.repeat + 1,
            }
            if not delivery.repeat:
                values["sent_at"] = now
            if _finish(session, delivery, now, **values):
                _schedule_next(session, case, delivery, now)
                places.refresh(session, case, now)
                delivered = True
            else:
                delivered = False
        if delivered:
            logger.info(
                "reminder %s delivered",
                delivery.id,
                extra={
                    "reminder_id": delivery.id,
                    "case_id": delivery.case_id,
                    "kind": delivery.kind,
                    "recipient_role": delivery.recipient_role,
                    "attempt": delivery.attempt,
                    "repeat": delivery.repeat,
                },
            )

    def record_failure(self, delivery: Delivery, error: str) -> str:
        """Back off for a retry, or give up after the last attempt; returns which.

        A repeat that fails is tried again at the next repeat: the reminder was
        delivered once, and stays ``sent``."""
        now, error = self.clock(), error[:1000]
        with write_transaction(self.engine) as session:
            case = lock_case(session, delivery.case_id)
            if delivery.repeat or delivery.attempt < self.rules.delivery_max_attempts:
                if delivery.repeat:
                    retry_at = repeat_at(delivery.kind, now, self.rules) or now + self.lease
                else:
                    backoff = self.rules.delivery_backoff_seconds * 2 ** (delivery.attempt - 1)
                    retry_at = now + timedelta(seconds=backoff)
                values = {"next_attempt_at": retry_at, "last_error": error}
                if _finish(session, delivery, now, **values):
                    logger.warning(
                        "reminder %s: attempt %s failed, retry at %s: %s",
                        delivery.id,
                        delivery.attempt,
                        retry_at.isoformat(),
                        error,
                    )
                return "retried"
            if _finish(session, delivery, now, status=FAILED, last_error=error):
                logger.error(
                    "reminder %s: delivery failed after %s attempts: %s",
                    delivery.id,
                    delivery.attempt,
                    error,
                )
                # A recurring reminder goes on: an outage must not end the series.
                _schedule_next(session, case, delivery, now)
                places.end_escalations(session, session.get_one(Reminder, delivery.id), now)
                places.refresh(session, case, now)
            return "failed"

    def close(self) -> None:
        """Release the notifiers' connections."""
        for notifier in self.notifiers:
            close = getattr(notifier, "close", None)
            if close is not None:
                close()
