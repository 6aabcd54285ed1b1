"""The workflow read back from the shared machine agrees with the definition and with SPEC.md.

``read_back`` builds what the API's ``/workflow`` listing and its Mermaid
diagram need from ``MACHINE.states`` and ``MACHINE.events``, joined with the
definition's roles, requirement codes and body fields by trigger name. The
expected value is SPEC.md section 2, written out literally.
"""

from __future__ import annotations

from typing import Any

import pytest

from workflow.definition import (
    ACTIVE_STATES,
    ADMIN,
    CLEARANCE_REQUIREMENTS,
    CLINICIAN,
    COORDINATOR,
    FACT_BY_NAME,
    HELD_FROM,
    INITIAL,
    ONGOING,
    OPEN_STATES,
    PHASES,
    STATE_BY_NAME,
    STATES,
    TRIGGER_BY_NAME,
    TRIGGERS,
    destination,
    may_fire,
    may_record,
    phase_of,
    triggers_from,
)
from workflow.machine import MACHINE

DELIVERY = ("delivery.awaiting_prescription", "delivery.prescribed", "delivery.shipped")
ACTIVE = ("evaluation", *DELIVERY, "integration", "monitoring")
NON_TERMINAL = (*ACTIVE, "on_hold")
STAFF = ["clinician", "coordinator"]

# SPEC.md section 2: states and phases.
SPEC_STATES = {
    "evaluation": {"phase": "evaluation", "terminal": False},
    "delivery.awaiting_prescription": {"phase": "delivery", "terminal": False},
    "delivery.prescribed": {"phase": "delivery", "terminal": False},
    "delivery.shipped": {"phase": "delivery", "terminal": False},
    "integration": {"phase": "integration", "terminal": False},
    "monitoring": {"phase": "monitoring", "terminal": False},
    "on_hold": {"phase": "on_hold", "terminal": False},
    "ineligible": {"phase": "closed", "terminal": True},
    "discharged": {"phase": "closed", "terminal": True},
    "withdrawn": {"phase": "closed", "terminal": True},
}

# SPEC.md section 3.2, in its table's order: the ongoing-safety set ONGOING.
SPEC_ONGOING = [
    "criteria.adult",
    "contraindication.substance_use",
    "contraindication.hypertension",
    "contraindication.psychosis",
    "contraindication.respiratory",
    "contraindication.cardiovascular",
    "contraindication.pregnancy",
    "medications.classified",
    "screening.interactions",
    "taper.confirmed",
    "taper.washout",
]

