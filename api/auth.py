"""Staff users, their bearer tokens and their administration (SPEC.md section 1).

A token is random (``secrets.token_urlsafe``), shown once when it is made and
stored only as its SHA-256 hash: a copy of the database holds no usable token.
Every request looks its token up in the database (one indexed query,
``TokenLookup``) and nothing caches the answer, so a deactivation or a new
token takes effect on the next request, on every API process.

Every change to a user appends a ``UserEvent`` in the same transaction; the
database refuses to update or delete one.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import date, datetime
from typing import Any

import anyio.to_thread
from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, select

from models.schemas import LicenseIn, UserCreate
from models.tables import User, UserEvent, name_key
from models.types import utcnow
from workflow.definition import ADMIN, CLINICIAN, Actor, License
from workflow.errors import Conflict, NotFound, ValidationFailed
from workflow.unit import write_transaction

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32
BOOTSTRAP_ADMIN = "admin"
BOOTSTRAP_TOKEN_MIN = 32
"""The shortest ``CAREPATH_ADMIN_TOKEN`` accepted: a short one can be guessed."""


class BootstrapRefused(RuntimeError):
    """``CAREPATH_ADMIN_TOKEN`` cannot be honoured; the message is one line for the operator."""


def new_token() -> str:
    """A fresh random bearer token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a token is stored as."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- reading -------------------------------------------------------------------


def licenses_of(user: User) -> tuple[License, ...]:
    """A user's stored licences, as the workflow sees them."""
    return _licenses(user.licenses)


def _licenses(stored: list[dict[str, Any]]) -> tuple[License, ...]:
    return tuple(
        License(lic["state"], date.fromisoformat(lic["expires_on"]) if lic["expires_on"] else None)
        for lic in stored
    )


def valid_states(user: User, today: date) -> list[str]:
    """The states in which the user holds a licence valid ``today``."""
    return sorted({lic.state for lic in licenses_of(user) if lic.valid_on(today)})


def as_actor(user: User) -> Actor:
    """The workflow's view of a user."""
    return Actor(id=user.id, role=user.role, licenses=licenses_of(user))


TOKEN_LOOKUP = select(col(User.id), col(User.role), col(User.licenses)).where(
    col(User.token_hash) == bindparam("token_hash"), col(User.active)
)
"""Built once: every request runs it, and building it cost more than running it."""


def actor_for_token(session: Session, token: str) -> Actor | None:
    """The active user whose token this is, or None (unknown or deactivated), as ``session``
    sees it (its pending changes flushed first)."""
    row = session.exec(TOKEN_LOOKUP, params={"token_hash": hash_token(token)}).first()
    return None if row is None else Actor(id=row[0], role=row[1], licenses=_licenses(row[2]))


class TokenLookup:
    """``TOKEN_LOOKUP`` for every request's bearer token, on a pooled DBAPI connection.

    One indexed query per request, no cache: a deactivation or a new token is
    seen by every process from the next request on. The statement is compiled
    once for the engine's dialect and run on the driver's cursor, without an
    ORM session or SQLAlchemy's per-statement machinery (events, ``BEGIN``,
    result objects), which cost ten times the query itself. A driver error is
    raised as SQLAlchemy's, parameters hidden, so ``api.problems`` maps it as
    any other database error (a locked database is a 503).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self._compiled = TOKEN_LOOKUP.compile(dialect=dialect)
        self._sql = self._compiled.string
        self._error = dialect.loaded_dbapi.Error
        licenses_type = TOKEN_LOOKUP.selected_columns[2].type.dialect_impl(dialect)
        self._load_licenses = licenses_type.result_processor(dialect, None)

    async def actor_async(self, token: str) -> Actor | None:
        """``actor``, from the event loop: run there on SQLite, in the thread pool elsewhere.

        On SQLite in WAL mode the lookup reads a page of a small, hot index and
        waits for no writer (``/health`` reads there too): about 13 us, where
        a trip to a worker thread and back costs five times that and waits for
        a free thread while writes fill the pool. Elsewhere it is a round trip
        to the server, which must not hold up the event loop.
        """
        if self.engine.dialect.name == "sqlite":
            return self.actor(token)
        return await anyio.to_thread.run_sync(self.actor, token)

    def actor(self, token: str) -> Actor | None:
        """The active user whose token this is, or None (unknown or deactivated)."""
        params = self._compiled.construct_params({"token_hash": hash_token(token)})
        order = self._compiled.positiontup
        args: Any = tuple(params[name] for name in order) if order is not None else params
        connection = self.engine.raw_connection()  # back to the pool, rolled back, on close
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, args)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except self._error as exc:
            raise DBAPIError.instance(
                self._sql,
                args,
                exc,
                self._error,
                hide_parameters=self.engine.hide_parameters,
                dialect=self.engine.dialect,
            ) from exc
        finally:
            connection.close()
        if row is None:
            return None
        user_id, role, stored = row
        if self._load_licenses is not None:
            stored = self._load_licenses(stored)
        return Actor(id=user_id, role=role, licenses=_licenses(stored))


def get_user(session: Session, user_id: int) -> User:
    """The user with this id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"There is no user {user_id}.")
    return user


def find_user(session: Session, name: str) -> User:
    """The user with this name, in any letter case, or NotFound."""
    user = session.exec(select(User).where(User.name_key == name_key(name))).first()
    if user is None:
        raise NotFound(f"There is no user named {name}.")
    return user


def list_users(
    session: Session, *, limit: int = 200, after_id: int | None = None
) -> tuple[list[User], int | None]:
    """A page of users, oldest first, and the id the next page starts after (None: done)."""
    query = select(User).order_by(col(User.id)).limit(limit + 1)
    if after_id is not None:
        query = query.where(col(User.id) > after_id)
    return _page(list(session.exec(query).all()), limit)


