"""The care pathway, declared once: states, triggers and facts as tables.

Everything else is generated from these tables: the shared state machine,
the role checks of every write, the API's ``/workflow`` listing and its
Mermaid diagram.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

COORDINATOR = "coordinator"
CLINICIAN = "clinician"
ADMIN = "admin"
SYSTEM = "system"
STAFF = (COORDINATOR, CLINICIAN)
ROLES = (ADMIN, COORDINATOR, CLINICIAN)

HELD_FROM = "<held_from>"
"""A destination that is the state the case was held from (``resume``)."""


@dataclass(frozen=True)
class StateDef:
    """A state of the machine and the phase coordinators see it as."""

    name: str
    phase: str
    terminal: bool = False


STATES: tuple[StateDef, ...] = (
    StateDef("evaluation", "evaluation"),
    StateDef("delivery.awaiting_prescription", "delivery"),
    StateDef("delivery.prescribed", "delivery"),
    StateDef("delivery.shipped", "delivery"),
    StateDef("integration", "integration"),
    StateDef("monitoring", "monitoring"),
    StateDef("on_hold", "on_hold"),
    StateDef("ineligible", "closed", terminal=True),
    StateDef("discharged", "closed", terminal=True),
    StateDef("withdrawn", "closed", terminal=True),
)
INITIAL = "evaluation"
STATE_BY_NAME = {s.name: s for s in STATES}
PHASES = tuple(dict.fromkeys(s.phase for s in STATES))
OPEN_STATES = tuple(s.name for s in STATES if not s.terminal)
ACTIVE_STATES = tuple(s for s in OPEN_STATES if s != "on_hold")
"""The states a case can be put on hold from."""


@dataclass(frozen=True)
class TriggerDef:
    """One trigger: where it may fire from, where it leads, who may fire it, what it needs.

    ``dest`` is ``None`` for an internal transition (the state does not change)
    and ``HELD_FROM`` for ``resume``. ``requires`` are requirement codes
    (``workflow.guards``); ``body`` names the fields the request must carry and
    ``optional`` those it may; every trigger takes an optional ``reason``.
    ``effects`` name what else the trigger writes on the case
    (``workflow.effects.EFFECTS``); ``checks`` name limits on its body, checked
    before its guards (``workflow.effects.CHECKS``, a 422 naming the limit).
    ``raise_requires`` are the further requirement codes of a body that raises
    the prescription's dose (``adjust_dose``: lowering it needs only ``requires``).
    """

    name: str
    sources: tuple[str, ...]
    dest: str | None
    roles: tuple[str, ...]
    requires: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    raise_requires: tuple[str, ...] = ()


APPROVAL_REQUIREMENTS = (
    "clinician.licensed",
    "history.recorded",
    "assessments.baseline",
    "vitals.baseline",
    "criteria.chronic_insomnia",
    "criteria.mood_disorder",
    "criteria.treatment_resistant",
    "criteria.cbti_trial",
    "criteria.not_sleep_med_replacement",
    "contraindication.substance_use",
    "contraindication.hypertension",
    "contraindication.psychosis",
    "contraindication.respiratory",
    "medications.classified",
    "screening.interactions",
    "taper.planned",
)

ONGOING = (
    # ONGOING: completed by the patient-record branch (SPEC.md 3.2). Here, the codes of
    # 3.2 that are guards on main already; the merge takes that branch's definition.
    "medications.classified",
    "screening.interactions",
    "taper.confirmed",
    "taper.washout",
    "contraindication.substance_use",
    "contraindication.hypertension",
    "contraindication.psychosis",
    "contraindication.respiratory",
)
"""The ongoing-safety requirements (SPEC.md 3.2): checked at every dose, not only at gates."""

CLEARANCE_REQUIREMENTS = tuple(
    dict.fromkeys(
        (
            "case.dosing_state",
            "session.preparation",
            "adverse_events.resolved",
            "assessments.recent",
            # consent.signed joins here with the patient-record branch (no guard on this one).
            "emergency_contact.recorded",
            "monitor.registered",
            "dose.interval",
            "dose.weekly_limit",
            # units.on_hand joins here with the controlled-substance record (issue 13).
            "dose.blood_pressure",
            *ONGOING,
        )
    )
)
"""What a dose clearance needs (SPEC.md 3.3): its own codes, then every code of ``ONGOING``."""

DOSE_RAISE_REQUIREMENTS = ("assessments.recent", "adverse_events.resolved", *ONGOING)
"""What ``adjust_dose`` needs besides a licence when it raises the dose (SPEC.md 2)."""

TRIGGERS: tuple[TriggerDef, ...] = (
    TriggerDef(
        "approve",
        ("evaluation",),
        "delivery.awaiting_prescription",
        (CLINICIAN,),
        APPROVAL_REQUIREMENTS,
        effects=("assign_clinician",),
    ),
    TriggerDef(
        "decline",
        ("evaluation",),
        "ineligible",
        (CLINICIAN,),
        body=("reason",),
        effects=("record_referrals",),
    ),
    TriggerDef(
        "prescribe",
        ("delivery.awaiting_prescription",),
        "delivery.prescribed",
        (CLINICIAN,),
        (
            "clinician.licensed",
            "screening.interactions",
            "taper.confirmed",
            "contraindication.hypertension",
        ),
        body=("dose_mg", "route", "formulation", "units_per_dose"),
        effects=("set_prescription",),
        checks=("prescription_limits",),
    ),
    TriggerDef(
        "ship",
        ("delivery.prescribed",),
        "delivery.shipped",
        STAFF,
        optional=("carrier", "tracking_number"),
    ),
    TriggerDef("confirm_delivery", ("delivery.shipped",), "integration", STAFF),
    TriggerDef(
        "start_monitoring",
        ("integration",),
        "monitoring",
        STAFF,
        ("session.preparation", "session.dosing", "session.integration"),
    ),
    TriggerDef(
        "adjust_dose",
        ("integration", "monitoring", "on_hold"),
        None,
        (CLINICIAN,),
        ("clinician.licensed",),
        body=("dose_mg", "rationale"),
        optional=("units_per_dose",),
        effects=("change_prescription",),
        checks=("dose_change_limits",),
        raise_requires=DOSE_RAISE_REQUIREMENTS,
    ),
    TriggerDef(
        "discharge",
        ("monitoring",),
        "discharged",
        (CLINICIAN,),
        ("assessments.recent", "adverse_events.resolved"),
    ),
    TriggerDef(
        "hold", ACTIVE_STATES, "on_hold", STAFF, body=("reason",), effects=("remember_held_from",)
    ),
    TriggerDef(
        "resume",
        ("on_hold",),
        HELD_FROM,
        (CLINICIAN,),
        ("adverse_events.resolved",),
        effects=("forget_held_from",),
    ),
    TriggerDef(
        "withdraw", OPEN_STATES, "withdrawn", STAFF, body=("reason",), effects=("forget_held_from",)
    ),
)
TRIGGER_BY_NAME = {t.name: t for t in TRIGGERS}


def phase_of(state: str) -> str:
    """The phase a coordinator sees for ``state``."""
    return STATE_BY_NAME[state].phase


def triggers_from(state: str) -> list[TriggerDef]:
    """The triggers that may fire from ``state``, in table order."""
    return [t for t in TRIGGERS if state in t.sources]


def may_fire(role: str, trigger: TriggerDef) -> bool:
    """Whether a user of ``role`` may fire ``trigger`` (an admin may fire none)."""
    return role in trigger.roles


def requirements_of(trigger: TriggerDef, *, raising: bool = False) -> tuple[str, ...]:
    """The requirement codes ``trigger`` checks; ``raising``: its body raises the dose."""
    if not raising:
        return trigger.requires
    return tuple(dict.fromkeys((*trigger.requires, *trigger.raise_requires)))


def destination(trigger: TriggerDef, state: str, held_from: str | None) -> str:
    """Where ``trigger`` leads from ``state``."""
    if trigger.dest is None:
        return state
    if trigger.dest == HELD_FROM:
        return held_from or state
    return trigger.dest


ANY_STATE = tuple(s.name for s in STATES)
DOSING_STATES = ("integration", "monitoring")


@dataclass(frozen=True)
class FactDef:
    """One kind of fact: who may record it, and in which states of the case.

    A write in another state is refused with a conflict. Admins record no
    fact (SPEC.md section 1).
    """

    name: str
    roles: tuple[str, ...]
    states: tuple[str, ...] = ANY_STATE


FACTS: tuple[FactDef, ...] = (
    FactDef("case", STAFF),
    FactDef("history", STAFF),
    FactDef("assessment", STAFF),
    FactDef("medication", STAFF),
    FactDef("medication_update", STAFF),
    FactDef("interaction_screening", (CLINICIAN,)),
    FactDef("taper", (CLINICIAN,)),
    FactDef("taper_confirm", (CLINICIAN,)),
    FactDef("vital", STAFF),
    FactDef("emergency_contact", STAFF, OPEN_STATES),
    FactDef("monitor", STAFF, OPEN_STATES),
    FactDef("monitor_update", STAFF, OPEN_STATES),
    FactDef("dose_clearance", STAFF, OPEN_STATES),
    FactDef("dose_clearance_cancel", STAFF, OPEN_STATES),
    # On hold too: a dose taken before (or despite) the hold is still recorded, when
    # the case was held from a dosing state (``workflow.dosing`` checks ``held_from``).
    FactDef("session", STAFF, (*DOSING_STATES, "on_hold")),
    FactDef("adverse_event", STAFF),
    FactDef("adverse_event_resolve", (CLINICIAN,)),
)
FACT_BY_NAME = {f.name: f for f in FACTS}


@dataclass(frozen=True)
class License:
    """A licence to practise in one US state, valid through ``expires_on`` (None: no expiry)."""

    state: str
    expires_on: date | None = None

    def valid_on(self, day: date) -> bool:
        """Whether the licence is valid on ``day``."""
        return self.expires_on is None or day <= self.expires_on


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user's id, role and licences, or the system itself.

    ``license_states`` are states licensed with no expiry date; ``licenses``
    carry their own expiry. A user loaded from the database has ``licenses``.
    """

    id: int | None
    role: str
    license_states: tuple[str, ...] = ()
    licenses: tuple[License, ...] = ()

    def licensed_in(self, state: str, day: date) -> bool:
        """Whether the actor holds a licence valid on ``day`` in ``state``."""
        if state in self.license_states:
            return True
        return any(lic.state == state and lic.valid_on(day) for lic in self.licenses)


SYSTEM_ACTOR = Actor(id=None, role=SYSTEM)


def may_record(role: str, fact: str) -> bool:
    """Whether a user of ``role`` may record ``fact`` (an admin may record none)."""
    return role in FACT_BY_NAME[fact].roles
