"""Escalation: a reminder still open ``escalate_after`` past its due time gets one
``escalation``, due at once, to its policy's ``escalate_to`` (SPEC.md section 7).

Exactly once across processes: the original is marked ``escalated_at`` by a
conditional ``UPDATE ... WHERE escalated_at IS NULL`` under the case's lock, in
the transaction that inserts the escalation, and the partial unique index
``uq_reminders_escalates`` is the database's backstop. The original stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.db import read_only, session_scope
from models.reminders import ESCALATION, OPEN_STATUSES, Reminder
from models.settings import Settings, settings
from models.tables import User
from models.types import utcnow
from schedules.policies import POLICIES
from schedules.rules import Policy, scaled
from workflow import places
from workflow.audit import lock_case
from workflow.unit import write_transaction

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def recipients(session: Session, reminder: Reminder) -> tuple[int, ...]:
    """Who a delivery goes to: the assigned user, or for an escalation every user of its role
    except the original's recipient; a deactivated user gets nothing."""
    if reminder.kind != ESCALATION:
        return () if reminder.recipient_id is None else (reminder.recipient_id,)
    original = session.get(Reminder, reminder.escalates) if reminder.escalates else None
    skip = original.recipient_id if original is not None else None
    query = (
        select(User.id)
        .where(User.role == reminder.recipient_role, col(User.active))
        .order_by(col(User.id))
    )
    return tuple(uid for uid in session.exec(query) if uid is not None and uid != skip)


class Escalator:
    """Makes the escalations that are due; run at the start of every dispatcher pass."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        rules: Settings = settings,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rules = rules

    def run(self) -> int:
        """Escalate every reminder that has waited too long; returns how many."""
        made = 0
        for policy in POLICIES:
            if policy.escalate_after is None or policy.escalate_to is None:
                continue
            seen: set[int] = set()
            while batch := [rid for rid in self.due_ids(policy) if rid not in seen]:
                seen.update(batch)
                for reminder_id in batch:
                    made += self.escalate_safely(reminder_id, policy)
        return made

    def due_ids(self, policy: Policy) -> list[int]:
        """Open reminders of ``policy`` past ``escalate_after`` and not yet escalated."""
        assert policy.escalate_after is not None
        cutoff = self.clock() - scaled(policy.escalate_after, self.rules)
        query = (
            select(col(Reminder.id))
            .where(
                col(Reminder.status).in_(OPEN_STATUSES),
                col(Reminder.due_at) <= cutoff,
                col(Reminder.kind) == policy.kind,
                col(Reminder.escalated_at).is_(None),
            )
            .order_by(col(Reminder.due_at), col(Reminder.id))
            .limit(self.rules.dispatch_batch_size)
        )
        with session_scope(read_only(self.engine)) as session:
            return [rid for rid in session.exec(query) if rid is not None]

    def escalate_safely(self, reminder_id: int, policy: Policy) -> int:
        """``escalate``, with any error logged for this reminder alone."""
        try:
            return int(self.escalate(reminder_id, policy))
        except IntegrityError:  # another process escalated it first
            return 0
        except Exception:
            logger.exception("reminder %s: could not escalate", reminder_id)
            return 0

    def escalate(self, reminder_id: int, policy: Policy) -> bool:
        """Make the reminder's one escalation, unless another process just did."""
        now = self.clock()
        with write_transaction(self.engine) as session:
            original = session.get_one(Reminder, reminder_id)
            case = lock_case(session, original.case_id)
            marked = session.connection().execute(
                update(Reminder)
                .where(
                    col(Reminder.id) == reminder_id,
                    col(Reminder.escalated_at).is_(None),
                    col(Reminder.status).in_(OPEN_STATUSES),
                )
                .values(escalated_at=now, updated_at=now)
            )
            if marked.rowcount != 1:
                return False
            assert policy.escalate_to is not None
            session.add(
                Reminder(
                    case_id=original.case_id,
                    kind=ESCALATION,
                    due_at=now,
                    recipient_role=policy.escalate_to,
                    escalates=reminder_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.flush()
            places.refresh(session, case, now)
            logger.info("reminder %s (%s): escalated", reminder_id, policy.kind)
            return True
