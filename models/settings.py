"""carepath's settings: one object, read from ``CAREPATH_*`` environment variables.

The clinical thresholds are here, with the defaults of SPEC.md section 3 and 4,
so that a clinician can review them in one place and an operator can change
them without touching code.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting carepath reads, with its default."""

    model_config = SettingsConfigDict(env_prefix="CAREPATH_", extra="ignore")

    database_url: str = "sqlite:///./carepath.db"
    admin_token: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    dispatch_seconds: float = Field(default=30.0, gt=0)
    dispatch_batch_size: int = Field(default=100, ge=1)
    delivery_max_attempts: int = Field(default=5, ge=1)
    delivery_backoff_seconds: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=65536, ge=1)
    """A request body over this many bytes is a 413, refused before it is read whole."""
    idempotency_hours: float = Field(default=24.0, gt=0)
    """How long a POST's ``Idempotency-Key`` and its response are kept for replays."""

    # Clinical thresholds (SPEC.md section 3 and 4).
    baseline_window_days: int = Field(default=30, ge=1)
    """Baseline PHQ-9, GAD-7, ISI and blood pressure must be this recent for approval."""
    recent_window_days: int = Field(default=14, ge=1)
    """PHQ-9 and ISI must be this recent to adjust the dose or discharge."""
    mood_score_min: int = Field(default=10, ge=0)
    """The latest PHQ-9 or GAD-7 must reach this for criteria.mood_disorder."""
    insomnia_nights_min: int = Field(default=3, ge=0)
    insomnia_months_min: int = Field(default=3, ge=0)
    failed_trials_min: int = Field(default=2, ge=0)
    hypertension_systolic: int = Field(default=160, gt=0)
    """A reading at or above this systolic pressure is uncontrolled hypertension."""
    hypertension_diastolic: int = Field(default=100, gt=0)
    predose_systolic: int = Field(default=140, gt=0)
    """A dose clearance needs a systolic pressure below this."""
    predose_diastolic: int = Field(default=90, gt=0)
    clearance_valid_minutes: int = Field(default=120, ge=1)
    isi_worsening_points: int = Field(default=6, ge=1)
    """An ISI this far above baseline after the first dose records worsened insomnia."""
    phq9_item9_min: int = Field(default=1, ge=0)
    """A PHQ-9 item 9 at or above this records suicidal ideation."""
    clock_skew_seconds: int = Field(default=60, ge=0)
    """How far past the server's clock a client's timestamp may be before it is "future"."""
    fact_max_age_days: float = Field(default=365.0, gt=0)
    """A fact's own time may not be earlier than this before the case was created."""


settings = Settings()
