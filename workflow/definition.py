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
class Also:
    """Requirement codes a trigger checks only on some of its moves.

    They apply when the move starts from one of ``source`` (None: from any), leads
    to one of ``to`` (None: to any destination) and the condition ``when`` holds
    (None: always). ``when`` names a predicate of
    the request's body and the case's facts in ``workflow.conditions``;
    ``workflow.machine`` checks at import that every name exists.
    """

    requires: tuple[str, ...]
    to: tuple[str, ...] | None = None
    when: str | None = None
    source: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TriggerDef:
    """One trigger: where it may fire from, where it leads, who may fire it, what it needs.

    ``dest`` is ``None`` for an internal transition (the state does not change)
    and ``HELD_FROM`` for ``resume``. ``requires`` are requirement codes
    (``workflow.guards``) checked on every move. With ``on_hold_from``, the
    trigger leaves ``on_hold`` only for a case held from one of those states.
    ``body`` names the fields the request must carry and ``optional`` those it
    may; every trigger takes an optional ``reason``.
    ``effects`` name what else the trigger writes on the case
    (``workflow.effects.EFFECTS``); ``checks`` name limits on its body, checked
    before its guards (``workflow.effects.CHECKS``, a 422 naming the limit).
    ``also`` adds requirements to some of its moves only: from some sources, to
    some destinations, or when a condition of the body holds (a raise of the dose).
    ``then`` names records the move makes once it is made (``workflow.substance.THEN``: the
    first dispense on ``ship``, its receipt on ``confirm_delivery``).
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
    also: tuple[Also, ...] = ()
    on_hold_from: tuple[str, ...] | None = None
    then: tuple[str, ...] = ()

    def leaves(self, state: str, held_from: str | None) -> bool:
        """Whether the trigger may fire from ``state`` (on hold: from where it was held)."""
        if state not in self.sources:
            return False
        return state != "on_hold" or self.on_hold_from is None or held_from in self.on_hold_from

    def requirements(self, state: str) -> tuple[str, ...]:
        """Every code a move from ``state`` may check: its own, and each ``also`` that can apply."""
        extra = [
            code
            for also in self.also
            if also.source is None or state in also.source
            for code in also.requires
        ]
        return tuple(dict.fromkeys((*self.requires, *extra)))


ONGOING = (
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
)
"""The ongoing-safety set (SPEC.md 3.2), in the table's order: checked again before every
prescription, shipment, dose raise, resumption past prescribing, dispense and dose."""

CONTRAINDICATIONS = tuple(code for code in ONGOING if code.startswith("contraindication."))

APPROVAL_REQUIREMENTS = (
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
    *CONTRAINDICATIONS,
    "medications.classified",
    "screening.interactions",
    "taper.planned",
    "adverse_events.resolved",
)

PAST_PRESCRIBING = ("delivery.prescribed", "delivery.shipped", "integration", "monitoring")
"""The states a case is in once prescribed: resuming to one checks ``ONGOING`` again."""

CLEARANCE_REQUIREMENTS = tuple(
    dict.fromkeys(
        (
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
            *ONGOING,
        )
    )
)
"""What a dose clearance needs (SPEC.md 3.3): its own codes, then every code of ``ONGOING``."""

SHIP_REQUIREMENTS = ("adverse_events.resolved", *ONGOING)
REFILL_REQUIREMENTS = ("clinician.licensed", *SHIP_REQUIREMENTS)
"""``POST dispenses`` (SPEC.md 4.5): guarded like ``ship``, plus the clinician's licence."""