# SPEC.md section 2: triggers. ``dest`` "<held_from>" is resume's "the state it
# was held from" and None is adjust_dose's internal transition. Body fields are
# section 2's "body `reason` required" and section 4.5's trigger-specific fields
# (ship's body is the first dispense: quantity_units and lot).
SPEC_TRIGGERS: dict[str, dict[str, Any]] = {
    "approve": {
        "sources": ["evaluation"],
        "dest": "delivery.awaiting_prescription",
        "roles": ["clinician"],
        "requires": [
            "clinician.licensed",
            "history.recorded",
            "profile.recorded",
            "consent.signed",
            "assessments.baseline",
            "vitals.baseline",
            "criteria.adult",
            "criteria.chronic_insomnia",
            "criteria.mood_disorder",
            "criteria.treatment_resistant",
            "criteria.cbti_trial",
            "criteria.not_sleep_med_replacement",
            "contraindication.substance_use",
            "contraindication.hypertension",
            "contraindication.psychosis",
            "contraindication.respiratory",
            "contraindication.cardiovascular",
            "contraindication.pregnancy",
            "medications.classified",
            "screening.interactions",
            "taper.planned",
            "adverse_events.resolved",
        ],
        "body": [],
    },
    "decline": {
        "sources": ["evaluation", "on_hold"],
        "dest": "ineligible",
        "roles": ["clinician"],
        "requires": [],
        "body": ["reason"],
        "on_hold_from": ["evaluation"],
    },
    "prescribe": {
        "sources": ["delivery.awaiting_prescription"],
        "dest": "delivery.prescribed",
        "roles": ["clinician"],
        "requires": [
            "clinician.licensed",
            "consent.signed",
            "vitals.recent",
            "assessments.recent",
            "adverse_events.resolved",
            *SPEC_ONGOING,
        ],
        "body": ["dose_mg", "route", "formulation", "units_per_dose"],
    },
    "ship": {
        "sources": ["delivery.prescribed"],
        "dest": "delivery.shipped",
        "roles": STAFF,
        "requires": ["adverse_events.resolved", *SPEC_ONGOING],
        "body": ["quantity_units", "lot"],
    },
    "confirm_delivery": {
        "sources": ["delivery.shipped"],
        "dest": "integration",
        "roles": STAFF,
        "requires": [],
        "body": [],
    },
    "start_monitoring": {
        "sources": ["integration"],
        "dest": "monitoring",
        "roles": STAFF,
        "requires": ["session.preparation", "session.dosing", "session.integration"],
        "body": [],
    },
    "adjust_dose": {
        "sources": ["integration", "monitoring", "on_hold"],
        "dest": None,
        "roles": ["clinician"],
        "requires": ["clinician.licensed"],
        "also": [
            {
                "requires": ["assessments.recent", "adverse_events.resolved", *SPEC_ONGOING],
                "source": None,
                "to": None,
                "when": "dose_raised",
            }
        ],
        "body": ["dose_mg", "rationale"],
    },
    "discharge": {
        "sources": ["monitoring", "on_hold"],
        "dest": "discharged",
        "roles": ["clinician"],
        "requires": ["adverse_events.resolved", "medication.reconciled"],
        "body": [],
        "also": [
            {"requires": ["assessments.recent"], "source": ["monitoring"], "to": None, "when": None}
        ],
        "on_hold_from": ["integration", "monitoring"],
    },
    "hold": {
        "sources": list(ACTIVE),
        "dest": "on_hold",
        "roles": STAFF,
        "requires": [],
        "body": ["reason"],
    },
    "resume": {
        "sources": ["on_hold"],
        "dest": "<held_from>",
        "roles": ["clinician"],
        "requires": ["clinician.licensed", "adverse_events.resolved", "safety.reassessed"],
        "also": [
            {
                "requires": SPEC_ONGOING,
                "source": None,
                "to": ["delivery.prescribed", "delivery.shipped", "integration", "monitoring"],
                "when": None,
            }
        ],
        "body": [],
    },
    "withdraw": {
        "sources": list(NON_TERMINAL),
        "dest": "withdrawn",
        "roles": STAFF,
        "requires": ["adverse_events.suicide_risk_resolved"],
        "body": ["reason"],
    },
}
for _spec in SPEC_TRIGGERS.values():
    _spec.setdefault("on_hold_from", None)


def _machine_dest(trigger: str) -> str | None:
    """The one destination of ``trigger`` in the machine, HELD_FROM for resume's fan-out."""
    dests = {t.dest for ts in MACHINE.events[trigger].transitions.values() for t in ts}
    names = {
        str(getattr(c.func, "__name__", c.func))
        for ts in MACHINE.events[trigger].transitions.values()
        for t in ts
        for c in t.conditions
    }
    held_guards = {n for n in names if n.startswith("held_from_is_")}
    if len(dests) > 1:
        # One guarded transition per state the case may have been held from.
        assert held_guards == {f"held_from_is_{d}" for d in dests}
        return HELD_FROM
    (dest,) = dests
    return dest


def read_back() -> dict[str, Any]:
    """The workflow as the API would publish it, read from the shared machine."""
    states = {
        name: {"phase": phase_of(name), "terminal": STATE_BY_NAME[name].terminal}
        for name in MACHINE.states
    }
    triggers: dict[str, dict[str, Any]] = {}
    for name, event in MACHINE.events.items():
        definition = TRIGGER_BY_NAME[name]
        triggers[name] = {
            "sources": list(event.transitions),
            "dest": _machine_dest(name),
            "roles": sorted(definition.roles),
            "requires": list(definition.requires),
            "body": list(definition.body),
            "on_hold_from": _held_from_condition(name),
        }
        if definition.also:
            triggers[name]["also"] = [
                {
                    "requires": list(a.requires),
                    "source": None if a.source is None else list(a.source),
                    "to": None if a.to is None else list(a.to),
                    "when": a.when,
                }
                for a in definition.also
            ]
    return {"states": states, "triggers": triggers}


