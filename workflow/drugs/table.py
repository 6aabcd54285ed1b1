"""The drug table: names to classes, classes to interactions, loaded from CSV data files.

``drug_names.csv`` maps a name (generic, brand, or a combination product) to its
classes; ``interactions.csv`` gives each class its severity, washout and message.
Both carry a ``source`` and a ``basis`` on every row. The table's version is a hash
of the two files, stored on every screening as ``drug_table_version``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from workflow.drugs.normalise import compact, tokens

UNKNOWN = "unknown"
NONE_CLASS = "no_known_interaction"
BASES = frozenset({"label", "program_policy"})
FILES = ("drug_names.csv", "interactions.csv")


class Severity(StrEnum):
    """How a drug class interacts with ketamine; ``none`` gives no finding."""

    BLOCKING = "blocking"
    TAPER_REQUIRED = "taper_required"
    CAUTION = "caution"
    NONE = "none"


RANK = {Severity.BLOCKING: 3, Severity.TAPER_REQUIRED: 2, Severity.CAUTION: 1, Severity.NONE: 0}


@dataclass(frozen=True)
class Interaction:
    """One row of the interaction table."""

    drug_class: str
    severity: Severity
    washout_days: int
    message: str
    source: str
    basis: str


@dataclass(frozen=True)
class NameRow:
    """One row of the name table."""

    name: str
    drug_classes: tuple[str, ...]
    washout_days: int | None
    source: str
    basis: str


@dataclass
class DrugTable:
    """Both tables, indexed for the matcher."""

    version: str
    interactions: dict[str, Interaction]
    names: dict[str, NameRow]
    """Keyed by the name's normalised words joined by one space."""
    compact_names: dict[str, NameRow] = field(default_factory=dict)
    """Keyed by the name's letters and digits without spaces: "oxy-codone" finds oxycodone."""
    longest: int = 1
    watched: dict[str, list[str]] = field(default_factory=dict)
    """Every string two deletions or fewer away from a compact taper-required or blocking
    name, to that name: two strings within Damerau-Levenshtein distance 2 share one."""

    def order(self, drug_class: str) -> int:
        return list(self.interactions).index(drug_class)

    def severity(self, drug_class: str) -> Severity:
        interaction = self.interactions.get(drug_class)
        return interaction.severity if interaction else Severity.CAUTION

    def is_watched(self, drug_class: str) -> bool:
        """Whether a class is taper-required or blocking."""
        return RANK[self.severity(drug_class)] >= RANK[Severity.TAPER_REQUIRED]

    def resembling(self, text: str) -> list[str]:
        """Watched names that may lie within distance 2 of ``text`` (to be verified)."""
        found: dict[str, None] = {}
        for variant in deletions(text):
            found.update(dict.fromkeys(self.watched.get(variant, ())))
        return list(found)


def deletions(text: str, depth: int = 2) -> set[str]:
    """``text`` and every string made from it by deleting up to ``depth`` characters."""
    found = {text}
    frontier = {text}
    for _ in range(depth):
        frontier = {s[:i] + s[i + 1 :] for s in frontier for i in range(len(s))}
        found |= frontier
    return found


def _read(directory: Path | None, filename: str) -> str:
    if directory is not None:
        return (directory / filename).read_text(encoding="utf-8")
    # importlib.resources finds the file inside the installed package, wheel included.
    return (resources.files("workflow") / "data" / filename).read_text(encoding="utf-8")


def _rows(text: str, filename: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    for row in rows:
        if not (row.get("source") or "").strip():
            raise ValueError(f"{filename}: row without a source: {row}")
        if row.get("basis") not in BASES:
            raise ValueError(f"{filename}: row without a basis of {sorted(BASES)}: {row}")
    return rows


def _interaction(row: dict[str, str]) -> Interaction:
    return Interaction(
        drug_class=row["drug_class"],
        severity=Severity(row["severity"]),
        washout_days=int(row["washout_days"] or 0),
        message=row["message"],
        source=row["source"],
        basis=row["basis"],
    )


def parse(names_text: str, interactions_text: str) -> DrugTable:
    """Build a table from the text of its two files; a bad row raises ValueError."""
    version = hashlib.sha256(f"{names_text}\0{interactions_text}".encode()).hexdigest()[:16]
    interactions = {
        row["drug_class"]: _interaction(row) for row in _rows(interactions_text, "interactions.csv")
    }
    if UNKNOWN not in interactions:
        raise ValueError("interactions.csv: no row for the class 'unknown'")
    table = DrugTable(version=f"sha256:{version}", interactions=interactions, names={})
    for row in _rows(names_text, "drug_names.csv"):
        classes = tuple(c.strip() for c in row["drug_classes"].split(";") if c.strip())
        missing = [c for c in classes if c not in interactions]
        if not classes or missing:
            raise ValueError(f"drug_names.csv: class without an interaction row: {row}")
        washout = row.get("washout_days") or ""
        entry = NameRow(
            row["name"], classes, int(washout) if washout else None, row["source"], row["basis"]
        )
        words = tokens(row["name"])
        key = " ".join(words)
        if not key or key in table.names:
            raise ValueError(f"drug_names.csv: empty or repeated name {row['name']!r}")
        table.names[key] = entry
        table.compact_names.setdefault(compact(words), entry)
        table.longest = max(table.longest, len(words))
        if any(RANK[interactions[c].severity] >= RANK[Severity.TAPER_REQUIRED] for c in classes):
            name = compact(words)
            for variant in deletions(name):
                names = table.watched.setdefault(variant, [])
                if name not in names:
                    names.append(name)
    return table


@cache
def load_table(directory: str | None = None) -> DrugTable:
    """The table in ``directory`` (the setting ``drug_table_dir``), or the packaged one."""
    path = Path(directory) if directory else None
    return parse(*(_read(path, filename) for filename in FILES))


def current_table(rules: Any = None) -> DrugTable:
    """The table the settings name (``drug_table_dir``), loaded once per directory."""
    if rules is None:
        from models.settings import settings as rules
    return load_table(rules.drug_table_dir or None)