TRIGGERS: tuple[TriggerDef, ...] = (
    TriggerDef(
        "approve",
        ("evaluation",),
        "delivery.awaiting_prescription",
        (CLINICIAN,),
        APPROVAL_REQUIREMENTS,
        effects=("assign_clinician", "mark_approved"),
    ),
    TriggerDef(
        "decline",
        ("evaluation", "on_hold"),
        "ineligible",
        (CLINICIAN,),
        body=("reason",),
        effects=("record_referrals", "forget_held_from"),
        on_hold_from=("evaluation",),
    ),
    TriggerDef(
        "prescribe",
        ("delivery.awaiting_prescription",),
        "delivery.prescribed",
        (CLINICIAN,),
        (
            "clinician.licensed",
            "consent.signed",
            "vitals.recent",
            "assessments.recent",
            "adverse_events.resolved",
            *ONGOING,
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
        SHIP_REQUIREMENTS,
        body=("quantity_units", "lot"),
        optional=("carrier", "tracking_number"),
        checks=("dispense_limits",),
        then=("record_first_dispense",),
    ),
    TriggerDef(
        "confirm_delivery",
        ("delivery.shipped",),
        "integration",
        STAFF,
        then=("receive_first_dispense",),
    ),
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
        also=(
            Also(("assessments.recent", "adverse_events.resolved", *ONGOING), when="dose_raised"),
        ),
    ),
    TriggerDef(
        "discharge",
        ("monitoring", "on_hold"),
        "discharged",
        (CLINICIAN,),
        ("adverse_events.resolved", "medication.reconciled"),
        effects=("forget_held_from",),
        also=(Also(("assessments.recent",), source=("monitoring",)),),
        on_hold_from=("integration", "monitoring"),
    ),
    TriggerDef(
        "hold", ACTIVE_STATES, "on_hold", STAFF, body=("reason",), effects=("remember_held_from",)
    ),
    TriggerDef(
        "resume",
        ("on_hold",),
        HELD_FROM,
        (CLINICIAN,),
        ("clinician.licensed", "adverse_events.resolved", "safety.reassessed"),
        effects=("forget_held_from",),
        also=(Also(ONGOING, to=PAST_PRESCRIBING),),
    ),
    TriggerDef(
        "withdraw",
        OPEN_STATES,
        "withdrawn",
        STAFF,
        ("adverse_events.suicide_risk_resolved",),
        body=("reason",),
        effects=("forget_held_from",),
        then=("flag_units_at_home",),
    ),
)
TRIGGER_BY_NAME = {t.name: t for t in TRIGGERS}


def phase_of(state: str) -> str:
    """The phase a coordinator sees for ``state``."""
    return STATE_BY_NAME[state].phase


def triggers_from(state: str, held_from: str | None = None) -> list[TriggerDef]:
    """The triggers that may fire from ``state`` (held from ``held_from``), in table order."""
    return [t for t in TRIGGERS if t.leaves(state, held_from)]


def may_fire(role: str, trigger: TriggerDef) -> bool:
    """Whether a user of ``role`` may fire ``trigger`` (an admin may fire none)."""
    return role in trigger.roles


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

    A write in another state is refused with a conflict. By default a fact is
    recorded on open cases only: a closed case accepts adverse events and their
    resolution, medication counts, and returns, disposals and losses (SPEC.md
    section 4), and nothing else. Admins record no
    fact (SPEC.md section 1). ``approved_roles``, when given, are who may
    record it once the case is approved (SPEC.md 4.1: history and profile).
    """

    name: str
    roles: tuple[str, ...]
    states: tuple[str, ...] = OPEN_STATES
    approved_roles: tuple[str, ...] | None = None


FACTS: tuple[FactDef, ...] = (
    FactDef("case", STAFF),
    FactDef("assignment", STAFF, OPEN_STATES),
    FactDef("case_update", (CLINICIAN,), OPEN_STATES),
    FactDef("history", STAFF, approved_roles=(CLINICIAN,)),
    FactDef("profile", STAFF, approved_roles=(CLINICIAN,)),
    FactDef("consent", STAFF),
    FactDef("assessment", STAFF),
    FactDef("medication", STAFF),
    FactDef("medication_update", STAFF),
    FactDef("interaction_screening", (CLINICIAN,)),
    FactDef("taper", (CLINICIAN,)),
    FactDef("taper_confirm", (CLINICIAN,)),
    FactDef("vital", STAFF),
    FactDef("emergency_contact", STAFF),
    FactDef("monitor", STAFF),
    FactDef("monitor_update", STAFF),
    FactDef("dose_clearance", STAFF),
    FactDef("dose_clearance_cancel", STAFF),
    # On hold too: a dose taken before (or despite) the hold is still recorded, when
    # the case was held from a dosing state (``workflow.dosing`` checks ``held_from``).
    FactDef("session", STAFF, (*DOSING_STATES, "on_hold")),
    FactDef("adverse_event", STAFF, ANY_STATE),
    FactDef("adverse_event_resolve", (CLINICIAN,), ANY_STATE),
    # Open cases only: after discharge, suicidal ideation reaches a clinician through
    # its safety_review, and the resolution's note records what was done (SPEC.md 4).
    FactDef("safety_plan", (CLINICIAN,)),
    # The controlled-substance record (SPEC.md 4.5): refills in the dosing states; counts,
    # returns, disposals and losses on closed cases too, until every unit is accounted for.
    FactDef("dispense", (CLINICIAN,), DOSING_STATES),
    FactDef("dispense_receipt", STAFF),
    FactDef("medication_count", STAFF, ANY_STATE),
    FactDef("medication_return", STAFF, ANY_STATE),
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
