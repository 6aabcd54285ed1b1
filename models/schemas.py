"""Request bodies: what a client may send, validated before anything is written.

Bodies forbid unknown fields: a misspelt optional field (``item_9`` for
``item9``) must be an error, never silently dropped.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No timestamp a client sends may be earlier than this (SPEC.md section 4)."""


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _not_a_number(value: Any) -> Any:
    """A timestamp or date is an ISO string (or, from Python, a date): never a number.

    Pydantic would read ``0`` or ``"1700000000"`` as seconds since 1970.
    """
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 string like 2026-11-02T14:30:00Z, not a number")
    return value


def _storable(value: datetime) -> datetime:
    """``value`` in UTC, if it converts there and is not before 2000-01-01; else a 422."""
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("is outside the range of storable timestamps") from None
    if value < EARLIEST:
        raise ValueError("may not be before 2000-01-01")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_not_a_number),
    AfterValidator(_storable),
    Field(
        description="ISO 8601 with a time zone, not before 2000-01-01.",
        examples=["2026-11-02T14:30:00Z"],
    ),
]
"""Every timestamp a client sends: with a zone, never a number, storable, from 2000 on.

How far it may lie in the future depends on the clock, and how far in the
past on the case: the services check both (``workflow.records.not_future``).
"""
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _a_date(value: Any) -> Any:
    """A calendar date is ``YYYY-MM-DD`` (or, from Python, a date): never a number, nor a
    timestamp that pydantic would cut to its day."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_ONLY.match(value):
        raise ValueError("must be an ISO 8601 date like 2026-11-02, not a number or a time")
    return value


Date = Annotated[date, BeforeValidator(_a_date)]
"""A calendar date as an ISO string (``2026-11-02``), never a number or a timestamp."""
StrictBool = Annotated[bool, Field(strict=True)]
"""A JSON ``true`` or ``false``: never ``"yes"``, ``1`` or ``"true"``."""

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA PR RI SC SD TN TX UT VT VA WA WV WI WY".split()
)
USState = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["CA"])]
NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold a NUL character; refuse it at the door on every database."""
Text = Annotated[str, Field(min_length=1, max_length=4000, pattern=NO_NUL)]
RecordId = Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)]
"""The id of a record, as a JSON integer: never ``"1"`` or ``true``."""
Role = Literal["admin", "coordinator", "clinician"]
Diagnosis = Literal["depression", "anxiety", "ptsd", "other"]
Instrument = Literal["phq9", "gad7", "isi"]
SessionKind = Literal["preparation", "dosing", "integration"]
Severity = Literal["mild", "moderate", "severe"]
AdverseEventKind = Literal[
    "new_onset_insomnia",
    "worsened_insomnia",
    "worsened_depression",
    "dissociation",
    "blood_pressure_increase",
    "nausea",
    "dizziness",
    "memory_problems",
    "urinary_symptoms",
    "respiratory_depression",
    "psychiatric_event",
    "suicidal_ideation",
    "substance_misuse",
    "hypnotic_restarted",
    "other",
]
"""SPEC.md 4.6; ``workflow.risk`` says, per kind, what it holds and which review it opens."""
RiskLevel = Literal["low", "moderate", "high"]
INSTRUMENT_MAX = {"phq9": 27, "gad7": 21, "isi": 28}


class Body(BaseModel):
    """A request body: unknown fields are errors.

    Clinical numbers and flags are ``strict``: ``"5"`` is not a score and
    ``"yes"`` is not ``true``.
    """

    model_config = ConfigDict(extra="forbid")


def _check_state(code: str) -> str:
    if code not in US_STATES:
        raise ValueError(f"{code!r} is not a US state code")
    return code


class LicenseIn(Body):
    state: USState
    expires_on: Date | None = Field(
        default=None, description="The last day the licence is valid; none: no expiry."
    )

    @model_validator(mode="after")
    def _state(self) -> Self:
        _check_state(self.state)
        return self


Licenses = Annotated[list[LicenseIn], Field(max_length=60)]


