"""The clinical facts recorded on a case (SPEC.md section 4)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, timestamp_field


def _case_fk() -> Any:
    return Field(foreign_key="cases.id", index=True)


class History(SQLModel, table=True):
    """The clinical history taken at evaluation: one per case, replaced by PUT."""

    __tablename__ = "histories"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", unique=True)
    insomnia_nights_per_week: int
    insomnia_duration_months: int
    diagnoses: list[str] = Field(default_factory=list, sa_type=JSON)
    insomnia_mood_driven: bool = False
    """A clinician's judgement that the insomnia follows the mood disorder."""
    failed_antidepressant_trials: int
    cbti_completed: bool
    seeking_sleep_med_replacement: bool
    substance_use_disorder_history: bool
    uncontrolled_hypertension: bool
    active_psychosis: bool
    psychosis_or_mania_history: bool = False
    severe_psychiatric_instability: bool
    significant_breathing_problems: bool
    sleep_apnea: bool
    aneurysm_avm_or_ich: bool = False
    """Aneurysmal vascular disease, arteriovenous malformation or intracerebral haemorrhage."""
    recent_mi_or_stroke: bool = False
    """A myocardial infarction or stroke in the last 6 months."""
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class Profile(SQLModel, table=True):
    """The patient's profile: date of birth, pregnancy, breastfeeding. One per case."""

    __tablename__ = "profiles"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", unique=True)
    date_of_birth: date
    pregnant: bool
    breastfeeding: bool
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class Consent(SQLModel, table=True):
    """The patient's informed consent to one version of the program's consent form."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_case_version", "case_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    version: str = Field(max_length=20)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    method: str = Field(max_length=20)
    recorded_by: int | None = None
    created_at: datetime = timestamp_field()


class Assessment(SQLModel, table=True):
    """A PHQ-9, GAD-7 or ISI score."""

    __tablename__ = "assessments"
    __table_args__ = (
        Index("ix_assessments_case_instrument_taken", "case_id", "instrument", "taken_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    instrument: str = Field(max_length=10)
    score: int
    item9: int | None = None
    taken_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = timestamp_field()


class Medication(SQLModel, table=True):
    """A medication on the patient's list, classified from the drug table."""

    __tablename__ = "medications"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    name: str = Field(max_length=200)
    dose: str | None = Field(default=None, max_length=100)
    frequency: str | None = Field(default=None, max_length=100)
    drug_class: str = Field(max_length=40)
    drug_classes: list[str] = Field(default_factory=list, sa_type=JSON)
    """Every class the name contains (a combination product has several)."""
    status: str = Field(default="active", max_length=10)
    stopped_on: date | None = None
    class_reason: str | None = Field(default=None, max_length=4000)
    """Why a clinician assigned the class of a name the drug table does not know."""
    class_set_by: int | None = None
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class InteractionScreening(SQLModel, table=True):
    """A clinician's screening of the active medication list against the interaction table."""

    __tablename__ = "interaction_screenings"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    clinician_id: int | None = None
    medication_list_version: int
    result: str = Field(max_length=10)
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    notes: str | None = Field(default=None, max_length=4000)
    drug_table_version: str | None = Field(default=None, max_length=40)
    created_at: datetime = timestamp_field()


