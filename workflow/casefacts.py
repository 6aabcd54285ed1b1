"""A read-only view of everything recorded on one case, for the guards.

Collections load from the database the first time a guard asks for them, so a
trigger with no guards reads no facts. Tests build the view from plain lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.facts import (
    AdverseEvent,
    Assessment,
    CareSession,
    DoseClearance,
    History,
    InteractionScreening,
    Medication,
    Taper,
    Vital,
)
from models.settings import Settings, settings
from models.tables import Case
from workflow.definition import Actor

_COLLECTIONS: dict[str, Any] = {
    "assessments": Assessment,
    "vitals": Vital,
    "medications": Medication,
    "screenings": InteractionScreening,
    "tapers": Taper,
    "sessions": CareSession,
    "clearances": DoseClearance,
    "adverse_events": AdverseEvent,
}
_MISSING = object()


@dataclass
class CaseFacts:
    """The case, the acting user, the clock, the thresholds, and the case's records."""

    case: Case
    now: datetime
    actor: Actor | None = None
    rules: Settings = field(default_factory=lambda: settings)
    session: Session | None = None
    preloaded: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set in __init__: the fact collections.
        if name not in _COLLECTIONS and name != "history":
            raise AttributeError(name)
        value = self.preloaded.get(name, _MISSING)
        if value is _MISSING:
            value = self._load(name)
            self.preloaded[name] = value
        return value

    def _load(self, name: str) -> Any:
        if self.session is None:
            return None if name == "history" else []
        if name == "history":
            return self.session.exec(select(History).where(History.case_id == self.case.id)).first()
        model = _COLLECTIONS[name]
        query = select(model).where(model.case_id == self.case.id).order_by(model.id)
        return list(self.session.exec(query).all())

    def forget(self, *names: str) -> None:
        """Drop loaded collections so the next read sees new writes."""
        for name in names or tuple(self.preloaded):
            self.preloaded.pop(name, None)
