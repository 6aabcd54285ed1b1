"""Web page sessions: sign in with a token, a cookie for the browser, sign out.

The cookie carries a random secret; the database keeps only its hash, with
the user's token hash at sign-in and a CSRF token for the session's forms. A
session is valid while the user's token is still the one it signed in with,
the user is active, and it has not been idle for ``session_idle_minutes``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from api import auth
from models.settings import settings
from models.tables import User, WebSession
from workflow.definition import ADMIN, Actor

COOKIE = "carepath_session"
TOUCH_EVERY = timedelta(minutes=1)
"""A request refreshes ``last_seen_at`` at most this often: a page view is not a write."""


@dataclass(frozen=True)
class SignedIn:
    """The user behind a valid session, as the pages need them."""

    session_id: int
    actor: Actor
    name: str
    csrf_token: str
    last_seen_at: datetime


def idle_limit() -> timedelta:
    """How long a session may go without a request."""
    return timedelta(minutes=settings.session_idle_minutes)


def sign_in(session: Session, *, token: str, now: datetime) -> tuple[str, SignedIn] | None:
    """A new session for the token's user (its cookie secret and itself), or None.

    An admin makes no write to a case, and the pages are for the staff who do:
    an admin's token does not sign in here.
    """
    actor = auth.actor_for_token(session, token)
    if actor is None or actor.id is None or actor.role == ADMIN:
        return None
    user = session.get(User, actor.id)
    if user is None or not _is_active(user):
        return None
    secret = secrets.token_urlsafe(32)
    row = WebSession(
        secret_hash=auth.hash_token(secret),
        user_id=actor.id,
        token_hash=user.token_hash,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    _forget_idle(session, now)
    session.flush()
    return secret, _signed_in(row, user)


def _forget_idle(session: Session, now: datetime) -> None:
    """Delete the sessions that have ended by being idle: their cookies open nothing now."""
    cutoff = now - idle_limit()
    session.exec(delete(WebSession).where(col(WebSession.last_seen_at) <= cutoff))


def find(session: Session, *, secret: str, now: datetime) -> tuple[WebSession, SignedIn] | None:
    """The session whose cookie this is, if it is still valid (this only reads)."""
    found = session.exec(
        select(WebSession, User)
        .join(User, col(User.id) == WebSession.user_id)
        .where(WebSession.secret_hash == auth.hash_token(secret))
    ).first()
    if found is None:
        return None
    row, user = found
    if user.token_hash != row.token_hash or not _is_active(user):
        return None
    if now - row.last_seen_at >= idle_limit():
        return None
    return row, _signed_in(row, user)


def needs_touch(signed: SignedIn, now: datetime) -> bool:
    """Whether this request should refresh the session's ``last_seen_at``."""
    return now - signed.last_seen_at >= TOUCH_EVERY


def touch(session: Session, *, session_id: int, now: datetime) -> None:
    """Record a request on the session: its idle time starts again."""
    row = session.get(WebSession, session_id)
    if row is not None and row.last_seen_at < now:
        row.last_seen_at = now


def sign_out(session: Session, *, secret: str) -> None:
    """End the session whose cookie this is (nothing happens for an unknown one)."""
    session.exec(delete(WebSession).where(col(WebSession.secret_hash) == auth.hash_token(secret)))


def _is_active(user: User) -> bool:
    # User deactivation arrives with user management: until then every user is active.
    return bool(getattr(user, "active", True))


def _signed_in(row: WebSession, user: User) -> SignedIn:
    return SignedIn(
        session_id=row.id or 0,
        actor=auth.as_actor(user),
        name=user.name,
        csrf_token=row.csrf_token,
        last_seen_at=row.last_seen_at,
    )


def csrf_matches(signed: SignedIn, given: str | None) -> bool:
    """Whether a form's CSRF token is this session's."""
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
    return given is not None and secrets.compare_digest(given.encode(), signed.csrf_token.encode())