def _held_from_condition(trigger: str) -> list[str] | None:
    """The held-from states the machine's ``on_hold`` transition of ``trigger`` accepts."""
    transitions = MACHINE.events[trigger].transitions.get("on_hold", [])
    names = [getattr(c.func, "__name__", c.func) for t in transitions for c in t.conditions]
    if f"{trigger}_held_from_allowed" not in names:
        return None
    definition = TRIGGER_BY_NAME[trigger]
    return [s for s in ACTIVE if definition.leaves("on_hold", s)]


def test_the_machine_reads_back_as_the_spec_table():
    assert read_back() == {"states": SPEC_STATES, "triggers": SPEC_TRIGGERS}


def test_the_machine_has_exactly_the_declared_states_and_triggers_in_order():
    assert list(MACHINE.states) == [s.name for s in STATES]
    assert list(MACHINE.events) == [t.name for t in TRIGGERS]


def test_the_definition_agrees_with_the_spec_table():
    for trigger in TRIGGERS:
        spec = SPEC_TRIGGERS[trigger.name]
        assert list(trigger.sources) == spec["sources"], trigger.name
        assert trigger.dest == spec["dest"], trigger.name
        assert sorted(trigger.roles) == spec["roles"], trigger.name
        assert list(trigger.requires) == spec["requires"], trigger.name
        assert list(trigger.body) == spec["body"], trigger.name
    assert set(TRIGGER_BY_NAME) == set(SPEC_TRIGGERS)


def test_ongoing_names_every_code_of_the_spec_table_in_its_order():
    assert list(ONGOING) == SPEC_ONGOING


def test_the_machine_holds_no_models_and_adds_no_auto_transitions():
    assert MACHINE.models == []
    assert not any(name.startswith("to_") for name in MACHINE.events)


def test_mermaid_lines_can_be_generated_from_the_machine():
    """Each (source, dest) edge of the machine, as the diagram draws it."""
    edges = {
        (source, t.dest or source, name)
        for name, event in MACHINE.events.items()
        for source, ts in event.transitions.items()
        for t in ts
    }
    assert ("monitoring", "monitoring", "adjust_dose") in edges
    assert {(src, dst) for src, dst, name in edges if name == "resume"} == {
        ("on_hold", s) for s in ACTIVE
    }
    assert len(edges) == sum(
        len(ACTIVE) if t.dest == HELD_FROM else len(t.sources) for t in TRIGGERS
    )


def test_initial_phases_and_state_groups():
    assert INITIAL == "evaluation"
    assert PHASES == ("evaluation", "delivery", "integration", "monitoring", "on_hold", "closed")
    assert OPEN_STATES == NON_TERMINAL
    assert ACTIVE_STATES == ACTIVE


@pytest.mark.parametrize("state", [s.name for s in STATES if s.name != "on_hold"])
def test_triggers_from_lists_the_spec_triggers_of_each_state(state):
    expected = [name for name, spec in SPEC_TRIGGERS.items() if state in spec["sources"]]
    assert [t.name for t in triggers_from(state)] == expected


@pytest.mark.parametrize("held_from", ACTIVE)
def test_triggers_from_a_hold_depend_on_where_the_case_was_held_from(held_from):
    expected = [
        name
        for name, spec in SPEC_TRIGGERS.items()
        if "on_hold" in spec["sources"]
        and (spec["on_hold_from"] is None or held_from in spec["on_hold_from"])
    ]
    assert [t.name for t in triggers_from("on_hold", held_from)] == expected


def test_requirements_per_source():
    discharge = TRIGGER_BY_NAME["discharge"]
    assert discharge.requirements("monitoring") == (
        "adverse_events.resolved",
        "medication.reconciled",
        "assessments.recent",
    )
    assert discharge.requirements("on_hold") == (
        "adverse_events.resolved",
        "medication.reconciled",
    )


def test_destination_of_internal_resume_and_plain_triggers():
    assert destination(TRIGGER_BY_NAME["adjust_dose"], "monitoring", None) == "monitoring"
    assert destination(TRIGGER_BY_NAME["resume"], "on_hold", "integration") == "integration"
    assert destination(TRIGGER_BY_NAME["ship"], "delivery.prescribed", None) == "delivery.shipped"


