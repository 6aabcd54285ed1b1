"""Suicide risk and adverse events, as tables a clinician can review (SPEC.md 4.6).

Three tables:

- ``EVENT_KINDS``: for every kind of adverse event, the least severity that
  puts an active case on hold at once (actor ``system``), whoever recorded it.
- ``REVIEWS``: which events open a ``safety_review`` (every event that holds,
  or would hold on a case that is not active) and which an ``event_review``
  (every other event the service records itself). The reminder policies
  (``schedules.policies``) read this table; so does nothing else.
- The rules by which the service records an event itself: ``SUICIDE_ITEM``
  (PHQ-9 item 9), ``WORSENING`` (ISI and PHQ-9 against their baselines) and
  ``MEDICATION_RULES`` (a hypnotic restarted, an interacting medication added).
  ``workflow.safety`` applies them whenever an assessment, a dosing session or
  a medication change is recorded. Their thresholds are settings (SPEC.md 8).

Nothing here writes: these are data and pure functions of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

from models.schemas import AdverseEventKind, Severity
from models.settings import Settings
from workflow import drugs

SEVERITIES: tuple[str, ...] = get_args(Severity)
"""Least to most severe."""
SPEC = "SPEC.md 4.6"


@dataclass(frozen=True)
class EventKind:
    """A kind of adverse event, and the least severity at which it holds a case."""

    kind: str
    holds_from: str
    source: str

    def holds(self, severity: str) -> bool:
        return SEVERITIES.index(severity) >= SEVERITIES.index(self.holds_from)


SEVERE = f"{SPEC}: a severe event holds"
EVENT_KINDS: tuple[EventKind, ...] = (
    EventKind("new_onset_insomnia", "severe", SEVERE),
    EventKind("worsened_insomnia", "severe", SEVERE),
    EventKind("worsened_depression", "severe", SEVERE),
    EventKind("dissociation", "severe", SEVERE),
    EventKind("blood_pressure_increase", "severe", SEVERE),
    EventKind("nausea", "severe", SEVERE),
    EventKind("dizziness", "severe", SEVERE),
    EventKind("memory_problems", "severe", SEVERE),
    EventKind("urinary_symptoms", "severe", SEVERE),
    EventKind(
        "respiratory_depression",
        "mild",
        f"{SPEC}: any respiratory depression holds (FDA warning of 2023, the guide)",
    ),
    EventKind("psychiatric_event", "moderate", f"{SPEC}: a moderate psychiatric event holds"),
    EventKind("suicidal_ideation", "mild", f"{SPEC}: any suicidal ideation holds"),
    EventKind(
        "substance_misuse",
        "moderate",
        f"{SPEC}: moderate substance misuse holds (possible diversion of a controlled drug)",
    ),
    EventKind("hypnotic_restarted", "severe", SEVERE),
    EventKind("other", "severe", SEVERE),
)
EVENT_KIND_BY_NAME = {row.kind: row for row in EVENT_KINDS}


def holds(kind: str, severity: str) -> bool:
    """Whether an event of ``kind`` and ``severity`` puts an active case on hold at once."""
    return EVENT_KIND_BY_NAME[kind].holds(severity)


# -- reviews ---------------------------------------------------------------------------------

SAFETY_REVIEW, EVENT_REVIEW = "safety_review", "event_review"


@dataclass(frozen=True)
class Review:
    """The reminder an event opens: by whether it holds, and by who recorded it.

    ``holding``: opened by events that hold (on any case: one that is not active
    would have been held). ``service_only``: only by events the service recorded.
    Due and repeat times are the reminder table's (SPEC.md 7).
    """

    reminder: str
    holding: bool
    service_only: bool

    def opened_by(self, event: Any) -> bool:
        if self.service_only and not event.recorded_by_system:
            return False
        return holds(event.kind, event.severity) == self.holding


REVIEWS: tuple[Review, ...] = (
    Review(SAFETY_REVIEW, holding=True, service_only=False),
    Review(EVENT_REVIEW, holding=False, service_only=True),
)
REVIEW_BY_REMINDER = {review.reminder: review for review in REVIEWS}


def review_for(event: Any) -> str | None:
    """The review ``event`` opens, if any: a mild event staff record opens none."""
    return next((r.reminder for r in REVIEWS if r.opened_by(event)), None)


# -- what the service records itself ---------------------------------------------------------


@dataclass(frozen=True)
class SuicideItem:
    """A PHQ-9 whose item 9 is at least ``phq9_item9_min`` records suicidal ideation."""

    kind: str = "suicidal_ideation"
    severe_from: int = 2
    """Item 9 answered "more than half the days" (2) or "nearly every day" (3)."""

    def fires(self, item9: int | None, rules: Settings) -> bool:
        return item9 is not None and item9 >= rules.phq9_item9_min

    def severity(self, item9: int) -> str:
        return "severe" if item9 >= self.severe_from else "moderate"


SUICIDE_ITEM = SuicideItem()

ISI_MAX = 28
ISI_NEAR_MAX_BASELINE = 22
"""Above this baseline an ISI cannot rise ``isi_worsening_points`` (6): the top score counts."""


@dataclass(frozen=True)
class Worsening:
    """After the first dose, a score of ``instrument`` this far above its baseline (SPEC.md 0:
    the latest score before the first dose) records ``kind``, moderate."""

    kind: str
    instrument: str
    points: Callable[[Settings], int]
    """At least this many points above the baseline ..."""
    or_at: Callable[[int, Settings], int | None]
    """... or at least this score, given the baseline (None: no such clause)."""
    source: str

    def threshold(self, baseline: int, rules: Settings) -> int:
        """The least score that records the event."""
        above = baseline + self.points(rules)
        also = self.or_at(baseline, rules)
        return above if also is None else min(above, also)


WORSENING: tuple[Worsening, ...] = (
    Worsening(
        "worsened_insomnia",
        "isi",
        points=lambda rules: rules.isi_worsening_points,
        or_at=lambda baseline, rules: ISI_MAX if baseline > ISI_NEAR_MAX_BASELINE else None,
        source=f"{SPEC}; the guide: 7.3 % develop new or worsened insomnia on ketamine",
    ),
    Worsening(
        "worsened_depression",
        "phq9",
        points=lambda rules: rules.phq9_worsening_points,
        or_at=lambda baseline, rules: (
            rules.phq9_severe_score if baseline < rules.phq9_severe_score else None
        ),
        source=f"{SPEC}; a 5-point PHQ-9 change is clinically significant (Lowe 2004)",
    ),
)


@dataclass(frozen=True)
class MedicationRule:
    """A medication added, or made active again, of one of ``classes`` records ``kind``."""

    kind: str
    classes: Callable[[drugs.DrugTable], frozenset[str]]
    open_case_only: bool
    """Only on a case that is approved and not closed (else: approved)."""
    describe: Callable[[str, list[str]], str]
    source: str


MEDICATION_RULES: tuple[MedicationRule, ...] = (
    MedicationRule(
        "hypnotic_restarted",
        classes=lambda table: drugs.TAPER_CLASSES,
        open_case_only=True,
        describe=lambda name, found: f"hypnotic restarted: {name} ({', '.join(found)})",
        source=f"{SPEC}: a benzodiazepine or Z-drug added or made active on an approved case",
    ),
    MedicationRule(
        "other",
        classes=drugs.blocking_classes,
        open_case_only=False,
        describe=lambda name, found: f"new interacting medication: {name} ({', '.join(found)})",
        source="SPEC.md 4.3: a blocking-class medication added or made active on an approved case",
    ),
)


def check_tables() -> None:
    """Refuse to start unless the table covers exactly the kinds an event may have."""
    kinds = set(get_args(AdverseEventKind))
    if set(EVENT_KIND_BY_NAME) != kinds or len(EVENT_KINDS) != len(kinds):
        raise RuntimeError(f"workflow.risk.EVENT_KINDS does not match the kinds {sorted(kinds)}")
    named = {SUICIDE_ITEM.kind} | {w.kind for w in WORSENING} | {m.kind for m in MEDICATION_RULES}
    if not named <= kinds or any(r.holds_from not in SEVERITIES for r in EVENT_KINDS):
        raise RuntimeError("workflow.risk names an unknown kind or severity")


check_tables()
