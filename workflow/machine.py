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
from workflow.conditions import CONDITIONS, requirements_for
from workflow.definition import (
    ACTIVE_STATES,
    CLEARANCE_REQUIREMENTS,
    HELD_FROM,
    STATES,
    TRIGGERS,
    TriggerDef,
)
from workflow.effects import CHECKS, EFFECTS
from workflow.guards import GUARDS, Unmet, evaluate

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


@dataclass
class CaseModel:
    """What the machine moves: a case's state, with its facts for the guards."""

    state: str
    held_from: str | None
    facts: CaseFacts
    body: TransitionBody | None = None
    unmet: list[Unmet] = field(default_factory=list)


def _requirements_met(event: EventData) -> bool:
    """The machine's only guard: every requirement of the move, all reported at once."""
    model = cast(CaseModel, event.model)
    trigger: TriggerDef = event.kwargs["definition"]
    transition = event.transition
    dest = (transition.dest if transition is not None else None) or model.state
    codes = requirements_for(trigger, model.state, dest, model.body, model.facts)
    model.unmet = evaluate(codes, model.facts)
    return not model.unmet


def _held_from_one_of(trigger: TriggerDef):
    """A trigger that leaves ``on_hold`` only for a case held from some states."""

    def held_from_allowed(event: EventData) -> bool:
        return trigger.leaves("on_hold", cast(CaseModel, event.model).held_from)

    held_from_allowed.__name__ = f"{trigger.name}_held_from_allowed"
    return held_from_allowed


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
            conditions = [_requirements_met]
            if source == "on_hold" and trigger.on_hold_from is not None:
                conditions.insert(0, _held_from_one_of(trigger))
            declared.append(
                {
                    "trigger": trigger.name,
                    "source": source,
                    "dest": trigger.dest,
                    "conditions": conditions,
                }
            )
    return declared


def check_tables() -> None:
    """Refuse to start with a table that names a guard, an effect or a check that does not
    exist (the dose clearance's requirements included)."""
    for trigger in TRIGGERS:
        codes = [*trigger.requires, *(code for also in trigger.also for code in also.requires)]
        unknown = [code for code in codes if code not in GUARDS]
        unknown += [name for name in trigger.effects if name not in EFFECTS]
        unknown += [name for name in trigger.checks if name not in CHECKS]
        unknown += [a.when for a in trigger.also if a.when is not None and a.when not in CONDITIONS]
        if unknown:
            raise RuntimeError(
                f"trigger {trigger.name} names unknown guards, effects, checks or conditions: "
                f"{unknown}"
            )
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

    Raises:
        MachineError: the trigger does not leave the model's current state.
    """
    return MACHINE.events[trigger.name].trigger(model, definition=trigger, **kwargs)


def is_invalid(model_state: str, trigger: TriggerDef) -> bool:
    """Whether the machine has no transition for ``trigger`` from ``model_state``."""
    return model_state not in MACHINE.events[trigger.name].transitions


__all__ = ["MACHINE", "CaseModel", "MachineError", "check_tables", "fire", "is_invalid"]
