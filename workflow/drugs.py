"""Drug classification and the ketamine interaction screen.

The clinical content is data with a source on every row: ``data/drug_names.csv``
(name -> drug class) and ``data/interactions.csv`` (drug class -> severity, message).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Protocol

UNKNOWN = "unknown"
TAPER_CLASSES = frozenset({"benzodiazepine", "z_drug"})

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


class Severity(StrEnum):
    """How a drug class interacts with ketamine."""

    BLOCKING = "blocking"
    TAPER_REQUIRED = "taper_required"
    CAUTION = "caution"


class ScreeningResult(StrEnum):
    """The overall outcome of an interaction screening."""

    CLEAR = "clear"
    CAUTION = "caution"
    BLOCKED = "blocked"


# Used to pick one class for a combination product: the most severe ingredient wins.
_RANK = {Severity.BLOCKING: 3, Severity.TAPER_REQUIRED: 2, Severity.CAUTION: 1}


@dataclass(frozen=True)
class Interaction:
    """One row of the interaction table."""

    drug_class: str
    severity: Severity
    message: str
    source: str


class MedicationLike(Protocol):
    """What ``screen`` reads from a medication; a ``models.facts.Medication`` row fits."""

    @property
    def id(self) -> Any: ...
    @property
    def name(self) -> str: ...
    @property
    def drug_class(self) -> str: ...
    @property
    def status(self) -> str: ...


def _tokens(text: str) -> list[str]:
    # NFKC folds full-width and compatibility letters; ® and ™ go first because NFKC
    # would turn ™ into the letters "TM". Apostrophes are dropped rather than spaced so
    # "St John's Wort" and "St Johns Wort" normalise alike.
    text = unicodedata.normalize("NFKC", text.replace("®", " ").replace("™", " ")).casefold()
    return _NOT_ALNUM.sub(" ", _APOSTROPHES.sub("", text)).split()


def _rows(filename: str) -> list[dict[str, str]]:
    # importlib.resources finds the file inside the installed package, wheel included.
    text = (resources.files("workflow") / "data" / filename).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        if not (row.get("source") or "").strip():
            raise ValueError(f"{filename}: row without a source: {row}")
    return rows


@cache
def _names() -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {}
    for row in _rows("drug_names.csv"):
        key, drug_class = tuple(_tokens(row["name"])), row["drug_class"]
        if not key or table.setdefault(key, drug_class) != drug_class:
            raise ValueError(f"drug_names.csv: empty or conflicting name {row['name']!r}")
    return table


@cache
def _interactions() -> dict[str, Interaction]:
    return {
        row["drug_class"]: Interaction(
            row["drug_class"], Severity(row["severity"]), row["message"], row["source"]
        )
        for row in _rows("interactions.csv")
    }


def drug_classes() -> list[str]:
    """Return every class ``classify`` can return, ``unknown`` included, sorted."""
    return sorted({*_names().values(), UNKNOWN})


def interaction_for(drug_class: str) -> Interaction | None:
    """Return the interaction row for a drug class, or None if it has no interaction."""
    return _interactions().get(drug_class)


def _rank(drug_class: str) -> int:
    interaction = interaction_for(drug_class)
    return _RANK[interaction.severity] if interaction else 0


def classify(name: str) -> str:
    """Return the drug class of a free-text medication name, or ``"unknown"``."""
    tokens, names = _tokens(name), _names()
    longest = max(map(len, names))
    found: list[str] = []
    start = 0
    # Known names are looked up as whole-word phrases, longest first, wherever they sit:
    # doses and forms ("0.5 mg tablet", "XR") are words that match nothing, and
    # "methadone" can never match inside another word.
    while start < len(tokens):
        for size in range(min(longest, len(tokens) - start), 0, -1):
            drug_class = names.get(tuple(tokens[start : start + size]))
            if drug_class is not None:
                found.append(drug_class)
                start += size
                break
        else:
            start += 1
    # A combination ("dextromethorphan-bupropion") takes its most severe class, so a
    # blocking ingredient is never hidden behind a harmless one.
    return max(found, key=_rank, default=UNKNOWN)


def _class_of(medication: MedicationLike) -> str:
    # A stored class the table no longer knows (or a blank one) must not pass as
    # clear: classify the name again, which falls back to unknown, a caution.
    if medication.drug_class in {*_names().values(), UNKNOWN}:
        return medication.drug_class
    return classify(medication.name)


def screen(
    medications: Iterable[MedicationLike],
) -> tuple[list[dict[str, Any]], ScreeningResult]:
    """Screen the active medications against the interaction table."""
    findings: list[dict[str, Any]] = []
    for medication in medications:
        if medication.status != "active":
            continue
        drug_class = _class_of(medication)
        interaction = interaction_for(drug_class)
        if interaction is None:
            continue
        findings.append(
            {
                "medication_id": medication.id,
                "medication": medication.name,
                "drug_class": drug_class,
                "severity": interaction.severity.value,
                "message": interaction.message,
                "source": interaction.source,
            }
        )
    severities = {finding["severity"] for finding in findings}
    if Severity.BLOCKING in severities:
        return findings, ScreeningResult.BLOCKED
    # Every other finding is caution or taper_required: taper is handled by its own
    # track, so it does not block the screening, but it is never clear either.
    return findings, ScreeningResult.CAUTION if findings else ScreeningResult.CLEAR
