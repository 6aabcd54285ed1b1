"""The prescription and its limits (SPEC.md 4.5).

The case keeps the dose in force as ``prescription``: ``prescribe`` sets it,
``adjust_dose`` changes it. A dose above the route's ceiling, a first
prescription above ``max_initial_dose_mg`` or a raise of more than
``max_dose_step_percent`` is a 422 naming the limit, before any guard runs.
"""

from __future__ import annotations

from typing import Any, Protocol

from models.schemas import TransitionBody
from models.settings import Settings
from models.tables import Case
from workflow.casefacts import CaseFacts
from workflow.definition import Actor
from workflow.errors import Conflict, ValidationFailed


def current_dose(case: Case) -> float | None:
    """The dose in force, in mg, or None before any prescription."""
    return None if not case.prescription else case.prescription.get("dose_mg")


def is_raise(case: Case, body: TransitionBody) -> bool:
    """Whether ``body`` names a dose above the one in force (with none in force, any dose)."""
    if body.dose_mg is None:
        return False
    current = current_dose(case)
    return current is None or body.dose_mg > current


def _over(message: str) -> ValidationFailed:
    """A 422 on ``dose_mg`` whose message names the limit it passed."""
    return ValidationFailed.field(("dose_mg",), message)


def _check_ceiling(dose: float, route: str, rules: Settings) -> None:
    ceiling = rules.max_dose_mg(route)
    if dose > ceiling:
        raise _over(
            f"dose_mg {dose:g} is above max_dose_mg_{route}, {ceiling:g} mg by the {route} route.",
        )


def check_prescription(case: Case, body: TransitionBody, rules: Settings) -> None:
    """``prescribe``: the route's ceiling, and ``max_initial_dose_mg`` for a first one."""
    if body.dose_mg is None or body.route is None:
        return
    _check_ceiling(body.dose_mg, body.route, rules)
    if case.prescription is None and body.dose_mg > rules.max_initial_dose_mg:
        raise _over(
            f"dose_mg {body.dose_mg:g} is above max_initial_dose_mg, "
            f"{rules.max_initial_dose_mg:g} mg for a first prescription.",
        )


def check_dose_change(case: Case, body: TransitionBody, rules: Settings) -> None:
    """``adjust_dose``: the route's ceiling, and a raise of at most ``max_dose_step_percent``."""
    prescription = case.prescription
    if not prescription:
        raise Conflict("The case has no prescription to adjust: prescribe first.")
    if body.dose_mg is None:
        return
    _check_ceiling(body.dose_mg, prescription["route"], rules)
    current = float(prescription["dose_mg"])
    step = rules.max_dose_step_percent
    highest = current * (1 + step / 100)
    if body.dose_mg > highest:
        raise _over(
            f"dose_mg {body.dose_mg:g} is more than max_dose_step_percent ({step:g} %) "
            f"above the current {current:g} mg: at most {highest:g} mg.",
        )


class Quantity(Protocol):
    """A body that dispenses units: ``ship``'s, or a refill's."""

    @property
    def quantity_units(self) -> int | None: ...


def check_dispense(case: Case, body: Quantity, rules: Settings) -> None:
    """``ship`` and refills: at most ``units_per_dose`` x ``max_doses_per_dispense`` units."""
    if body.quantity_units is None or not case.prescription:
        return
    per_dose = int(case.prescription.get("units_per_dose") or 1)
    most = per_dose * rules.max_doses_per_dispense
    if body.quantity_units > most:
        raise ValidationFailed.field(
            ("quantity_units",),
            f"quantity_units {body.quantity_units} is more than {most}: units_per_dose "
            f"{per_dose} x max_doses_per_dispense {rules.max_doses_per_dispense}.",
        )


def set_prescription(
    case: Case, actor: Actor, facts: CaseFacts, body: TransitionBody
) -> dict[str, Any]:
    """``prescribe``: the case's prescription, from the body."""
    return {
        "prescription": {
            "dose_mg": body.dose_mg,
            "route": body.route,
            "formulation": body.formulation,
            "units_per_dose": body.units_per_dose,
            "prescribed_by": actor.id,
            "prescribed_at": facts.now.isoformat(),
            "refills": 0,
        }
    }


def change_prescription(
    case: Case, actor: Actor, facts: CaseFacts, body: TransitionBody
) -> dict[str, Any]:
    """``adjust_dose``: a new prescription at the new dose (its refills start again)."""
    prescription = dict(case.prescription or {})
    prescription.update(
        dose_mg=body.dose_mg,
        prescribed_by=actor.id,
        prescribed_at=facts.now.isoformat(),
        refills=0,
    )
    if body.units_per_dose is not None:
        prescription["units_per_dose"] = body.units_per_dose
    return {"prescription": prescription}