def list_events(
    session: Session, user_id: int, *, limit: int = 200, after_id: int | None = None
) -> tuple[list[UserEvent], int | None]:
    """A page of a user's events, oldest first, and where the next page starts."""
    query = select(UserEvent).where(UserEvent.user_id == user_id)
    if after_id is not None:
        query = query.where(col(UserEvent.id) > after_id)
    query = query.order_by(col(UserEvent.id)).limit(limit + 1)
    return _page(list(session.exec(query).all()), limit)


def _page(rows: list[Any], limit: int) -> tuple[list[Any], int | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


# -- changing ----------------------------------------------------------------
# Each change takes who made it: ``actor_id`` (an admin, or None) and ``via``
# (``api``, ``cli`` or ``bootstrap``), both kept in the event it appends.


def _stored(licenses: list[LicenseIn]) -> list[dict[str, Any]]:
    return [
        {"state": lic.state, "expires_on": lic.expires_on and lic.expires_on.isoformat()}
        for lic in licenses
    ]


def _event(
    session: Session, user: User, kind: str, by: tuple[int | None, str], now: datetime, **data: Any
) -> None:
    assert user.id is not None
    actor_id, via = by
    event = UserEvent(
        user_id=user.id, at=now, actor_id=actor_id, kind=kind, data={**data, "via": via}
    )
    session.add(event)
    logger.info("user %s: %s via %s", user.id, kind, via)


def create_user(
    session: Session,
    *,
    data: UserCreate,
    now: datetime,
    actor_id: int | None = None,
    via: str = "cli",
    token: str | None = None,
) -> tuple[User, str]:
    """Store a new user; returns it with its token, which is never shown again."""
    conflict = Conflict(f"A user named {data.name} already exists (names ignore letter case).")
    if session.exec(select(User.id).where(User.name_key == name_key(data.name))).first():
        raise conflict
    token = token or new_token()
    user = User(
        name=data.name,
        name_key=name_key(data.name),
        role=data.role,
        licenses=_stored(data.licenses),
        token_hash=hash_token(token),
        created_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the name first
        raise conflict from exc
    by = (actor_id, via)
    _event(
        session, user, "created", by, now, name=user.name, role=user.role, licenses=user.licenses
    )
    return user, token


def set_licenses(
    session: Session,
    *,
    user: User,
    licenses: list[LicenseIn],
    now: datetime,
    actor_id: int | None = None,
    via: str = "cli",
) -> User:
    """Replace a clinician's licences."""
    if licenses and user.role != CLINICIAN:
        raise ValidationFailed.field(("licenses",), f"A {user.role} holds no licences.")
    before, user.licenses = user.licenses, _stored(licenses)
    _event(
        session, user, "licenses_changed", (actor_id, via), now, before=before, after=user.licenses
    )
    return user


def deactivate(
    session: Session, *, user: User, now: datetime, actor_id: int | None = None, via: str = "cli"
) -> User:
    """Refuse the user's token from the next request on; never the last active admin."""
    if not user.active:
        return user
    if user.role == ADMIN:
        # Lock every active admin row: two admins deactivating each other at
        # once must not leave nobody to manage users.
        query = select(User.id).where(User.role == ADMIN, col(User.active)).with_for_update()
        if list(session.exec(query).all()) == [user.id]:
            raise Conflict(f"{user.name} is the last active admin and cannot be deactivated.")
    user.active = False
    _event(session, user, "deactivated", (actor_id, via), now)
    return user


def reactivate(
    session: Session, *, user: User, now: datetime, actor_id: int | None = None, via: str = "cli"
) -> User:
    """Let the user's token work again."""
    if not user.active:
        user.active = True
        _event(session, user, "reactivated", (actor_id, via), now)
    return user


def rotate_token(
    session: Session, *, user: User, now: datetime, actor_id: int | None = None, via: str = "cli"
) -> str:
    """Give the user a new token, shown once; the old one is refused from now on."""
    token = new_token()
    user.token_hash = hash_token(token)
    _event(session, user, "token_rotated", (actor_id, via), now)
    return token


# -- the bootstrap admin -------------------------------------------------------


def check_bootstrap_token(token: str) -> None:
    """Refuse a ``CAREPATH_ADMIN_TOKEN`` that is too short to be safe."""
    if len(token) < BOOTSTRAP_TOKEN_MIN:
        raise BootstrapRefused(
            f"CAREPATH_ADMIN_TOKEN is {len(token)} characters long; "
            f"it must be at least {BOOTSTRAP_TOKEN_MIN}."
        )


def bootstrap_admin(engine: Engine, token: str) -> None:
    """Make sure a user ``admin`` with this token exists and is active."""
    check_bootstrap_token(token)
    for attempt in range(2):
        try:
            with write_transaction(engine) as session:
                _upsert_admin(session, token, utcnow())
            return
        except (IntegrityError, Conflict):  # another process created it at the same moment
            if attempt:
                raise


def _upsert_admin(session: Session, token: str, now: datetime) -> None:
    user = session.exec(select(User).where(User.name_key == BOOTSTRAP_ADMIN)).first()
    if user is None:
        data = UserCreate(name=BOOTSTRAP_ADMIN, role="admin")
        create_user(session, data=data, now=now, via="bootstrap", token=token)
        return
    if user.role != ADMIN:
        raise BootstrapRefused(
            f"A user named {user.name!r} exists with the role {user.role}, not admin: "
            "the bootstrap admin needs that name (unset CAREPATH_ADMIN_TOKEN to start without it)."
        )
    if user.token_hash != hash_token(token):
        user.token_hash = hash_token(token)
        _event(session, user, "token_rotated", (None, "bootstrap"), now)
    reactivate(session, user=user, now=now, via="bootstrap")
