"""Emergency contacts and treatment monitors (SPEC.md 4.1).

Names and phone numbers are personal data: stored and returned to staff, never
logged (the audit trail keeps them, as it keeps every record).
"""

from __future__ import annotations

from models.facts import EmergencyContact, Monitor
from models.schemas import EmergencyContactCreate, MonitorCreate, MonitorUpdate
from workflow.errors import ValidationFailed
from workflow.records import get_record
from workflow.unit import CaseWrite, writes


@writes("emergency_contact")
def add_emergency_contact(write: CaseWrite, *, data: EmergencyContactCreate) -> EmergencyContact:
    """Record someone to call in an emergency."""
    contact = EmergencyContact(
        case_id=write.case_id, recorded_by=write.actor.id, created_at=write.now, **data.model_dump()
    )
    write.record("emergency_contact", contact)
    return contact


@writes("monitor")
def add_monitor(write: CaseWrite, *, data: MonitorCreate) -> Monitor:
    """Register a treatment monitor: an adult, trained on a day not in the future."""
    if data.trained_on > write.rules.today(write.now):
        raise ValidationFailed.field(("trained_on",), "trained_on is in the future.")
    monitor = Monitor(
        case_id=write.case_id,
        recorded_by=write.actor.id,
        created_at=write.now,
        updated_at=write.now,
        **data.model_dump(),
    )
    write.record("monitor", monitor)
    return monitor


@writes("monitor_update")
def update_monitor(write: CaseWrite, *, monitor_id: int, data: MonitorUpdate) -> Monitor:
    """Make a monitor active or inactive; an inactive one voids the open clearances naming it."""
    monitor = get_record(write.session, write.case_id, Monitor, monitor_id)
    if monitor.active != data.active:
        monitor.active, monitor.updated_at = data.active, write.now
    write.record("monitor_update", monitor)
    return monitor