class Taper(SQLModel, table=True):
    """A taper plan for a benzodiazepine or Z-drug, and its confirmation."""

    __tablename__ = "tapers"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    medication_id: int = Field(foreign_key="medications.id")
    plan: str = Field(max_length=4000)
    planned_by: int | None = None
    active_when_planned: bool = True
    """Whether the medication was active when the taper was planned: then its last dose may not
    be before the plan's date; otherwise it is on or before the medication's ``stopped_on``."""
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_by: int | None = None
    last_dose_on: date | None = None
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set when the medication is made active again: the taper no longer counts."""
    created_at: datetime = timestamp_field()


class Vital(SQLModel, table=True):
    """A blood-pressure reading."""

    __tablename__ = "vitals"
    __table_args__ = (Index("ix_vitals_case_taken", "case_id", "taken_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    systolic: int
    diastolic: int
    heart_rate: int | None = None
    taken_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = timestamp_field()


class EmergencyContact(SQLModel, table=True):
    """Someone to call in an emergency (SPEC.md 4.1): personal data, never logged."""

    __tablename__ = "emergency_contacts"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    name: str = Field(max_length=200)
    relationship: str = Field(max_length=100)
    phone: str = Field(max_length=40)
    recorded_by: int | None = None
    created_at: datetime = timestamp_field()


class Monitor(SQLModel, table=True):
    """A treatment monitor: an adult who stays with the patient through each dose (4.1)."""

    __tablename__ = "monitors"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    name: str = Field(max_length=200)
    relationship: str = Field(max_length=100)
    phone: str = Field(max_length=40)
    adult_attested: bool
    trained_on: date
    active: bool = True
    recorded_by: int | None = None
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()


class DoseClearance(SQLModel, table=True):
    """A pre-dose check (SPEC.md 3.3, 4.4): granted, or refused with every unmet requirement.

    A granted clearance is ``open`` until a dosing session uses it, it is
    cancelled, or it is ``void``; while open it counts as a dose at its grant.
    """

    __tablename__ = "dose_clearances"
    __table_args__ = (
        # contraindication.hypertension: the granted pre-dose readings of a time range.
        Index("ix_dose_clearances_case_granted_created", "case_id", "granted", "created_at"),
        Index("ix_dose_clearances_case_open_created", "case_id", "open", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    systolic: int
    diastolic: int
    heart_rate: int | None = None
    monitor_id: int | None = None
    """The monitor the request named; a refused clearance may name one that is no monitor."""
    granted: bool
    unmet: list[dict[str, str]] = Field(default_factory=list, sa_type=JSON)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    open: bool = False
    void: bool = False
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    void_reason: str | None = Field(default=None, max_length=400)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_by: int | None = None
    cancel_reason: str | None = Field(default=None, max_length=4000)
    recorded_by: int | None = None
    created_at: datetime = timestamp_field()


class CareSession(SQLModel, table=True):
    """A preparation, dosing or integration session; a dosing one is the dose record (4.4)."""

    __tablename__ = "care_sessions"
    __table_args__ = (
        Index("ix_care_sessions_clearance", "clearance_id"),
        Index("ix_care_sessions_case_kind", "case_id", "kind", "completed_at"),
        Index("ix_care_sessions_case_kind_dosed", "case_id", "kind", "dosed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    kind: str = Field(max_length=20)
    completed_at: datetime = Field(sa_type=UTCDateTime)
    notes: str | None = Field(default=None, max_length=4000)
    clearance_id: int | None = Field(default=None, foreign_key="dose_clearances.id")
    dosed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dose_mg: float | None = None
    units_taken: int | None = None
    monitor_id: int | None = Field(default=None, foreign_key="monitors.id")
    post_systolic: int | None = None
    post_diastolic: int | None = None
    post_taken_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recheck_systolic: int | None = None
    recheck_diastolic: int | None = None
    recheck_taken_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deviations: list[str] = Field(default_factory=list, sa_type=JSON)
    """The rules of SPEC.md 4.4 this dose did not keep; each is also an adverse event."""
    created_at: datetime = timestamp_field()


class AdverseEvent(SQLModel, table=True):
    """An adverse event, recorded by staff or by the service itself."""

    __tablename__ = "adverse_events"
    __table_args__ = (
        Index("ix_adverse_events_case_resolved", "case_id", "resolved_at"),
        Index("ix_adverse_events_case_kind_onset", "case_id", "kind", "onset_at"),
        # The service records one event of a kind per assessment, however often it looks.
        Index("uq_adverse_events_assessment_kind", "assessment_id", "kind", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    kind: str = Field(max_length=40)
    severity: str = Field(max_length=10)
    description: str = Field(max_length=4000)
    onset_at: datetime = Field(sa_type=UTCDateTime)
    """When it began: given by staff (default: when recorded), or the time of the fact that
    made the service record it."""
    recorded_by_system: bool = False
    assessment_id: int | None = Field(default=None, foreign_key="assessments.id")
    """The assessment the service found it in, if it did."""
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: int | None = None
    resolution_note: str | None = Field(default=None, max_length=4000)
    created_at: datetime = timestamp_field()


class CaseChange(SQLModel, table=True):
    """A change to the case itself: its assignment, or the patient's state (``PATCH``).

    ``changes`` holds the new value of each case column that changed (empty
    when the write changed nothing), ``previous`` their values before.
    """

    __tablename__ = "case_changes"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    fact: str = Field(max_length=40)
    """``assignment`` or ``case_update``."""
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    previous: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    made_by: int | None = None
    created_at: datetime = timestamp_field()


class SafetyPlan(SQLModel, table=True):
    """A clinician's suicide-risk assessment and safety plan, reviewed with the patient."""

    __tablename__ = "safety_plans"
    __table_args__ = (
        Index("ix_safety_plans_case_reviewed", "case_id", "reviewed_with_patient_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    plan: str = Field(max_length=4000)
    reviewed_with_patient_at: datetime = Field(sa_type=UTCDateTime)
    risk_level: str = Field(max_length=10)
    means_secured: bool
    recorded_by: int | None = None
    created_at: datetime = timestamp_field()


class Dispense(SQLModel, table=True):
    """Ketamine sent to the patient's home (SPEC.md 4.5): the first by ``ship``, then refills.

    Its units count as on hand from ``received_at``: ``confirm_delivery`` for the
    first, ``POST dispenses/{id}/receipt`` for a refill.
    """

    __tablename__ = "dispenses"
    __table_args__ = (Index("ix_dispenses_case_received", "case_id", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    kind: str = Field(max_length=10)
    """``first`` (sent by ``ship``) or ``refill`` (``POST dispenses``)."""
    quantity_units: int
    lot: str = Field(max_length=100)
    carrier: str | None = Field(default=None, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=100)
    dispensed_by: int | None = None
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_by: int | None = None
    created_at: datetime = timestamp_field()


class MedicationCount(SQLModel, table=True):
    """A count of the units at the patient's home, against what the record says is there."""

    __tablename__ = "medication_counts"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    units_counted: int
    counted_at: datetime = Field(sa_type=UTCDateTime)
    expected_units: int
    """The units on hand by the record when the count was recorded."""
    shortfall: int = 0
    """Units missing beyond ``count_tolerance_units``; recorded once, as a ``lost`` return."""
    recorded_by: int | None = None
    created_at: datetime = timestamp_field()


class MedicationReturn(SQLModel, table=True):
    """Units that left the patient's home other than by a dose: returned, disposed of, lost."""

    __tablename__ = "medication_returns"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = _case_fk()
    units: int
    kind: str = Field(max_length=10)
    """``returned``, ``disposed`` or ``lost``."""
    witness: str | None = Field(default=None, max_length=200)
    """The adult who saw it (returned, disposed); ``count`` for a shortfall found by a count."""
    count_id: int | None = Field(default=None, foreign_key="medication_counts.id")
    recorded_by: int | None = None
    created_at: datetime = timestamp_field()
