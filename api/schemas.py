"""What the API sends back, where the stored row is not already the right shape.

Facts are returned as their ``models.facts`` rows. Cases, users, events and
reminders have public models: a user's token hash, a case's internal counters
and a reminder's delivery bookkeeping stay inside.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Public(BaseModel):
    """A response model read from a row's attributes."""

    model_config = ConfigDict(from_attributes=True)


class Referral(BaseModel):
    referral: str = Field(examples=["sleep_medicine"])
    answers: str | None = Field(examples=["contraindication.respiratory"])


class PrescriptionPublic(BaseModel):
    """The dose in force (SPEC.md 4.5)."""

    dose_mg: float | None
    route: str | None
    formulation: str | None
    units_per_dose: int | None
    prescribed_by: int | None
    prescribed_at: datetime | None
    refills: int = 0


class CasePublic(Public):
    id: int
    patient_ref: str
    patient_state: str
    state: str
    phase: str
    version: int = Field(description='Also sent as the `ETag` header, e.g. "3".')
    assigned_clinician_id: int | None
    assigned_coordinator_id: int | None
    held_from: str | None = Field(description="On hold: the state `resume` returns to.")
    referrals: list[Referral] = Field(
        description="Declined: what the guide recommends instead, and which failed requirement "
        "each answers (SPEC.md 4.7)."
    )
    prescription: PrescriptionPublic | None = Field(
        default=None, description="The dose in force; null before `prescribe`."
    )
    units_on_hand: int = Field(
        default=0,
        description="Units of ketamine at the patient's home, from the records: received - "
        "taken - returned - disposed - lost (SPEC.md 4.5).",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, case: Any, units_on_hand: int) -> CasePublic:
        """The public view of ``case``, holding ``units_on_hand`` units."""
        view = cls.model_validate(case)
        view.units_on_hand = units_on_hand
        return view


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list, oldest first."""

    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class CasePage(BaseModel):
    items: list[CasePublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class UnmetPublic(Public):
    code: str
    message: str


class TriggerOptionPublic(Public):
    trigger: str
    dest: str
    allowed: bool = Field(description="Whether the caller could fire it now.")
    unmet: list[UnmetPublic]
    roles: list[str]


class EventPublic(Public):
    id: int
    case_id: int
    at: datetime
    actor_id: int | None
    actor_role: str = Field(description="The actor's role, or `system`.")
    kind: str = Field(description="`transition` or `fact`.")
    trigger: str | None
    from_state: str | None
    to_state: str | None
    data: dict[str, Any]
    prev_hash: str | None = Field(description="The hash of the case's previous event.")
    hash: str = Field(description="SHA-256 chaining this event to the previous one.")


class ChainVerdict(BaseModel):
    """The verdict on a case's audit hash chain."""

    ok: bool = Field(description="Every event chains to the one before it and to the case.")
    events: int = Field(description="How many events were checked.")
    first_bad_event_id: int | None = Field(
        default=None, description="When not ok: the first event that does not chain."
    )


class LicensePublic(BaseModel):
    state: str
    expires_on: date | None = Field(description="The last day it is valid; null: no expiry.")


class UserPublic(BaseModel):
    id: int
    name: str
    role: str
    licenses: list[LicensePublic]
    license_states: list[str] = Field(description="The states whose licence is valid today.")
    active: bool = Field(description="A deactivated user's token is refused (401).")
    created_at: datetime


class UserCreated(UserPublic):
    token: str = Field(description="The user's bearer token. It is shown this once only.")


class UserPage(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class UserEventPublic(Public):
    id: int
    user_id: int
    at: datetime
    actor_id: int | None = Field(description="The admin who made the change; null: the CLI.")
    kind: str = Field(
        description="`created`, `licenses_changed`, `deactivated`, `reactivated` or "
        "`token_rotated`."
    )
    data: dict[str, Any]


class UserEventPage(BaseModel):
    items: list[UserEventPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class ReminderPublic(Public):
    id: int
    case_id: int
    kind: str
    due_at: datetime
    recipient_role: str
    recipient_id: int | None = Field(description="The case's assigned user of that role, if any.")
    taper_id: int | None = Field(description="For a `taper_checkin`: the taper it is about.")
    status: str = Field(
        description="`pending`, `sent` (waiting for a person), `acknowledged`, `cancelled`, "
        "`failed`."
    )
    attempts: int
    sent_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    escalates: int | None = Field(description="For an escalation: the original reminder's id.")
    created_at: datetime
    updated_at: datetime


class ReminderPage(BaseModel):
    items: list[ReminderPublic]
    next_cursor: str | None


class Health(BaseModel):
    status: str = Field(examples=["ok"])
