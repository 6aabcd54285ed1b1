"""The web pages under ``/app``: sign-in, the worklist, a case, and the case's forms.

Each form posts to a handler that runs the same workflow service as the API,
in one transaction of ``workflow.unit.write_transaction`` (as the API's writes
do), then redirects back to the case (post/redirect/get). A refusal renders
the case page again with the service's own message next to the form.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import MAX_ID, CaseId, Now, RecordId, TriggerName
from api.pages import sessions, views, worklist
from api.pages.auth import (
    CheckedUser,
    CurrentUser,
    Form,
    login_token,
    login_token_matches,
    set_login_cookie,
    set_session_cookie,
)
from api.pages.facts import FACT_FORM_BY_NAME
from api.pages.forms import FormInput, field_errors, fields_of, read, trigger_fields
from api.pages.sessions import COOKIE, SignedIn
from api.problems import DOMAIN_STATUS
from models.schemas import TransitionBody
from workflow import cases
from workflow import worklist as worklist_service
from workflow.errors import DomainError, NotFound, TransitionBlocked
from workflow.unit import write_transaction

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["show"] = views.show
TEMPLATES.env.globals["may_acknowledge"] = worklist_service.may_acknowledge
router = APIRouter(prefix="/app", include_in_schema=False)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from its template."""
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/app/worklist", status_code=303)


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return _login(request, login_token(request))


def _login(request: Request, csrf: str, status: int = 200, error: str = "") -> HTMLResponse:
    response = render(request, "login.html", status, csrf_token=csrf, error=error)
    set_login_cookie(request, response, csrf)
    return response


@router.post("/login", response_model=None)
def login(request: Request, form: Form, now: Now) -> Response:
    """Sign in with a token: a session cookie, then the worklist."""
    if not login_token_matches(request, form):
        message = "The sign-in form had expired. Please try again."
        return _login(request, secrets.token_urlsafe(32), 403, message)
    engine = request.app.state.engine
    with write_transaction(engine) as session:
        made = sessions.sign_in(session, token=form.values.get("token", "").strip(), now=now)
    if made is None:
        message = "That token is not known, or is not a coordinator's or clinician's."
        return _login(request, login_token(request), 401, message)
    response = RedirectResponse("/app/worklist", status_code=303)
    set_session_cookie(request, response, made[0])
    return response


