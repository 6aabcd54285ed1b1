"""HTML forms generated from the API's own request schemas, and read back into them.

A form's fields come from the Pydantic model the API validates the same write
with, and a submitted form is validated by that model: the pages state no
rule of their own. Times are entered in UTC.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, ValidationError
from pydantic.fields import FieldInfo

from models.schemas import TransitionBody
from workflow.definition import TriggerDef


@dataclass(frozen=True)
class FormField:
    """One input of a form: its name, label, HTML input kind and choices."""

    name: str
    label: str
    kind: str
    """``select``, ``yesno`` (an optional flag), ``checkbox``, ``checkboxes``, ``number``,
    ``datetime``, ``date`` or ``text``."""
    required: bool
    options: tuple[str, ...] = ()
    step: str = "1"
    help: str = ""
    labels: tuple[str, ...] = ()
    """What a ``select`` shows for each of ``options`` (the options themselves if empty)."""


def fields_of(model: type[BaseModel], only: Sequence[str] | None = None) -> list[FormField]:
    """The inputs of a form for ``model`` (or only the fields named in ``only``)."""
    names = list(model.model_fields) if only is None else list(only)
    return [_field(name, model.model_fields[name]) for name in names]


def trigger_fields(definition: TriggerDef) -> list[FormField]:
    """The inputs of a trigger's form: the body it needs, then what it may take."""
    names = list(dict.fromkeys([*definition.body, *definition.optional, "reason"]))
    fields = fields_of(TransitionBody, names)
    return [
        FormField(f.name, f.label, f.kind, f.name in definition.body, f.options, f.step, f.help)
        for f in fields
    ]


def _field(name: str, info: FieldInfo) -> FormField:
    annotation, optional = _unwrap(info.annotation)
    required = info.is_required() and not optional
    label = name.replace("_", " ").capitalize()
    help_text = info.description or ""
    if get_origin(annotation) is Literal:
        return FormField(name, label, "select", required, _choices(annotation), help=help_text)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return FormField(name, label, "checkboxes", False, _choices(item), help=help_text)
    if annotation is bool and optional:
        # Left blank, nothing is sent: the service keeps the recorded value.
        return FormField(name, label, "yesno", False, ("true", "false"), help=help_text)
    if annotation is bool:
        return FormField(name, label, "checkbox", False, help=help_text)
    if annotation in (int, float):
        step = "1" if annotation is int else "any"
        return FormField(name, label, "number", required, step=step, help=help_text)
    if annotation in (datetime, AwareDatetime):
        return FormField(name, f"{label} (UTC)", "datetime", required, help=help_text)
    if annotation is date:
        return FormField(name, label, "date", required, help=help_text)
    return FormField(name, label, "text", required, help=help_text)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The field's type without ``Annotated`` and ``None``, and whether None was allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            annotation = args[0]
        else:
            return annotation, optional


def _choices(annotation: Any) -> tuple[str, ...]:
    annotation, _ = _unwrap(annotation)
    return tuple(str(a) for a in get_args(annotation))


class FormInput:
    """A submitted form: single values and the lists of multi-value inputs."""

    def __init__(self, values: Mapping[str, str], lists: Mapping[str, list[str]]) -> None:
        self.values, self.lists = values, lists


def read(model: type[Any], fields: list[FormField], form: FormInput) -> Any:
    """The submitted form as ``model``; raises ``ValidationError`` as the API would.

    A form sends only text: each input is first read as its kind says (``"5"``
    a number, a ticked box ``true``), which the API's JSON bodies may not do; a
    text that is not its kind is left as typed, for the model to refuse. (The
    model's own string mode, ``model_validate_strings``, refuses every list.)
    """
    data: dict[str, Any] = {}
    for field in fields:
        if field.kind == "checkbox":
            data[field.name] = field.name in form.values
        elif field.kind == "checkboxes":
            data[field.name] = form.lists.get(field.name, [])
        elif (value := form.values.get(field.name, "").strip()) != "":
            data[field.name] = _typed(field, value)
    return model.model_validate(data)


def _typed(field: FormField, value: str) -> Any:
    """One typed input's text as the value it stands for, or as typed if it is not one."""
    try:
        if field.kind == "number":
            return int(value) if field.step == "1" else float(value)
    except ValueError:
        return value
    if field.kind == "yesno":
        return {"true": True, "false": False}.get(value, value)
    return _as_utc(value) if field.kind == "datetime" else value


def _as_utc(value: str) -> str:
    """A ``datetime-local`` value, read as UTC (left as typed if it is not one)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def field_errors(exc: ValidationError) -> list[str]:
    """Each error of a form's validation, as a sentence naming its field."""
    messages = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        messages.append(f"{where}: {message}" if where else message)
    return messages


def local_input(moment: datetime) -> str:
    """A time as a ``datetime-local`` input's value, in UTC, to the minute."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
