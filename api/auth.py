"""Staff users and their bearer tokens.

A token is random (``secrets.token_urlsafe``), shown once when it is made and
stored only as its SHA-256 hash: a copy of the database holds no usable token.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.db import session_scope
from models.schemas import UserCreate
from models.tables import User
from workflow.definition import ADMIN, Actor
from workflow.errors import Conflict

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32
BOOTSTRAP_ADMIN = "admin"


def new_token() -> str:
    """A fresh random bearer token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a token is stored as."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def as_actor(user: User) -> Actor:
    """The workflow's view of a user."""
    return Actor(id=user.id, role=user.role, license_states=tuple(user.license_states))


def actor_for_token(session: Session, token: str) -> Actor | None:
    """The actor whose token this is, or None."""
    user = session.exec(select(User).where(User.token_hash == hash_token(token))).first()
    return None if user is None else as_actor(user)


def create_user(session: Session, *, data: UserCreate, now: datetime) -> tuple[User, str]:
    """Store a new user; returns it with its token, which is never shown again."""
    if session.exec(select(User.id).where(User.name == data.name)).first() is not None:
        raise Conflict(f"A user named {data.name} already exists.")
    token = new_token()
    user = User(
        name=data.name,
        role=data.role,
        license_states=list(data.license_states),
        token_hash=hash_token(token),
        created_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the name first
        raise Conflict(f"A user named {data.name} already exists.") from exc
    logger.info("user %s created with role %s", user.id, user.role)
    return user, token


def list_users(session: Session) -> list[User]:
    """Every user, oldest first."""
    return list(session.exec(select(User).order_by(col(User.id))).all())


def bootstrap_admin(engine: Engine, token: str) -> None:
    """Make sure a user ``admin`` with this token exists: create it or re-key it."""
    for attempt in range(2):
        try:
            with session_scope(engine) as session:
                _upsert_admin(session, token)
            return
        except IntegrityError:  # another process created it at the same moment
            if attempt:
                raise


def _upsert_admin(session: Session, token: str) -> None:
    user = session.exec(select(User).where(User.name == BOOTSTRAP_ADMIN)).first()
    if user is None:
        user = User(name=BOOTSTRAP_ADMIN, role=ADMIN, token_hash=hash_token(token))
        session.add(user)
        logger.info("bootstrap admin created")
        return
    if user.token_hash != hash_token(token) or user.role != ADMIN:
        user.token_hash, user.role = hash_token(token), ADMIN
        logger.info("bootstrap admin re-keyed")
