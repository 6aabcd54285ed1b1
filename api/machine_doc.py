"""The workflow described for clients, generated from the shared machine and its declaration.

Nothing here is written by hand: states come from ``MACHINE.states``, moves
from ``MACHINE.events``, and phases, roles, requirements and body fields from
``workflow.definition``. A trigger added to the table shows up here by itself.
"""

from __future__ import annotations

import re
from functools import cache

from pydantic import BaseModel, Field

from workflow.definition import (
    ADMIN,
    CLEARANCE_REQUIREMENTS,
    FACTS,
    INITIAL,
    STATE_BY_NAME,
    TRIGGER_BY_NAME,
)
from workflow.machine import MACHINE


class StateDoc(BaseModel):
    name: str
    phase: str
    terminal: bool


class PhaseDoc(BaseModel):
    name: str
    states: list[str]


class MoveDoc(BaseModel):
    source: str
    dest: str
    internal: bool = Field(description="True when the state does not change.")


class AlsoDoc(BaseModel):
    requires: list[str] = Field(description="Requirement codes checked on these moves only.")
    source: list[str] | None = Field(
        description="Only on a move from one of these states; null: from any."
    )
    to: list[str] | None = Field(description="Only on a move to one of these states; null: to any.")
    when: str | None = Field(
        description="Only when this condition of the request holds (`dose_raised`: the new "
        "dose is above the current one); null: always."
    )


class TriggerDoc(BaseModel):
    name: str
    sources: list[str]
    dest: str | None = Field(
        description="The declared destination: null for an internal transition (the state "
        "stays), `<held_from>` for `resume` (the state the case was held from)."
    )
    transitions: list[MoveDoc] = Field(description="Every (source, destination) the machine has.")
    roles: list[str] = Field(description="Who may fire it (admins may fire every trigger).")
    requires: list[str] = Field(description="Requirement codes its guards check on every move.")
    also: list[AlsoDoc] = Field(description="Requirement codes checked on some moves only.")
    on_hold_from: list[str] | None = Field(
        description="From `on_hold`, only for a case held from one of these states (null: any)."
    )
    body: list[str] = Field(description="Body fields the request must carry.")
    optional: list[str] = Field(description="Body fields the request may carry, besides `reason`.")


class WorkflowDoc(BaseModel):
    initial: str
    admin_role: str = Field(
        description="The role that manages users and reads everything; it makes no write to a case."
    )
    phases: list[PhaseDoc]
    states: list[StateDoc]
    triggers: list[TriggerDoc]
    requirements: list[str] = Field(description="Every requirement code any trigger checks.")
    clearance_requires: list[str] = Field(
        description="What a dose clearance needs (SPEC section 3.3, then every ONGOING code)."
    )
    fact_roles: dict[str, list[str]] = Field(description="Who may record each kind of fact.")


def _moves(name: str) -> list[MoveDoc]:
    moves = []
    for source, transitions in MACHINE.events[name].transitions.items():
        for transition in transitions:
            dest = transition.dest or source
            moves.append(MoveDoc(source=source, dest=dest, internal=transition.dest is None))
    return moves


def _trigger(name: str) -> TriggerDoc:
    definition = TRIGGER_BY_NAME[name]
    moves = _moves(name)
    return TriggerDoc(
        name=name,
        sources=list(dict.fromkeys(m.source for m in moves)),
        dest=definition.dest,
        transitions=moves,
        roles=list(definition.roles),
        requires=list(definition.requires),
        also=[
            AlsoDoc(
                requires=list(a.requires),
                source=None if a.source is None else list(a.source),
                to=None if a.to is None else list(a.to),
                when=a.when,
            )
            for a in definition.also
        ],
        on_hold_from=None if definition.on_hold_from is None else list(definition.on_hold_from),
        body=list(definition.body),
        optional=list(definition.optional),
    )


@cache
def describe() -> WorkflowDoc:
    """The whole workflow: states, phases, triggers, requirements and fact roles."""
    states = [
        StateDoc(name=n, phase=STATE_BY_NAME[n].phase, terminal=STATE_BY_NAME[n].terminal)
        for n in MACHINE.states
    ]
    phases: dict[str, list[str]] = {}
    for state in states:
        phases.setdefault(state.phase, []).append(state.name)
    triggers = [_trigger(name) for name in MACHINE.events]
    requirements = dict.fromkeys(
        code for t in triggers for code in [*t.requires, *(c for a in t.also for c in a.requires)]
    )
    return WorkflowDoc(
        initial=INITIAL,
        admin_role=ADMIN,
        phases=[PhaseDoc(name=p, states=s) for p, s in phases.items()],
        states=states,
        triggers=triggers,
        requirements=list(requirements),
        clearance_requires=list(CLEARANCE_REQUIREMENTS),
        fact_roles={fact.name: list(fact.roles) for fact in FACTS},
    )


def mermaid_id(state: str) -> str:
    """A Mermaid state id for ``state``: ids cannot hold dots (``delivery.shipped``)."""
    return re.sub(r"\W", "_", state)


@cache
def mermaid() -> str:
    """The machine as a Mermaid ``stateDiagram-v2``, one labelled edge per (source, dest)."""
    doc = describe()
    ids = {s.name: mermaid_id(s.name) for s in doc.states}
    assert len(set(ids.values())) == len(ids), "two states map to one Mermaid id"
    lines = ["stateDiagram-v2"]
    lines += [f'    state "{name}" as {ident}' for name, ident in ids.items()]
    lines.append(f"    [*] --> {ids[doc.initial]}")
    edges: dict[tuple[str, str], list[str]] = {}
    for trigger in doc.triggers:
        for move in trigger.transitions:
            edges.setdefault((move.source, move.dest), []).append(trigger.name)
    for (source, dest), names in edges.items():
        lines.append(f"    {ids[source]} --> {ids[dest]}: {' / '.join(names)}")
    terminal = [ids[s.name] for s in doc.states if s.terminal]
    lines += [f"    {ident} --> [*]" for ident in terminal]
    lines.append("    classDef closed fill:#eee,stroke:#999")
    lines.append(f"    class {', '.join(terminal)} closed")
    return "\n".join(lines) + "\n"
