"""Which requirements one move of a trigger checks: its own, and the ``also`` that apply.

A trigger's ``requires`` apply to every move; each ``Also`` of the trigger
table applies to the moves it names (``source``, ``to``) and when its condition (``when``)
holds. A condition is a small pure function of the request's body and the
case's facts, registered here by name.
"""

from __future__ import annotations

from collections.abc import Callable

from models.schemas import TransitionBody
from workflow.casefacts import CaseFacts
from workflow.definition import Also, TriggerDef
from workflow.prescribing import is_raise

Condition = Callable[[TransitionBody | None, CaseFacts], bool]


def dose_raised(body: TransitionBody | None, facts: CaseFacts) -> bool:
    """The new dose is above the current one (SPEC.md 2: a raise of ``adjust_dose``).

    Without a body (listing what a trigger needs) or a dose in force, it counts
    as a raise: the listing shows the most a dose change can need.
    """
    if body is None or body.dose_mg is None:
        return True
    return is_raise(facts.case, body)


CONDITIONS: dict[str, Condition] = {"dose_raised": dose_raised}


def applies(
    also: Also, source: str, dest: str, body: TransitionBody | None, facts: CaseFacts
) -> bool:
    """Whether ``also`` applies to a move from ``source`` to ``dest`` with ``body``."""
    if also.source is not None and source not in also.source:
        return False
    if also.to is not None and dest not in also.to:
        return False
    return also.when is None or CONDITIONS[also.when](body, facts)


def requirements_for(
    trigger: TriggerDef, source: str, dest: str, body: TransitionBody | None, facts: CaseFacts
) -> tuple[str, ...]:
    """Every code a move of ``trigger`` from ``source`` to ``dest`` checks, each once, in order."""
    codes = list(trigger.requires)
    for also in trigger.also:
        if applies(also, source, dest, body, facts):
            codes += also.requires
    return tuple(dict.fromkeys(codes))
