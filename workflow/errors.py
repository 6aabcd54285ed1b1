"""The domain's exceptions. ``api/`` maps each to one problem+json response."""

from __future__ import annotations

from typing import Any

from workflow.guards import Unmet


class DomainError(Exception):
    """Base of every refusal the workflow makes. A refusal changes nothing."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class TransitionBlocked(DomainError):
    """Guards refused the trigger; ``unmet`` lists every unmet requirement."""

    code = "transition_blocked"

    def __init__(self, detail: str, unmet: list[Unmet]) -> None:
        super().__init__(detail)
        self.unmet = unmet


class Conflict(DomainError):
    code = "conflict"


class VersionConflict(DomainError):
    code = "version_conflict"


class ValidationFailed(DomainError):
    """Input the schemas could not judge alone (a future timestamp, an unknown reference)."""

    code = "validation_error"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []

    @classmethod
    def field(cls, loc: tuple[str, ...], msg: str) -> ValidationFailed:
        return cls(msg, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])