def merge_licenses(licenses: list[LicenseIn]) -> list[LicenseIn]:
    """One licence per state, the longest-lasting (no expiry lasts longest), sorted by state."""
    best: dict[str, LicenseIn] = {}
    for licence in licenses:
        held = best.get(licence.state)
        if held is None or _lasts(licence) > _lasts(held):
            best[licence.state] = licence
    return [best[state] for state in sorted(best)]


def _lasts(licence: LicenseIn) -> date:
    return licence.expires_on or date.max


class UserCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Role
    licenses: Licenses = Field(default_factory=list)
    license_states: list[USState] = Field(
        default_factory=list, max_length=60, description="Licences without an expiry date."
    )

    @model_validator(mode="after")
    def _licenses(self) -> Self:
        given = self.licenses + [LicenseIn(state=_check_state(s)) for s in self.license_states]
        if given and self.role != "clinician":
            raise ValueError("only a clinician holds licences")
        self.licenses, self.license_states = merge_licenses(given), []
        return self


class UserLicenses(Body):
    licenses: Licenses

    @model_validator(mode="after")
    def _merge(self) -> Self:
        self.licenses = merge_licenses(self.licenses)
        return self


PATIENT_REF_PATTERN = r"^[A-Za-z0-9._:-]+$"
"""ASCII only: ``lower()`` then means the same in Python, SQLite and PostgreSQL."""


class CaseCreate(Body):
    patient_ref: str = Field(
        min_length=1,
        max_length=64,
        pattern=PATIENT_REF_PATTERN,
        description="An opaque reference to the patient: never a name.",
    )
    patient_state: USState

    @model_validator(mode="after")
    def _state(self) -> Self:
        _check_state(self.patient_state)
        return self


class CaseUpdate(Body):
    """``PATCH /cases/{id}``: the patient moved to another state."""

    patient_state: USState

    @model_validator(mode="after")
    def _state(self) -> Self:
        _check_state(self.patient_state)
        return self


class CaseAssignment(Body):
    """``POST /cases/{id}/assignment``: who looks after the case; either or both."""

    clinician_id: RecordId | None = Field(
        default=None, description="An active clinician: the case's clinician from now on."
    )
    coordinator_id: RecordId | None = Field(
        default=None, description="An active coordinator: the case's coordinator from now on."
    )

    @model_validator(mode="after")
    def _either(self) -> Self:
        if self.clinician_id is None and self.coordinator_id is None:
            raise ValueError("send a clinician_id, a coordinator_id or both")
        return self


class HistoryIn(Body):
    insomnia_nights_per_week: int = Field(strict=True, ge=0, le=7)
    insomnia_duration_months: int = Field(strict=True, ge=0, le=600)
    diagnoses: list[Diagnosis] = Field(max_length=4)
    insomnia_mood_driven: bool | None = Field(
        default=None,
        strict=True,
        description="Clinician only to set true; left out, the recorded value stays.",
    )
    failed_antidepressant_trials: int = Field(strict=True, ge=0, le=50)
    cbti_completed: StrictBool
    seeking_sleep_med_replacement: StrictBool
    substance_use_disorder_history: StrictBool
    uncontrolled_hypertension: StrictBool
    active_psychosis: StrictBool
    psychosis_or_mania_history: StrictBool
    severe_psychiatric_instability: StrictBool
    significant_breathing_problems: StrictBool
    sleep_apnea: StrictBool
    aneurysm_avm_or_ich: StrictBool
    recent_mi_or_stroke: StrictBool


EARLIEST_BIRTH = date(1900, 1, 1)


def _born_after_1900(value: date) -> date:
    # "Not in the future" depends on the clock and the timezone setting: the service checks it.
    if value <= EARLIEST_BIRTH:
        raise ValueError("must be after 1900-01-01")
    return value


class ProfileIn(Body):
    date_of_birth: Annotated[Date, AfterValidator(_born_after_1900)] = Field(
        description="YYYY-MM-DD, after 1900-01-01, not in the future."
    )
    pregnant: StrictBool
    breastfeeding: StrictBool


ConsentMethod = Literal["electronic", "paper"]


