"""The audit trail's hash chain: each event's hash covers the case's previous one.

An event's ``hash`` is SHA-256 over a canonical encoding of its content and
its ``prev_hash`` (the hash of the case's previous event), and the case row
keeps the newest hash (``Case.audit_hash``). Changing, removing, inserting or
reordering an event behind the service's back breaks the chain at that event;
removing the newest one leaves the case's head pointing at nothing.

The chain is not a signature: someone who can rewrite the whole trail and
the case row can recompute every hash. It shows tampering by anyone who
cannot, such as a role with only INSERT and SELECT on the audit table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from models.tables import AuditEvent, Case

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
HASHED_FIELDS = (
    "case_id",
    "at",
    "actor_id",
    "actor_role",
    "kind",
    "trigger",
    "from_state",
    "to_state",
    "data",
    "prev_hash",
)


def canonical_time(value: datetime) -> str:
    """A timestamp in UTC with microseconds, the one way it is written in a hash."""
    if value.tzinfo is None:  # as SQLite gives it back before the column type converts it
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def canonical(event: AuditEvent) -> bytes:
    """The event's hashed fields as JSON: sorted keys, no spaces, timestamps in one format."""
    return canonical_fields({name: getattr(event, name) for name in HASHED_FIELDS})


def canonical_fields(values: Mapping[str, Any]) -> bytes:
    """``canonical`` of an event given as its column values (``HASHED_FIELDS``, at least).

    ``data`` goes through JSON once first, so that the hash is the same before
    the event is stored and after it is read back (``{1: x}`` is ``{"1": x}``).
    """
    fields: dict[str, Any] = {name: values[name] for name in HASHED_FIELDS}
    fields["at"] = canonical_time(values["at"])
    fields["data"] = json.loads(json.dumps(values["data"]))
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def event_hash(event: AuditEvent) -> str:
    """The hash an event must carry, given its content and ``prev_hash``."""
    return hashlib.sha256(canonical(event)).hexdigest()


def seal(head: str | None, values: dict[str, Any]) -> str:
    """Chain the event ``values`` to the case's newest event ``head``: sets its ``prev_hash``
    and ``hash``, and returns the hash, the case's new head."""
    values["prev_hash"] = head
    values["hash"] = hashlib.sha256(canonical_fields(values)).hexdigest()
    return str(values["hash"])


@dataclass(frozen=True)
class Verdict:
    """What verifying one case's chain found."""

    case_id: int
    ok: bool
    events: int
    first_bad_event_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "events": self.events}
        return {"ok": False, "events": self.events, "first_bad_event_id": self.first_bad_event_id}


def check_chain(case: Case, events: Iterator[AuditEvent] | list[AuditEvent]) -> Verdict:
    """Verify ``events`` (the case's, in id order) against each other and the case's head.

    The first bad event is the first whose hash does not match its content or
    whose ``prev_hash`` is not the previous event's hash. When every event is
    sound but the case's head is not the last hash (the newest events were
    removed), it is the last event that remains (None if none does).
    """
    case_id = int(case.id or 0)
    previous: str | None = None
    count = 0
    last_id: int | None = None
    for event in events:
        count += 1
        if event.prev_hash != previous or event.hash != event_hash(event):
            return Verdict(case_id, False, count, event.id)
        previous, last_id = event.hash, event.id
    if case.audit_hash != previous:
        return Verdict(case_id, False, count, last_id)
    return Verdict(case_id, True, count)


def verify_case(session: Session, case: Case) -> Verdict:
    """Verify one case's whole chain, reading its events in id order."""
    query = select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(col(AuditEvent.id))
    return check_chain(case, iter(session.exec(query.execution_options(yield_per=500))))


def verify_all(session: Session) -> Iterator[Verdict]:
    """Verify every case's chain, case by case in id order."""
    last = 0
    while True:
        batch = session.exec(
            select(Case).where(col(Case.id) > last).order_by(col(Case.id)).limit(200)
        ).all()
        if not batch:
            return
        for case in batch:
            yield verify_case(session, case)
        last = int(batch[-1].id or 0)
