"""carepath's settings: one object, read from ``CAREPATH_*`` environment variables.

The clinical thresholds are here, with the defaults of SPEC.md section 3 and 4,
so that a clinician can review them in one place and an operator can change
them without touching code.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "CAREPATH_"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
"""URL schemes ``CAREPATH_DATABASE_URL`` may use (``postgres`` is PostgreSQL's short form)."""
DURATION_SUFFIXES = ("_seconds", "_minutes", "_hours", "_days", "_time_scale")
CLINICAL_FLOORS = (
    "observation_minutes",
    "post_dose_bp_min_minutes",
    "post_dose_bp_max_minutes",
    "min_hours_between_doses",
    "reminder_time_scale",
)
"""Settings whose clinical default is also their floor: below it is a demonstration set-up.

Their defaults are the fields' own (one place); start-up and ``/metrics`` name
each one set lower (SPEC.md section 8). A name not (yet) a setting is skipped.
"""


class Settings(BaseSettings):
    """Every setting carepath reads, with its default."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str = "sqlite:///./carepath.db"
    admin_token: str | None = None
    timezone: str = "UTC"
    """The IANA zone whose date is "today" (SPEC.md section 0): licences expire by it."""
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    dispatch_seconds: float = Field(default=30.0, gt=0)
    dispatch_batch_size: int = Field(default=100, ge=1)
    delivery_max_attempts: int = Field(default=5, ge=1)
    delivery_backoff_seconds: float = Field(default=30.0, gt=0)
    reminder_time_scale: float = Field(default=1.0, ge=0)
    """Multiplies every reminder delay, repeat and escalation, and the 4-week check-in
    boundary (SPEC.md section 7): 0 or a fraction runs a week of reminders in a minute."""
    session_idle_minutes: float = Field(default=720, gt=0)
    """A web page session ends after this long without a request (SPEC.md section 9)."""
    max_body_bytes: int = Field(default=65536, ge=1)
    """A request body over this many bytes is a 413, refused before it is read whole."""
    idempotency_hours: float = Field(default=24.0, gt=0)
    """How long a POST's ``Idempotency-Key`` and its response are kept for replays."""
    serve_cpu: str = Field(default="auto", pattern=r"^(auto|off|[0-9]{1,4})$")
    """The CPU ``carepath serve`` keeps itself on: ``auto`` (the one it starts on), a
    number, or ``off`` (``api.cpu`` says why)."""

    # Clinical thresholds (SPEC.md section 3 and 4).
    adult_age_years: int = Field(default=18, ge=0)
    """criteria.adult: the patient is at least this old today (from ``date_of_birth``)."""
    consent_version: str = Field(default="2026-1", min_length=1, max_length=20)
    """consent.signed: a consent of this version is on file; a new one makes older ones lapse."""
    baseline_window_days: float = Field(default=30, ge=1)
    """Baseline PHQ-9, GAD-7, ISI and blood pressure must be this recent for approval."""
    recent_window_days: float = Field(default=14, ge=1)
    """PHQ-9 and ISI must be this recent to prescribe, raise the dose or discharge."""
    vitals_recent_days: float = Field(default=7, ge=1)
    """vitals.recent: a blood-pressure reading this recent is needed to prescribe."""
    mood_score_min: int = Field(default=10, ge=0)
    """The latest PHQ-9 or GAD-7 must reach this for criteria.mood_disorder."""
    insomnia_nights_min: int = Field(default=3, ge=0)
    insomnia_months_min: int = Field(default=3, ge=0)
    failed_trials_min: int = Field(default=2, ge=0)
    # Blood pressure (SPEC.md sections 3.2, 4.2, 4.4). "Below" a limit: both values below it.
    bp_limit_systolic: int = Field(default=140, gt=0)
    """The one blood-pressure limit (SPEC.md 3.2, 3.3): the mean of the recent readings, and
    each pre-dose reading, must be below it, systolic and diastolic both."""
    bp_limit_diastolic: int = Field(default=90, gt=0)
    bp_crisis_systolic: int = Field(default=180, gt=0)
    """A reading at or above this systolic (or the crisis diastolic) records a severe
    ``blood_pressure_increase``."""
    bp_crisis_diastolic: int = Field(default=110, gt=0)
    bp_rise_systolic: int = Field(default=40, gt=0)
    """A post-dose systolic this far above the clearance's records ``blood_pressure_increase``."""
    bp_rise_diastolic: int = Field(default=25, gt=0)
    # Dosing (SPEC.md sections 3.3, 4.4, 4.5).
    clearance_valid_minutes: float = Field(default=120, ge=1)
    """How long a granted dose clearance allows a dose."""
    observation_minutes: float = Field(default=120, ge=0)
    """A dosing session's ``completed_at`` is at least this long after ``dosed_at``."""
    post_dose_bp_min_minutes: float = Field(default=30, ge=0)
    """The post-dose reading is taken no sooner than this after ``dosed_at`` ..."""
    post_dose_bp_max_minutes: float = Field(default=90, ge=0)
    """... and no later than this (0 and 0: at ``dosed_at``)."""
    min_hours_between_doses: float = Field(default=72, ge=0)
    """No dose is cleared within this many hours of a dose or of an open clearance."""
    max_doses_per_window: int = Field(default=2, ge=1)
    """Doses and open clearances allowed within ``dose_limit_window_hours``."""
    dose_limit_window_hours: float = Field(default=168, ge=0)
    max_dose_mg_sublingual: float = Field(default=450, gt=0)
    """The highest dose a prescription may have by this route (program policy)."""
    max_dose_mg_oral: float = Field(default=450, gt=0)
    max_dose_mg_intranasal: float = Field(default=100, gt=0)
    max_initial_dose_mg: float = Field(default=200, gt=0)
    """A case's first prescription may be at most this dose (program policy)."""
    max_dose_step_percent: float = Field(default=50, ge=0)
    """``adjust_dose`` may raise the dose by at most this percentage of the current one."""
    # The controlled-substance record (SPEC.md 4.5 and 8).
    max_doses_per_dispense: int = Field(default=8, ge=1)
    """A dispense holds at most this many doses: ``units_per_dose`` x this many units."""
    refill_grace_units: int = Field(default=2, ge=0)
    """A refill is refused while more than ``units_per_dose`` + this many units are on hand."""
    count_tolerance_units: int = Field(default=0, ge=0)
    """A medication count short by more than this records ``substance_misuse`` (a hold)."""
    refill_max_days: float = Field(default=180, gt=0, le=180)
    """No refill of a prescription older than this (US Schedule III: 6 months; a program may
    be stricter, never looser)."""
    refill_max_count: int = Field(default=5, ge=0, le=5)
    """At most this many refills of one prescription (US Schedule III: 5)."""
    # Risk (SPEC.md 4.6 and 8): what the service records as an adverse event itself.
    phq9_item9_min: int = Field(default=1, ge=1, le=3)
    """A PHQ-9 item 9 at or above this records suicidal ideation (item 9 is 0-3)."""
    isi_worsening_points: int = Field(default=6, ge=1)
    """An ISI this far above baseline after the first dose records worsened insomnia (or an
    ISI of 28, when the baseline is above 22)."""
    phq9_worsening_points: int = Field(default=5, ge=1)
    """A PHQ-9 this far above baseline after the first dose records worsened depression."""
    phq9_severe_score: int = Field(default=20, ge=1, le=27)
    """A PHQ-9 at or above this after the first dose, from a baseline below it, records
    worsened depression."""
    screening_valid_days: float = Field(default=30, gt=0)
    """An interaction screening counts for screening.interactions for at most this long;
    ``screening_due`` comes 3 days before it runs out."""
    drug_table_dir: str | None = None
    """A directory holding drug_names.csv and interactions.csv; default: the packaged table."""
    clock_skew_seconds: float = Field(default=60, ge=0)
    """How far past the server's clock a client's timestamp may be before it is "future"."""
    fact_max_age_days: float = Field(default=365.0, gt=0)
    """A fact's own time may not be earlier than this before the case was created."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or not rest:
            raise ValueError("not a database URL: expected sqlite:///<path> or postgresql://...")
        if scheme.split("+")[0] not in DATABASE_SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}: use sqlite or postgresql")
        try:
            _ = make_url(url).port  # the port is parsed only when read
        except (ArgumentError, ValueError):
            raise ValueError("malformed URL (check the port and any special characters)") from None
        return url

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone name") from exc
        return value

    def today(self, now: datetime) -> date:
        """The date ``now`` falls on in the ``timezone`` setting's zone."""
        return now.astimezone(ZoneInfo(self.timezone)).date()

    @model_validator(mode="after")
    def _no_negative_duration(self) -> Settings:
        for name, value in self:
            if name.endswith(DURATION_SUFFIXES) and isinstance(value, int | float) and value < 0:
                raise ValueError(f"{name}: a duration may not be negative")
        if self.post_dose_bp_min_minutes > self.post_dose_bp_max_minutes:
            raise ValueError(
                "post_dose_bp_min_minutes: may not be more than post_dose_bp_max_minutes"
            )
        return self

    def max_dose_mg(self, route: str) -> float:
        """The ceiling of a prescription's dose by ``route`` (``max_dose_mg_<route>``)."""
        return float(getattr(self, f"max_dose_mg_{route}"))


class SettingsError(ValueError):
    """A setting that cannot be used; ``str()`` is one line naming the variable."""


def load_settings() -> Settings:
    """Read and check every setting once; a bad one raises ``SettingsError``."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    name = str(error["loc"][0]) if error["loc"] else ""
    if not name:  # a check across fields names its field first
        name, _, message = message.partition(": ")
    field = Settings.model_fields.get(name)
    # Echo a rejected number; never a URL, token or secret (they may hold credentials).
    if field is not None and field.annotation in (int, float) and "input" in error:
        message += f" (got {str(error['input'])[:40]!r})"
    more = len(exc.errors()) - 1
    return f"{ENV_PREFIX}{name.upper()}: {message}" + (f" (and {more} more)" if more else "")


def relaxed_settings(current: Settings) -> dict[str, float]:
    """Every setting of ``CLINICAL_FLOORS`` set below its clinical default, with its value."""
    fields = Settings.model_fields
    return {
        name: getattr(current, name)
        for name in CLINICAL_FLOORS
        if name in fields and getattr(current, name) < cast(float, fields[name].default)
    }


class _SettingsOnDemand:
    """``settings`` read on first use, so that importing a module (or ``--help``) reads nothing."""

    __slots__ = ("_loaded",)

    def __init__(self) -> None:
        object.__setattr__(self, "_loaded", None)

    def _settings(self) -> Settings:
        loaded = object.__getattribute__(self, "_loaded")
        if loaded is None:
            loaded = load_settings()
            object.__setattr__(self, "_loaded", loaded)
        return cast(Settings, loaded)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._settings(), name)

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        # The loaded settings' fields: pytest's monkeypatch reads (and restores) them here.
        return self._settings().__dict__

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._settings(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._settings(), name)

    def __iter__(self) -> Any:
        return iter(self._settings())

    def __repr__(self) -> str:
        return repr(self._settings())


settings = cast(Settings, _SettingsOnDemand())
"""The process's settings, read and checked on first use (``load_settings`` reads them now)."""