class ConsentCreate(Body):
    version: str = Field(
        min_length=1,
        max_length=20,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The consent form's version, e.g. `2026-1`.",
    )
    signed_at: Timestamp
    method: ConsentMethod


PHQ9_OTHER_ITEMS_MAX = 24
"""PHQ-9 items 1-8 score at most 3 each: a total above 24 needs item 9 (SPEC.md 4.2)."""


class AssessmentCreate(Body):
    instrument: Instrument
    score: int = Field(strict=True, ge=0, le=28)
    item9: int | None = Field(
        strict=True,
        default=None,
        ge=0,
        le=3,
        validate_default=True,
        description="PHQ-9 only, and required there.",
    )
    taken_at: Timestamp

    @field_validator("item9")
    @classmethod
    def _item9(cls, item9: int | None, info: ValidationInfo) -> int | None:
        """A PHQ-9 carries item 9, consistent with its total; no other instrument has one."""
        instrument, score = info.data.get("instrument"), info.data.get("score")
        if instrument is None or score is None:  # already refused: nothing to compare with
            return item9
        if instrument != "phq9":
            if item9 is not None:
                raise ValueError("item9 belongs to a phq9 only")
            return None
        if item9 is None:
            raise PydanticCustomError("missing", "a phq9 requires item9 (0-3, the self-harm item)")
        if item9 > score:
            raise ValueError(f"item9 ({item9}) cannot be more than the total score ({score})")
        if score - item9 > PHQ9_OTHER_ITEMS_MAX:
            raise ValueError(
                f"a total of {score} needs an item9 of at least {score - PHQ9_OTHER_ITEMS_MAX}: "
                f"items 1-8 score at most {PHQ9_OTHER_ITEMS_MAX}"
            )
        return item9

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        top = INSTRUMENT_MAX[self.instrument]
        if self.score > top:
            raise ValueError(f"a {self.instrument} score is 0 to {top}")
        return self


MedicationStatus = Literal["active", "stopped"]
DrugClass = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]


class MedicationCreate(Body):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    dose: str | None = Field(default=None, max_length=100, pattern=NO_NUL)
    frequency: str | None = Field(default=None, max_length=100, pattern=NO_NUL)
    status: MedicationStatus = Field(
        default="active", description="`stopped` for a medication the patient already stopped."
    )
    stopped_on: Date | None = Field(
        default=None, description="When a `stopped` medication was last taken (default today)."
    )

    @model_validator(mode="after")
    def _stopped_on(self) -> Self:
        if self.stopped_on is not None and self.status != "stopped":
            raise ValueError("stopped_on is only for a medication with status 'stopped'")
        return self


class MedicationUpdate(Body):
    status: MedicationStatus | None = Field(default=None, description="`active` or `stopped`.")
    stopped_on: Date | None = Field(
        default=None, description="With status `stopped`: the last day taken (default today)."
    )
    drug_class: DrugClass | None = Field(
        default=None,
        description="Clinician only: the class of a name the drug table does not know.",
        examples=["no_known_interaction"],
    )
    class_reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        pattern=NO_NUL,
        description="Why the clinician assigns `drug_class` (required with it).",
    )

    @model_validator(mode="after")
    def _fields(self) -> Self:
        if self.status is None and self.drug_class is None:
            raise ValueError("send a status, or a drug_class with a class_reason")
        if self.stopped_on is not None and self.status != "stopped":
            raise ValueError("stopped_on is only for status 'stopped'")
        if (self.drug_class is None) != (self.class_reason is None):
            raise ValueError("drug_class and class_reason go together")
        return self


class ScreeningCreate(Body):
    notes: str | None = Field(default=None, max_length=4000, pattern=NO_NUL)


class TaperCreate(Body):
    medication_id: RecordId
    plan: Text


class TaperConfirm(Body):
    last_dose_on: Date


class VitalCreate(Body):
    systolic: int = Field(strict=True, ge=50, le=300)
    diastolic: int = Field(strict=True, ge=30, le=200)
    heart_rate: int | None = Field(strict=True, default=None, ge=20, le=250)
    taken_at: Timestamp


