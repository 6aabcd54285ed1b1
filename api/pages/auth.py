"""The pages' side of signing in: the session cookie, and the CSRF check of every form."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlmodel import Session

from api.deps import Now
from api.pages import sessions
from api.pages.forms import FormInput
from api.pages.sessions import COOKIE, SignedIn
from workflow.unit import write_transaction

LOGIN_CSRF_COOKIE = "carepath_login_csrf"
"""Before sign-in there is no session: the sign-in form's token is checked against this."""


class SignInRequired(Exception):
    """No valid session: the page sends the browser to the sign-in page."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


async def form_input(request: Request) -> FormInput:
    """The submitted form, read once (its lists kept for multi-value inputs)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
    return FormInput(values, lists)


Form = Annotated[FormInput, Depends(form_input)]


def signed_in(request: Request, now: Now) -> SignedIn:
    """The signed-in user of this request, from its session cookie; else sign in first."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise SignInRequired()
    with Session(request.app.state.read_engine) as session:
        found = sessions.find(session, secret=secret, now=now)
    if found is None:
        raise SignInRequired()
    _, signed = found
    if sessions.needs_touch(signed, now):
        engine = request.app.state.engine
        with write_transaction(engine) as session:
            sessions.touch(session, session_id=signed.session_id, now=now)
    return signed


CurrentUser = Annotated[SignedIn, Depends(signed_in)]


def checked(signed: CurrentUser, form: Form) -> SignedIn:
    """The signed-in user, if the form carries their session's CSRF token."""
    if not sessions.csrf_matches(signed, form.values.get("csrf_token")):
        raise CsrfRefused()
    return signed


CheckedUser = Annotated[SignedIn, Depends(checked)]


def set_session_cookie(request: Request, response: Response, secret: str) -> None:
    """Give the browser its session cookie: script cannot read it, other sites cannot send it."""
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/app",
    )


def login_token(request: Request) -> str:
    """The sign-in form's CSRF token: the browser's, or a new one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    """Set the sign-in form's token as a cookie too, to compare with on submit."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/app/login",
    )


def login_token_matches(request: Request, form: FormInput) -> bool:
    """Whether the sign-in form's token is the one its cookie carries."""
    cookie, given = request.cookies.get(LOGIN_CSRF_COOKIE), form.values.get("csrf_token")
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
    return bool(cookie and given) and secrets.compare_digest(
        str(cookie).encode(), str(given).encode()
    )
