"""What the pages show, read through the same workflow services as the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from api.pages import chart
from api.pages.facts import FACT_FORMS, FactForm
from api.pages.forms import FormField, fields_of, local_input, trigger_fields
from models.reminders import PENDING, SENT, Reminder
from models.tables import AuditEvent, Case, User
from schedules.service import list_reminders
from workflow import audit, cases, patient, records
from workflow.cases import TriggerOption
from workflow.definition import TRIGGER_BY_NAME, Actor, may_fire, may_record
from workflow.errors import NotFound

OPEN_STATUSES = (PENDING, SENT)
FACT_SECTIONS = (
    ("consents", "Consents"),
    ("assessments", "Assessments"),
    ("vitals", "Blood pressure"),
    ("medications", "Medications"),
    ("interaction-screenings", "Interaction screenings"),
    ("tapers", "Tapers"),
    ("emergency-contacts", "Emergency contacts"),
    ("monitors", "Treatment monitors"),
    ("dose-clearances", "Dose clearances"),
    ("sessions", "Sessions"),
    ("adverse-events", "Adverse events"),
    ("safety-plans", "Safety plans"),
    ("dispenses", "Dispenses"),
    ("medication-counts", "Medication counts"),
    ("medication-returns", "Returns, disposals and losses"),
)
HIDDEN_COLUMNS = {"case_id", "created_at", "updated_at", "findings", "unmet"}
REMINDER_PAGE = 200
PRESCRIBING = ("prescribe", "adjust_dose")


@dataclass
class Failure:
    """A refused form: which one, what the service said, and what was typed."""

    form: str
    message: str
    unmet: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Form:
    """A form on the case page: where it posts, its inputs and the records it may pick."""

    key: str
    title: str
    action: str
    fields: list[FormField]
    targets: list[tuple[int, str]] | None = None
    option: TriggerOption | None = None


def show(value: Any) -> str:
    """A recorded value as the pages print it."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(show(v) for v in value) or "\u2014"
    return str(value)


def case_page(session: Session, *, case_id: int, actor: Actor, now: datetime) -> dict[str, Any]:
    """Everything the case page shows, for ``actor`` at ``now``.

    A refused form is shown next to that form; ``form_keys`` lets the page show
    a refusal of a form it does not have (a role's, say) at its top instead.
    """
    case = cases.get_case(session, case_id)
    options = cases.list_triggers(session, case_id=case_id, actor=actor, now=now)
    collections = {
        name: records.list_records(session, case_id=case_id, collection=name)
        for name, _ in FACT_SECTIONS
    }
    events = audit.list_events(session, case_id)
    trigger_forms = _trigger_forms(case, options, actor)
    fact_forms = [
        _fact_form(session, case, form, collections)
        for form in FACT_FORMS
        if may_record(actor.role, form.fact)
    ]
    # A form about an existing record is shown only when there is a record to pick.
    fact_forms = [form for form in fact_forms if form.targets is None or form.targets]
    return {
        "case": case,
        "assignees": _assignees(session, case),
        "options": options,
        "history": _record(patient.get_history, session, case_id),
        "profile": _record(patient.get_profile, session, case_id),
        "sections": [(title, _table(collections[name])) for name, title in FACT_SECTIONS],
        "reminders": sorted(case_reminders(session, case_id), key=_open_first),
        "events": events,
        "prescription": _prescription(case, events),
        "units_on_hand": cases.units_on_hand(session, [case_id])[case_id],
        "chart": chart.build(collections["assessments"]),
        "trigger_forms": trigger_forms,
        "fact_forms": fact_forms,
        "form_keys": {form.key for form in [*trigger_forms, *fact_forms]},
        "now_input": local_input(now),
    }


def case_reminders(session: Session, case_id: int) -> list[Reminder]:
    """Every reminder of the case, oldest first."""
    found: list[Reminder] = []
    after: int | None = None
    while True:
        rows, after = list_reminders(session, case_id=case_id, limit=REMINDER_PAGE, after_id=after)
        found += rows
        if after is None:
            return found


def _open_first(reminder: Reminder) -> tuple[bool, datetime]:
    return reminder.status not in OPEN_STATUSES, reminder.due_at


def _prescription(case: Case, events: list[AuditEvent]) -> dict[str, Any] | None:
    """The case's prescription (the dose in force), with the rationale of its latest change."""
    if not case.prescription:
        return None
    prescription = dict(case.prescription)
    if isinstance(at := prescription.get("prescribed_at"), str):
        prescription["prescribed_at"] = datetime.fromisoformat(at)
    for event in reversed(events):
        if event.trigger in PRESCRIBING:
            prescription["rationale"] = event.data.get("rationale")
            break
    return prescription


def _record(
    read: Callable[..., Any], session: Session, case_id: int
) -> list[tuple[str, Any]] | None:
    """A one-per-case record (history, profile) as label and value pairs; None if not recorded."""
    try:
        record = read(session, case_id=case_id)
    except NotFound:
        return None
    data = record.model_dump(exclude={"id", "case_id", "created_at", "updated_at"})
    return [(name.replace("_", " "), value) for name, value in data.items()]


def _table(rows: list[Any]) -> tuple[list[str], list[list[Any]]]:
    """A collection as column names and rows of values (internal columns left out)."""
    if not rows:
        return [], []
    columns = [c for c in type(rows[0]).model_fields if c not in HIDDEN_COLUMNS]
    return columns, [[getattr(row, c) for c in columns] for row in rows]


def _trigger_forms(case: Case, options: list[TriggerOption], actor: Actor) -> list[Form]:
    forms = []
    for option in options:
        definition = TRIGGER_BY_NAME[option.trigger]
        if may_fire(actor.role, definition):
            action = f"/app/cases/{case.id}/triggers/{option.trigger}"
            title = f"{option.trigger.replace('_', ' ')} \u2192 {option.dest}"
            fields = trigger_fields(definition)
            forms.append(Form(f"trigger:{option.trigger}", title, action, fields, option=option))
    return forms


def _fact_form(
    session: Session, case: Case, form: FactForm, collections: dict[str, list[Any]]
) -> Form:
    targets = None
    if form.target is not None:
        target = form.target
        rows = collections.get(target.collection, [])
        targets = [(row.id, target.describe(row)) for row in rows if target.open(row)]
    action = f"/app/cases/{case.id}/facts/{form.fact}"
    fields = [_user_choice(session, f) for f in fields_of(form.schema)]
    return Form(f"fact:{form.fact}", form.title, action, fields, targets)


ASSIGNEE_ROLES = dict(cases.ASSIGNABLE)
"""An assignment's fields, and the role of the users each may name."""


def _user_choice(session: Session, given: FormField) -> FormField:
    """An assignee's input as a choice of the users who may be assigned, by name."""
    role = ASSIGNEE_ROLES.get(given.name)
    if role is None:
        return given
    users = [u for u in cases.assignable_users(session, role) if u.id is not None]
    return replace(
        given,
        label=role.capitalize(),
        kind="select",
        options=tuple(str(u.id) for u in users),
        labels=tuple(f"{u.name} (#{u.id})" for u in users),
    )


def _assignees(session: Session, case: Case) -> list[tuple[str, str | None]]:
    """Who the case is assigned to, per role: a user's name and id, or None."""
    shown = []
    for _, role in cases.ASSIGNABLE:
        user_id = getattr(case, cases.assignee_column(role))
        user = session.get(User, user_id) if user_id is not None else None
        shown.append((role, f"{user.name} (#{user.id})" if user is not None else None))
    return shown