def test_a_raise_of_the_dose_also_needs_the_ongoing_rules():
    """SPEC.md section 2: a lower dose needs only a licence; a raise also these."""
    adjust = TRIGGER_BY_NAME["adjust_dose"]
    raise_codes = ["assessments.recent", "adverse_events.resolved", *ONGOING]
    (also,) = adjust.also
    assert (list(also.requires), also.when) == (raise_codes, "dose_raised")
    assert list(adjust.requires) == ["clinician.licensed"]
    assert [t.name for t in TRIGGERS if any(a.when for a in t.also)] == ["adjust_dose"]


def test_a_dose_clearance_needs_the_codes_of_section_3_3_then_every_ongoing_one():
    own = [
        "case.dosing_state",
        "session.preparation",
        "adverse_events.resolved",
        "assessments.recent",
        "consent.signed",
        "emergency_contact.recorded",
        "monitor.registered",
        "dose.interval",
        "dose.weekly_limit",
        "units.on_hand",
        "dose.blood_pressure",
    ]
    assert list(CLEARANCE_REQUIREMENTS) == own + [c for c in ONGOING if c not in own]


# SPEC.md section 1: what a coordinator may do; a clinician may do all that and more.
COORDINATOR_TRIGGERS = {"ship", "confirm_delivery", "start_monitoring", "hold", "withdraw"}
COORDINATOR_FACTS = {
    "case",
    "history",
    "profile",
    "consent",
    "assessment",
    "medication",
    "medication_update",
    "vital",
    "emergency_contact",
    "monitor",
    "monitor_update",
    "dose_clearance",
    "dose_clearance_cancel",
    "session",
    "adverse_event",
    "assignment",
    "dispense_receipt",
    "medication_count",
    "medication_return",
}
CLINICIAN_ONLY_FACTS = {
    "case_update",
    "interaction_screening",
    "taper",
    "taper_confirm",
    "adverse_event_resolve",
    "safety_plan",
    "dispense",
}


def test_roles_per_trigger_follow_spec_section_1():
    for trigger in TRIGGERS:
        assert may_fire(COORDINATOR, trigger) is (trigger.name in COORDINATOR_TRIGGERS)
        assert may_fire(CLINICIAN, trigger)
        assert not may_fire(ADMIN, trigger)  # an admin makes no write to a case
        assert not may_fire("system", trigger)


def test_roles_per_fact_follow_spec_section_1():
    assert set(FACT_BY_NAME) == COORDINATOR_FACTS | CLINICIAN_ONLY_FACTS
    for fact in FACT_BY_NAME:
        assert may_record(COORDINATOR, fact) is (fact in COORDINATOR_FACTS)
        assert may_record(CLINICIAN, fact)
        assert not may_record(ADMIN, fact)


@pytest.mark.parametrize("state", ["ineligible", "discharged", "withdrawn"])
def test_a_closed_case_takes_only_adverse_events_and_their_resolution(state):
    """SPEC.md section 4: adverse events and their resolution, medication counts, and
    returns, disposals and losses (one fact, ``medication_return``, by its ``kind``)."""
    taken = {name for name, fact in FACT_BY_NAME.items() if state in fact.states}
    assert taken == {
        "adverse_event",
        "adverse_event_resolve",
        "medication_count",
        "medication_return",
    }


def test_the_controlled_substance_facts_are_taken_where_spec_4_5_says():
    """Refills only in integration or monitoring; receipts on open cases; counts and returns
    in every state, closed ones included."""
    assert FACT_BY_NAME["dispense"].states == ("integration", "monitoring")
    assert FACT_BY_NAME["dispense_receipt"].states == OPEN_STATES
    for fact in ("medication_count", "medication_return"):
        assert FACT_BY_NAME[fact].states == tuple(SPEC_STATES), fact


def test_ship_confirm_delivery_and_withdraw_record_the_substance():
    """ship's body is the first dispense, confirm_delivery receives it, and withdraw flags
    units left at home (SPEC.md 2, 4.5); no other trigger records anything of its own."""
    then = {t.name: list(t.then) for t in TRIGGERS if t.then}
    assert then == {
        "ship": ["record_first_dispense"],
        "confirm_delivery": ["receive_first_dispense"],
        "withdraw": ["flag_units_at_home"],
    }
    assert list(TRIGGER_BY_NAME["ship"].optional) == ["carrier", "tracking_number"]
