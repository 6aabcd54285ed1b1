"""The interaction screen: findings for the medication list against the current table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Protocol

from workflow.drugs.matcher import Classification, classify_name, most_severe, washout_of
from workflow.drugs.table import UNKNOWN, DrugTable, Interaction, Severity, current_table


class ScreeningResult(StrEnum):
    """The overall outcome of an interaction screening."""

    CLEAR = "clear"
    CAUTION = "caution"
    BLOCKED = "blocked"


class MedicationLike(Protocol):
    """What the screen reads from a medication; a ``models.facts.Medication`` row fits."""

    @property
    def id(self) -> Any: ...
    @property
    def name(self) -> str: ...
    @property
    def drug_classes(self) -> list[str]: ...
    @property
    def status(self) -> str: ...
    @property
    def stopped_on(self) -> date | None: ...
    @property
    def class_set_by(self) -> int | None: ...


def drug_classes(table: DrugTable | None = None) -> list[str]:
    """Every class a medication can have, ``unknown`` included, sorted."""
    return sorted((table or current_table()).interactions)


def interaction_for(drug_class: str, table: DrugTable | None = None) -> Interaction | None:
    """The interaction row of a class, or None when it has none (or severity ``none``)."""
    interaction = (table or current_table()).interactions.get(drug_class)
    if interaction is None or interaction.severity is Severity.NONE:
        return None
    return interaction


def blocking_classes(table: DrugTable | None = None) -> frozenset[str]:
    """The classes whose severity is ``blocking``."""
    table = table or current_table()
    return frozenset(c for c, i in table.interactions.items() if i.severity is Severity.BLOCKING)


def classes_of(medication: MedicationLike, table: DrugTable | None = None) -> Classification:
    """Classify a medication again: the table's classes, and a clinician's where it has none.

    A clinician's class (``class_set_by``) stands in for ``unknown`` only: once the
    table knows every part of the name, the table decides.
    """
    table = table or current_table()
    found = classify_name(medication.name, table)
    if medication.class_set_by is None or UNKNOWN not in found.drug_classes:
        return found
    assigned = [c for c in medication.drug_classes or () if c in table.interactions]
    known = [c for c in found.drug_classes if c != UNKNOWN]
    classes = tuple(dict.fromkeys([*known, *(c for c in assigned if c != UNKNOWN)]))
    if not classes:
        return found
    washout = max(found.washout_days if known else 0, washout_of(classes, table))
    return Classification(classes, most_severe(classes, table), washout, ())


def class_of(medication: MedicationLike, table: DrugTable | None = None) -> str:
    """The medication's ``drug_class`` against the current table."""
    return classes_of(medication, table).drug_class


def washout_days(medication: MedicationLike, table: DrugTable | None = None) -> int:
    """How many days after its last dose a stopped medication still counts."""
    return classes_of(medication, table).washout_days


def _finding(
    medication: MedicationLike, drug_class: str, interaction: Interaction, message: str
) -> dict[str, Any]:
    return {
        "medication_id": medication.id,
        "medication": medication.name,
        "drug_class": drug_class,
        "severity": interaction.severity.value,
        "message": message,
        "source": interaction.source,
    }


def screen(
    medications: Iterable[MedicationLike],
    *,
    today: date | None = None,
    last_taken: Mapping[Any, date] | None = None,
    table: DrugTable | None = None,
) -> tuple[list[dict[str, Any]], ScreeningResult]:
    """Findings for every active medication, and for stopped blocking ones still washing out.

    ``last_taken`` maps a medication id to its last dose (the later of its
    ``stopped_on`` and its confirmed taper's ``last_dose_on``); without it, ``stopped_on``.
    """
    table = table or current_table()
    today = today or date.today()
    findings: list[dict[str, Any]] = []
    for medication in medications:
        found = classes_of(medication, table)
        for drug_class in found.drug_classes:
            interaction = interaction_for(drug_class, table)
            if interaction is None:
                continue
            if medication.status == "active":
                message = interaction.message
                if drug_class == UNKNOWN and found.notes:
                    message = f"{message} ({'; '.join(found.notes)})"
                findings.append(_finding(medication, drug_class, interaction, message))
                continue
            if interaction.severity is not Severity.BLOCKING:
                continue
            last = (last_taken or {}).get(medication.id) or medication.stopped_on
            ends = (last or today) + timedelta(days=found.washout_days)
            if ends > today:
                message = (
                    f"{interaction.message} (stopped on {last or 'an unrecorded date'}; "
                    f"its {found.washout_days}-day washout ends on {ends})"
                )
                findings.append(_finding(medication, drug_class, interaction, message))
    severities = {finding["severity"] for finding in findings}
    if Severity.BLOCKING in severities:
        return findings, ScreeningResult.BLOCKED
    # Every other finding is caution or taper_required: taper is handled by its own
    # track, so it does not block the screening, but it is never clear either.
    return findings, ScreeningResult.CAUTION if findings else ScreeningResult.CLEAR