Phone = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^[0-9+()./ -]+$")]
PersonName = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Relationship = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
Systolic = Annotated[int, Field(strict=True, ge=50, le=300)]
Diastolic = Annotated[int, Field(strict=True, ge=30, le=200)]


class EmergencyContactCreate(Body):
    name: PersonName
    relationship: Relationship
    phone: Phone


class MonitorCreate(Body):
    name: PersonName
    relationship: Relationship
    phone: Phone
    adult_attested: StrictBool = Field(description="Must be true: the monitor is an adult.")
    trained_on: Date

    @model_validator(mode="after")
    def _adult(self) -> Self:
        if not self.adult_attested:
            raise ValueError("adult_attested must be true: a treatment monitor is an adult")
        return self


class MonitorUpdate(Body):
    active: StrictBool


class ClearanceCreate(Body):
    systolic: Systolic
    diastolic: Diastolic
    heart_rate: int | None = Field(strict=True, default=None, ge=20, le=250)
    monitor_id: RecordId


class ClearanceCancel(Body):
    reason: Text


class SessionCreate(Body):
    """A session; a ``dosing`` one is the record of a dose (SPEC.md 4.4).

    Which fields a kind of session needs is the workflow's rule
    (``workflow.dosing.check_fields``), so that the message names each field.
    """

    kind: SessionKind
    completed_at: Timestamp
    notes: str | None = Field(default=None, max_length=4000, pattern=NO_NUL)
    dosed_at: Timestamp | None = None
    dose_mg: float | None = Field(default=None, strict=True, gt=0, le=1000, allow_inf_nan=False)
    units_taken: int | None = Field(default=None, strict=True, ge=1, le=100)
    monitor_id: RecordId | None = None
    clearance_id: RecordId | None = None
    post_systolic: Systolic | None = None
    post_diastolic: Diastolic | None = None
    post_taken_at: Timestamp | None = None
    recheck_systolic: Systolic | None = None
    recheck_diastolic: Diastolic | None = None
    recheck_taken_at: Timestamp | None = None


class AdverseEventCreate(Body):
    kind: AdverseEventKind
    severity: Severity
    description: Text
    onset_at: Timestamp | None = Field(
        default=None, description="When it began (default: when it is recorded)."
    )


class AdverseEventResolve(Body):
    note: Text


class SafetyPlanCreate(Body):
    plan: Text
    reviewed_with_patient_at: Timestamp
    risk_level: RiskLevel = Field(description="The clinician's suicide-risk assessment.")
    means_secured: StrictBool = Field(
        description="The ketamine on hand is locked away or held by the treatment monitor."
    )


Route = Literal["sublingual", "oral", "intranasal"]
Units = Annotated[int, Field(strict=True, ge=1, le=100)]
"""Units of ketamine (tablets, troches, sprays): 1-100 in one record."""
Lot = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
ReturnKind = Literal["returned", "disposed", "lost"]


class DispenseCreate(Body):
    """A refill (SPEC.md 4.5): the same fields as ``ship``'s body."""

    quantity_units: Units
    lot: Lot
    carrier: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)
    tracking_number: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)


class ReceiptCreate(Body):
    received_at: Timestamp


class CountCreate(Body):
    units_counted: int = Field(strict=True, ge=0, le=1000)
    counted_at: Timestamp


class ReturnCreate(Body):
    units: Units
    kind: ReturnKind
    witness: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="The adult who saw the units returned or disposed of (required for both).",
    )


class TransitionBody(Body):
    """The optional body of a transition; which fields a trigger needs is in the workflow."""

    reason: str | None = Field(default=None, min_length=1, max_length=4000, pattern=NO_NUL)
    dose_mg: float | None = Field(default=None, strict=True, gt=0, le=1000, allow_inf_nan=False)
    route: Route | None = None
    formulation: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    units_per_dose: int | None = Field(default=None, strict=True, ge=1, le=10)
    carrier: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)
    tracking_number: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)
    rationale: str | None = Field(default=None, min_length=1, max_length=4000, pattern=NO_NUL)
    quantity_units: Units | None = None
    lot: Lot | None = None