@router.post("/logout")
def logout(request: Request, user: CheckedUser) -> RedirectResponse:
    """Sign out: the session ends on the server, and the browser forgets the cookie."""
    engine = request.app.state.engine
    with write_transaction(engine) as session:
        sessions.sign_out(session, secret=request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/app/login", status_code=303)
    response.delete_cookie(COOKIE, path="/app")
    return response


@router.get("/worklist")
def worklist_page(
    request: Request,
    user: CurrentUser,
    now: Now,
    filters: Annotated[worklist.Filters, Query()],
) -> HTMLResponse:
    """The cases that need staff, most urgent first."""
    with Session(request.app.state.read_engine) as session:
        page = worklist.page(session, actor=user.actor, now=now, filters=filters)
    return render(request, "worklist.html", user=user, filters=filters, **page)


@router.get("/cases/{case_id}")
def case_page(request: Request, user: CurrentUser, case_id: CaseId, now: Now) -> HTMLResponse:
    """A case: its state, what blocks it, its facts, reminders, audit trail and forms."""
    return _case(request, user, case_id, now)


def _case(
    request: Request,
    user: SignedIn,
    case_id: int,
    now: Any,
    failure: views.Failure | None = None,
    status: int = 200,
) -> HTMLResponse:
    with Session(request.app.state.read_engine) as session:
        try:
            page = views.case_page(session, case_id=case_id, actor=user.actor, now=now)
        except NotFound as exc:
            return render(
                request, "refused.html", 404, user=user, heading="Not found", message=exc.detail
            )
    done = request.query_params.get("done")
    return render(request, "case.html", status, user=user, failure=failure, done=done, **page)


@router.post("/cases/{case_id}/facts/{fact}", response_model=None)
def record_fact(
    request: Request, user: CheckedUser, form: Form, case_id: CaseId, fact: str, now: Now
) -> Response:
    """Record a fact through the API's own service for it."""
    definition = FACT_FORM_BY_NAME.get(fact)
    if definition is None:
        raise NotFound(f"There is no form for {fact!r}.")
    extra: dict[str, Any] = {}

    def service(session: Session, **kwargs: Any) -> Any:
        if definition.target is not None:
            extra[definition.target.keyword] = _record_id(form)
        data = read(definition.schema, fields_of(definition.schema), form)
        return definition.service(session, data=data, **kwargs, **extra)

    return _submit(request, user, form, case_id, now, f"fact:{fact}", service)


@router.post("/cases/{case_id}/triggers/{trigger}", response_model=None)
def fire_trigger(
    request: Request,
    user: CheckedUser,
    form: Form,
    case_id: CaseId,
    trigger: TriggerName,
    now: Now,
) -> Response:
    """Fire a trigger through ``workflow.cases.fire_trigger``, as the API does."""
    fields = trigger_fields(cases.trigger_def(trigger))

    def service(session: Session, **kwargs: Any) -> Any:
        body = read(TransitionBody, fields, form)
        return cases.fire_trigger(session, trigger=trigger, body=body, **kwargs)

    return _submit(request, user, form, case_id, now, f"trigger:{trigger}", service)


@router.post("/reminders/{reminder_id}/acknowledge", response_model=None)
def acknowledge(
    request: Request, user: CheckedUser, form: Form, reminder_id: RecordId, now: Now
) -> Response:
    """Acknowledge a reminder, as the API does; back to the page the button was on."""
    engine = request.app.state.engine
    try:
        with write_transaction(engine) as session:
            reminder = worklist_service.acknowledge(
                session, reminder_id=reminder_id, actor=user.actor, now=now
            )
    except DomainError as exc:
        status = DOMAIN_STATUS[type(exc)]
        return render(request, "refused.html", status, user=user, message=exc.detail)
    if form.values.get("back") == "worklist":
        target = "/app/worklist"
    else:
        target = f"/app/cases/{reminder.case_id}?done=reminder:acknowledged"
    return RedirectResponse(target, status_code=303)


_DIGITS = re.compile(r"^[0-9]{1,19}$")


def _whole_number(value: str) -> int | None:
    """A form's id or version: ASCII digits a database integer holds (``str.isdigit`` takes
    "²" and 5,000 digits alike), else None."""
    if _DIGITS.match(value) and int(value) <= MAX_ID:
        return int(value)
    return None


def _record_id(form: FormInput) -> int:
    """The form's ``record_id``; 0, which no record has, if it is not one."""
    return _whole_number(form.values.get("record_id", "")) or 0


def _submit(
    request: Request,
    user: SignedIn,
    form: FormInput,
    case_id: int,
    now: Any,
    key: str,
    service: Callable[..., Any],
) -> Response:
    """Run ``service`` as one committed write; on a refusal, the page again with why."""
    version = form.values.get("version", "")
    engine = request.app.state.engine
    try:
        with write_transaction(engine) as session:
            service(
                session,
                case_id=case_id,
                actor=user.actor,
                now=now,
                expected_version=_whole_number(version),
            )
    except ValidationError as exc:
        failure = views.Failure(key, "Please correct:", errors=field_errors(exc))
        return _refused(request, user, case_id, now, failure, form, 422)
    except DomainError as exc:
        failure = views.Failure(key, exc.detail, errors=_domain_errors(exc))
        if isinstance(exc, TransitionBlocked):
            failure.unmet = [u.as_dict() for u in exc.unmet]
        return _refused(request, user, case_id, now, failure, form, DOMAIN_STATUS[type(exc)])
    anchor = key.replace(":", "-")
    return RedirectResponse(f"/app/cases/{case_id}?done={key}#{anchor}", status_code=303)


def _domain_errors(exc: DomainError) -> list[str]:
    errors = getattr(exc, "errors", [])
    return [f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors]


def _refused(
    request: Request,
    user: SignedIn,
    case_id: int,
    now: Any,
    failure: views.Failure,
    form: FormInput,
    status: int,
) -> HTMLResponse:
    failure.values, failure.lists = dict(form.values), dict(form.lists)
    return _case(request, user, case_id, now, failure, status)
