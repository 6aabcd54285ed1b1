"""A case as a FHIR R4B ``Bundle`` of type ``collection`` (SPEC.md section 10).

Built with the ``fhir.resources`` R4B models, so the bundle is validated as it
is constructed. The patient appears only as a logical reference by
``patient_ref``: no resource carries a name, and neither do the staff, who are
referred to by user id and role.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.adverseevent import AdverseEvent as FhirAdverseEvent
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.task import Task, TaskRestriction
from sqlmodel import Session

from models.facts import AdverseEvent, Assessment, DoseClearance, Medication, Vital
from models.reminders import PENDING, Reminder
from models.tables import AuditEvent, Case
from schedules.service import list_reminders
from workflow import records
from workflow.audit import list_events
from workflow.cases import get_case

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CAREPATH = "urn:carepath"
PATIENT_REF = f"{CAREPATH}:patient-ref"
ACTOR = f"{CAREPATH}:actor"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
NAMESPACE = uuid.UUID("6f1b7c52-8d0e-4f43-9a53-0c3c6b2f8e11")

INSTRUMENT_CODES = {
    "phq9": (LOINC, "44261-6", "PHQ-9 total score"),
    "gad7": (LOINC, "70274-6", "GAD-7 total score"),
    "isi": (f"{CAREPATH}:instrument", "isi", "Insomnia Severity Index total score"),
}
PHQ9_ITEM9 = (LOINC, "44260-8", "PHQ-9 item 9: thoughts of self-harm")
BLOOD_PRESSURE = (LOINC, "85354-9", "Blood pressure panel")
SYSTOLIC = (LOINC, "8480-6", "Systolic blood pressure")
DIASTOLIC = (LOINC, "8462-4", "Diastolic blood pressure")
HEART_RATE = (LOINC, "8867-4", "Heart rate")

CAREPLAN_STATUS = {"on_hold": "on-hold", "discharged": "completed", "withdrawn": "revoked"}
"""A CarePlan's status by case state; any other open state is ``active``."""
CLOSED_WITHOUT_CARE = {"ineligible": "revoked"}


def concept(system: str, code: str, display: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display)])


def text_concept(text: str) -> CodeableConcept:
    return CodeableConcept(text=text)


@dataclass
class CaseRecord:
    """Everything of a case the bundle shows, read in one request."""

    case: Case
    assessments: list[Assessment]
    vitals: list[Vital]
    clearances: list[DoseClearance]
    medications: list[Medication]
    adverse_events: list[AdverseEvent]
    reminders: list[Reminder]
    events: list[AuditEvent]


def load_case_record(session: Session, case_id: int) -> CaseRecord:
    """The case and its facts, open reminders and audit trail (404 for an unknown case)."""
    case = get_case(session, case_id)

    def facts(collection: str) -> list[Any]:
        return records.list_records(session, case_id=case_id, collection=collection)

    reminders, _ = list_reminders(session, case_id=case_id, status=PENDING, limit=10_000)
    return CaseRecord(
        case=case,
        assessments=facts("assessments"),
        vitals=facts("vitals"),
        clearances=facts("dose-clearances"),
        medications=facts("medications"),
        adverse_events=facts("adverse-events"),
        reminders=reminders,
        events=list_events(session, case_id),
    )


