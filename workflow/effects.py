"""What a trigger writes on the case besides its state, and the limits on its body.

Each effect is a small function of the case (before the move), the actor, the
case's facts and the trigger's body, returning the columns to set. Each check
is a function of the case, the body and the settings that raises
``ValidationFailed`` naming the limit a body passes. ``TriggerDef.effects``
and ``TriggerDef.checks`` name them; ``workflow.machine`` checks at import
that every name is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.schemas import TransitionBody
from models.settings import Settings
from models.tables import Case
from workflow import prescribing
from workflow.casefacts import CaseFacts
from workflow.definition import SYSTEM, Actor
from workflow.referrals import referrals_for

Effect = Callable[[Case, Actor, CaseFacts, TransitionBody], dict[str, Any]]
Check = Callable[[Case, TransitionBody, Settings], None]


def remember_held_from(
    case: Case, actor: Actor, facts: CaseFacts, body: TransitionBody
) -> dict[str, Any]:
    """``hold``: remember the state to resume to."""
    return {"held_from": case.state}


def forget_held_from(
    case: Case, actor: Actor, facts: CaseFacts, body: TransitionBody
) -> dict[str, Any]:
    """``resume``, and closing a held case: the case is no longer held."""
    return {"held_from": None}


def assign_clinician(
    case: Case, actor: Actor, facts: CaseFacts, body: TransitionBody
) -> dict[str, Any]:
    """``approve``: the approving clinician becomes the case's clinician, unless one was
    assigned already (``POST /cases/{id}/assignment``): an explicit choice stands."""
    if actor.role == SYSTEM or case.assigned_clinician_id is not None:
        return {}
    return {"assigned_clinician_id": actor.id}


def mark_approved(
    case: Case, actor: Actor, facts: CaseFacts, body: TransitionBody
) -> dict[str, Any]:
    """``approve``: when the case was approved, so "is it approved?" is one column to read."""
    return {"approved_at": facts.now}


def record_referrals(
    case: Case, actor: Actor, facts: CaseFacts, body: TransitionBody
) -> dict[str, Any]:
    """``decline``: what the guide recommends instead (SPEC.md section 4.7)."""
    return {"referrals": referrals_for(facts)}


EFFECTS: dict[str, Effect] = {
    "remember_held_from": remember_held_from,
    "forget_held_from": forget_held_from,
    "assign_clinician": assign_clinician,
    "mark_approved": mark_approved,
    "record_referrals": record_referrals,
    "set_prescription": prescribing.set_prescription,
    "change_prescription": prescribing.change_prescription,
}

CHECKS: dict[str, Check] = {
    "prescription_limits": prescribing.check_prescription,
    "dose_change_limits": prescribing.check_dose_change,
    "dispense_limits": prescribing.check_dispense,
}
