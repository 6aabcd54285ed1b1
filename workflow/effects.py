"""What a trigger writes on the case besides its state, named in the trigger table.

Each effect is a small function of the case (before the move), the actor and
the case's facts, returning the columns to set. ``TriggerDef.effects`` names
them; ``workflow.machine`` checks at import that every name is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.tables import Case
from workflow.casefacts import CaseFacts
from workflow.definition import SYSTEM, Actor
from workflow.referrals import referrals_for

Effect = Callable[[Case, Actor, CaseFacts], dict[str, Any]]


def remember_held_from(case: Case, actor: Actor, facts: CaseFacts) -> dict[str, Any]:
    """``hold``: remember the state to resume to."""
    return {"held_from": case.state}


def forget_held_from(case: Case, actor: Actor, facts: CaseFacts) -> dict[str, Any]:
    """``resume``, and closing a held case: the case is no longer held."""
    return {"held_from": None}


def assign_clinician(case: Case, actor: Actor, facts: CaseFacts) -> dict[str, Any]:
    """``approve``: the approving clinician becomes the case's clinician, unless one was
    assigned already (``POST /cases/{id}/assignment``): an explicit choice stands."""
    if actor.role == SYSTEM or case.assigned_clinician_id is not None:
        return {}
    return {"assigned_clinician_id": actor.id}


def mark_approved(case: Case, actor: Actor, facts: CaseFacts) -> dict[str, Any]:
    """``approve``: when the case was approved, so "is it approved?" is one column to read."""
    return {"approved_at": facts.now}


def record_referrals(case: Case, actor: Actor, facts: CaseFacts) -> dict[str, Any]:
    """``decline``: what the guide recommends instead (SPEC.md section 4.7)."""
    return {"referrals": referrals_for(facts)}


EFFECTS: dict[str, Effect] = {
    "remember_held_from": remember_held_from,
    "forget_held_from": forget_held_from,
    "assign_clinician": assign_clinician,
    "mark_approved": mark_approved,
    "record_referrals": record_referrals,
}