class BundleBuilder:
    """Collects resources under stable ids and ``urn:uuid`` full URLs."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.entries: list[BundleEntry] = []
        self.urls: dict[str, str] = {}

    def url(self, key: str) -> str:
        """The full URL of the resource ``key`` (e.g. ``assessment-3``), stable across exports."""
        return self.urls.setdefault(
            key, f"urn:uuid:{uuid.uuid5(NAMESPACE, f'case-{self.case.id}/{key}')}"
        )

    def add(self, key: str, resource: Resource) -> None:
        resource.id = key
        self.entries.append(BundleEntry(fullUrl=self.url(key), resource=resource))

    @property
    def patient(self) -> Reference:
        identifier = Identifier(system=PATIENT_REF, value=self.case.patient_ref)
        return Reference(type="Patient", identifier=identifier)

    def fact_references(self, audit: AuditEvent) -> list[Reference]:
        """The resource of the fact ``audit`` recorded, when the bundle holds it."""
        key = f"{str(audit.data.get('fact', '')).replace('_', '-')}-{audit.data.get('id')}"
        return [Reference(reference=self.urls[key])] if key in self.urls else []

    @property
    def plan(self) -> Reference:
        return Reference(reference=self.url(f"case-{self.case.id}"), type="CarePlan")


def build_bundle(record: CaseRecord, now: datetime) -> Bundle:
    """The case as a validated R4B ``collection`` Bundle."""
    builder = BundleBuilder(record.case)
    builder.add(f"case-{record.case.id}", care_plan(record.case, builder))
    for reminder in record.reminders:
        builder.add(f"reminder-{reminder.id}", task(reminder, builder))
    for assessment in record.assessments:
        builder.add(f"assessment-{assessment.id}", score_observation(assessment, builder))
    for vital in record.vitals:
        builder.add(f"vital-{vital.id}", blood_pressure(vital, vital.taken_at, builder))
    for clearance in record.clearances:
        reading = blood_pressure(clearance, clearance.created_at, builder)
        builder.add(f"dose-clearance-{clearance.id}", reading)
    for medication in record.medications:
        builder.add(f"medication-{medication.id}", medication_statement(medication, builder))
    for event in record.adverse_events:
        builder.add(f"adverse-event-{event.id}", adverse_event(event, builder))
    for audit in record.events:
        builder.add(f"audit-event-{audit.id}", provenance(audit, builder))
    return Bundle(
        id=f"case-{record.case.id}-{now.strftime('%Y%m%d%H%M%S')}",
        type="collection",
        timestamp=now,
        entry=builder.entries,
    )


def care_plan(case: Case, builder: BundleBuilder) -> CarePlan:
    status = CAREPLAN_STATUS.get(case.state) or CLOSED_WITHOUT_CARE.get(case.state, "active")
    return CarePlan(
        status=status,
        intent="plan",
        subject=builder.patient,
        identifier=[Identifier(system=f"{CAREPATH}:case", value=str(case.id))],
        category=[text_concept("At-home ketamine therapy for depression or anxiety with insomnia")],
        description=f"carepath case in state {case.state} (phase {case.phase}).",
        period=Period(start=case.created_at),
        created=case.created_at,
    )


def task(reminder: Reminder, builder: BundleBuilder) -> Task:
    # "for" is a Python keyword: the model names the field ``for_fhir``.
    subject: dict[str, Any] = {"for_fhir": builder.patient}
    return Task(
        status="requested",
        intent="order",
        code=concept(f"{CAREPATH}:reminder-kind", reminder.kind, reminder.kind.replace("_", " ")),
        basedOn=[builder.plan],
        authoredOn=reminder.created_at,
        restriction=TaskRestriction(period=Period(end=reminder.due_at)),
        performerType=[text_concept(reminder.recipient_role)],
        **subject,
    )


def score_observation(assessment: Assessment, builder: BundleBuilder) -> Observation:
    components = []
    if assessment.instrument == "phq9" and assessment.item9 is not None:
        components.append(
            ObservationComponent(code=concept(*PHQ9_ITEM9), valueInteger=assessment.item9)
        )
    return Observation(
        status="final",
        category=[concept(OBSERVATION_CATEGORY, "survey", "Survey")],
        code=concept(*INSTRUMENT_CODES[assessment.instrument]),
        subject=builder.patient,
        basedOn=[builder.plan],
        effectiveDateTime=assessment.taken_at,
        valueInteger=assessment.score,
        component=components or None,
    )


def _mmhg(code: tuple[str, str, str], value: int) -> ObservationComponent:
    quantity = Quantity(value=Decimal(value), unit="mmHg", system=UCUM, code="mm[Hg]")
    return ObservationComponent(code=concept(*code), valueQuantity=quantity)


def blood_pressure(
    reading: Vital | DoseClearance, taken_at: datetime, builder: BundleBuilder
) -> Observation:
    components = [_mmhg(SYSTOLIC, reading.systolic), _mmhg(DIASTOLIC, reading.diastolic)]
    heart_rate = getattr(reading, "heart_rate", None)
    if heart_rate is not None:
        rate = Quantity(value=Decimal(heart_rate), unit="beats/minute", system=UCUM, code="/min")
        components.append(ObservationComponent(code=concept(*HEART_RATE), valueQuantity=rate))
    return Observation(
        status="final",
        category=[concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        code=concept(*BLOOD_PRESSURE),
        subject=builder.patient,
        basedOn=[builder.plan],
        effectiveDateTime=taken_at,
        component=components,
    )


def medication_statement(medication: Medication, builder: BundleBuilder) -> MedicationStatement:
    dosage = " ".join(part for part in (medication.dose, medication.frequency) if part)
    return MedicationStatement(
        status="active" if medication.status == "active" else "stopped",
        medicationCodeableConcept=text_concept(medication.name),
        subject=builder.patient,
        dateAsserted=medication.updated_at,
        category=text_concept(medication.drug_class),
        dosage=[Dosage(text=dosage)] if dosage else None,
    )


def adverse_event(event: AdverseEvent, builder: BundleBuilder) -> FhirAdverseEvent:
    outcome = "resolved" if event.resolved_at else "ongoing"
    return FhirAdverseEvent(
        actuality="actual",
        subject=builder.patient,
        event=CodeableConcept(
            coding=[Coding(system=f"{CAREPATH}:adverse-event-kind", code=event.kind)],
            text=event.description,
        ),
        severity=concept(AE_SEVERITY, event.severity, event.severity.capitalize()),
        outcome=concept(AE_OUTCOME, outcome, outcome.capitalize()),
        date=event.onset_at,
        recordedDate=event.created_at,
        detected=event.created_at,
    )


def provenance(audit: AuditEvent, builder: BundleBuilder) -> Provenance:
    """Who did what, when: one audit event, without its recorded values."""
    if audit.kind == "transition":
        what = f"{audit.trigger}: {audit.from_state} -> {audit.to_state}"
        code = audit.trigger or "transition"
    else:
        code = str(audit.data.get("fact", "fact"))
        what = f"recorded {code.replace('_', ' ')}"
    if audit.actor_id is None:
        who = Reference(type="Device", identifier=Identifier(system=ACTOR, value="system"))
    else:
        user = Identifier(system=f"{CAREPATH}:user", value=str(audit.actor_id))
        who = Reference(type="Practitioner", identifier=user)
    return Provenance(
        target=[builder.plan, *builder.fact_references(audit)],
        recorded=audit.at,
        activity=CodeableConcept(
            coding=[Coding(system=f"{CAREPATH}:audit-{audit.kind}", code=code)], text=what
        ),
        agent=[ProvenanceAgent(who=who, role=[text_concept(audit.actor_role)])],
    )
