"""One router per resource; ``ROUTERS`` is every one, in the order the docs show them."""

from __future__ import annotations

from api.routers import (
    adverse_events,
    cases,
    contacts,
    dosing,
    evaluation,
    events,
    health,
    medications,
    reminders,
    reports,
    safety_plans,
    substance,
    transitions,
    users,
    workflow,
    worklist,
)

ROUTERS = (
    health.router,
    users.router,
    cases.router,
    transitions.router,
    evaluation.router,
    medications.router,
    contacts.router,
    dosing.router,
    substance.router,
    adverse_events.router,
    safety_plans.router,
    events.router,
    reminders.router,
    reports.router,
    worklist.router,
    workflow.router,
)
