"""The facts the case page has a form for: each is the API's schema and service for it.

Who may record a fact is ``workflow.definition.may_record``; what a valid
fact is, is its schema and its service. This table only says which schema and
service belong to which form, and, for a fact about an existing record, which
record the form picks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from models.schemas import (
    AdverseEventCreate,
    AdverseEventResolve,
    AssessmentCreate,
    CaseAssignment,
    CaseUpdate,
    ClearanceCancel,
    ClearanceCreate,
    ConsentCreate,
    CountCreate,
    DispenseCreate,
    EmergencyContactCreate,
    HistoryIn,
    MedicationCreate,
    MedicationUpdate,
    MonitorCreate,
    MonitorUpdate,
    ProfileIn,
    ReceiptCreate,
    ReturnCreate,
    SafetyPlanCreate,
    ScreeningCreate,
    SessionCreate,
    TaperConfirm,
    TaperCreate,
    VitalCreate,
)
from workflow import cases, contacts, dosing, medications, patient, records, substance


@dataclass(frozen=True)
class Target:
    """The existing record a fact is about: the service's keyword and where to pick it from."""

    keyword: str
    collection: str
    describe: Callable[[Any], str]
    open: Callable[[Any], bool] = lambda record: True


@dataclass(frozen=True)
class FactForm:
    """A form for recording ``fact`` (a ``FACT_ROLES`` name) through ``service``."""

    fact: str
    title: str
    schema: type[BaseModel]
    service: Callable[..., Any]
    target: Target | None = None


FACT_FORMS: tuple[FactForm, ...] = (
    FactForm("assessment", "Assessment", AssessmentCreate, records.record_assessment),
    FactForm("vital", "Blood pressure", VitalCreate, records.record_vital),
    FactForm("session", "Session", SessionCreate, dosing.record_session),
    FactForm("dose_clearance", "Dose clearance", ClearanceCreate, dosing.request_clearance),
    FactForm(
        "dose_clearance_cancel",
        "Cancel a dose clearance (the dose was not taken)",
        ClearanceCancel,
        dosing.cancel_clearance,
        Target(
            "clearance_id",
            "dose-clearances",
            lambda c: f"Clearance {c.id} (expires {c.expires_at:%Y-%m-%d %H:%M})",
            lambda c: c.open,
        ),
    ),
    FactForm(
        "emergency_contact",
        "Emergency contact",
        EmergencyContactCreate,
        contacts.add_emergency_contact,
    ),
    FactForm("monitor", "Treatment monitor", MonitorCreate, contacts.add_monitor),
    FactForm(
        "monitor_update",
        "Make a monitor active or inactive",
        MonitorUpdate,
        contacts.update_monitor,
        Target(
            "monitor_id",
            "monitors",
            lambda m: f"{m.name} ({'active' if m.active else 'inactive'})",
        ),
    ),
    FactForm("history", "Clinical history", HistoryIn, patient.put_history),
    FactForm("profile", "Patient profile", ProfileIn, patient.put_profile),
    FactForm("consent", "Consent", ConsentCreate, patient.record_consent),
    FactForm("medication", "Add a medication", MedicationCreate, medications.add_medication),
    FactForm(
        "medication_update",
        "Change a medication's status",
        MedicationUpdate,
        medications.update_medication,
        Target("medication_id", "medications", lambda m: f"{m.name} ({m.status})"),
    ),
    FactForm(
        "interaction_screening",
        "Screen interactions",
        ScreeningCreate,
        medications.screen_interactions,
    ),
    FactForm("taper", "Plan a taper", TaperCreate, medications.plan_taper),
    FactForm(
        "taper_confirm",
        "Confirm a taper",
        TaperConfirm,
        medications.confirm_taper,
        Target(
            "taper_id",
            "tapers",
            lambda t: f"Taper {t.id} of medication {t.medication_id}",
            lambda t: t.confirmed_at is None,
        ),
    ),
    FactForm("adverse_event", "Adverse event", AdverseEventCreate, records.record_adverse_event),
    FactForm(
        "adverse_event_resolve",
        "Resolve an adverse event",
        AdverseEventResolve,
        records.resolve_adverse_event,
        Target(
            "event_id",
            "adverse-events",
            lambda e: f"{e.kind} ({e.severity}) #{e.id}",
            lambda e: e.resolved_at is None,
        ),
    ),
    FactForm("assignment", "Assign the case", CaseAssignment, cases.assign_case),
    FactForm("case_update", "The patient moved to another state", CaseUpdate, cases.update_case),
    FactForm("safety_plan", "Safety plan", SafetyPlanCreate, records.record_safety_plan),
    FactForm("dispense", "Dispense a refill", DispenseCreate, substance.record_dispense),
    FactForm(
        "dispense_receipt",
        "The patient received a dispense",
        ReceiptCreate,
        substance.receive_dispense,
        Target(
            "dispense_id",
            "dispenses",
            lambda d: f"Dispense {d.id}: {d.quantity_units} units, lot {d.lot}",
            lambda d: d.received_at is None,
        ),
    ),
    FactForm("medication_count", "Medication count", CountCreate, substance.record_count),
    FactForm(
        "medication_return",
        "Units returned, disposed of or lost",
        ReturnCreate,
        substance.record_return,
    ),
)
FACT_FORM_BY_NAME = {form.fact: form for form in FACT_FORMS}
