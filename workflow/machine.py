"""The one shared state machine, built from ``workflow.definition`` at import.

The machine holds no models (``model=None``): each request wraps its case in a
small ``CaseModel`` and fires one trigger on it through
``MACHINE.events[name].trigger``. The machine is flat and unqueued, so firing
keeps no state on the machine itself and is safe from many threads at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

from transitions import EventData, Machine, MachineError

from models.schemas import TransitionBody
from workflow.casefacts import CaseFacts
from workflow.definition import (
    ACTIVE_STATES,
    CLEARANCE_REQUIREMENTS,
    HELD_FROM,
    STATES,
    TRIGGERS,
    TriggerDef,
    requirements_of,
)
from workflow.effects import CHECKS, EFFECTS
from workflow.guards import GUARDS, Unmet, evaluate
from workflow.prescribing import is_raise

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


@dataclass
class CaseModel:
    """What the machine moves: a case's state, with its facts for the guards."""

    state: str
    held_from: str | None
    facts: CaseFacts
    unmet: list[Unmet] = field(default_factory=list)


def _requirements_met(event: EventData) -> bool:
    """The machine's only guard: every requirement of the trigger, all reported at once."""
    model = cast(CaseModel, event.model)
    trigger: TriggerDef = event.kwargs["definition"]
    body: TransitionBody = event.kwargs.get("body") or TransitionBody()
    raising = bool(trigger.raise_requires) and is_raise(model.facts.case, body)
    model.unmet = evaluate(requirements_of(trigger, raising=raising), model.facts)
    return not model.unmet


def _resumes_to(state: str):
    def held_from_is(event: EventData) -> bool:
        return cast(CaseModel, event.model).held_from == state

    held_from_is.__name__ = f"held_from_is_{state}"
    return held_from_is


def _transitions() -> list[dict[str, Any]]:
    """The machine's transitions, one per (trigger, source) and per resume target."""
    declared: list[dict[str, Any]] = []
    for trigger in TRIGGERS:
        for source in trigger.sources:
            if trigger.dest == HELD_FROM:
                # A flat machine has no dynamic destination: one guarded
                # transition per state a case can have been held from.
                for target in ACTIVE_STATES:
                    if target != source:
                        declared.append(
                            {
                                "trigger": trigger.name,
                                "source": source,
                                "dest": target,
                                "conditions": [_resumes_to(target), _requirements_met],
                            }
                        )
                continue
            declared.append(
                {
                    "trigger": trigger.name,
                    "source": source,
                    "dest": trigger.dest,
                    "conditions": [_requirements_met],
                }
            )
    return declared


def check_tables() -> None:
    """Refuse to start with a table that names a guard, an effect or a check that does not
    exist (the dose clearance's requirements included)."""
    for trigger in TRIGGERS:
        codes = (*trigger.requires, *trigger.raise_requires)
        unknown = [code for code in codes if code not in GUARDS]
        unknown += [name for name in trigger.effects if name not in EFFECTS]
        unknown += [name for name in trigger.checks if name not in CHECKS]
        if unknown:
            raise RuntimeError(f"trigger {trigger.name} names unknown guards or effects: {unknown}")
    unknown = [code for code in CLEARANCE_REQUIREMENTS if code not in GUARDS]
    if unknown:
        raise RuntimeError(f"the dose clearance names unknown guards: {unknown}")


check_tables()

MACHINE = Machine(
    model=None,
    states=[s.name for s in STATES],
    transitions=_transitions(),
    initial=None,
    auto_transitions=False,
    send_event=True,
)


def fire(model: CaseModel, trigger: TriggerDef, **kwargs) -> bool:
    """Fire ``trigger`` on ``model``; True when it moved, False when a guard refused.

    ``body=`` is the trigger's body: a raise of the dose needs ``raise_requires`` too.

    Raises:
        MachineError: the trigger does not leave the model's current state.
    """
    return MACHINE.events[trigger.name].trigger(model, definition=trigger, **kwargs)


def is_invalid(model_state: str, trigger: TriggerDef) -> bool:
    """Whether the machine has no transition for ``trigger`` from ``model_state``."""
    return model_state not in MACHINE.events[trigger.name].transitions


__all__ = ["MACHINE", "CaseModel", "MachineError", "check_tables", "fire", "is_invalid"]
