"""Staff users: admins manage them; anyone reads their own (SPEC.md section 1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path

from api import auth
from api.deps import MAX_ID, AdminActor, CurrentActor, EngineDep, Now, SessionDep
from api.problems import problem_responses
from api.queries import Cursor, Limit, decode_cursor, encode_cursor
from api.routing import ThreadedRoute
from api.schemas import (
    LicensePublic,
    UserCreated,
    UserEventPage,
    UserEventPublic,
    UserPage,
    UserPublic,
)
from models.schemas import UserCreate, UserLicenses
from models.settings import settings
from models.tables import User
from workflow.unit import write_transaction

router = APIRouter(
    route_class=ThreadedRoute,
    prefix="/api/v1/users",
    tags=["users"],
    responses=problem_responses(401, 403, 422, 503),
)
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.")]


def public(user: User, now: datetime) -> UserPublic:
    """A user as the API shows it: never its token hash."""
    assert user.id is not None
    return UserPublic(
        id=user.id,
        name=user.name,
        role=user.role,
        licenses=[LicensePublic(**lic) for lic in user.licenses],
        license_states=auth.valid_states(user, settings.today(now)),
        active=user.active,
        created_at=user.created_at,
    )


@router.post("", status_code=201, responses=problem_responses(409))
def create_user(data: UserCreate, actor: AdminActor, engine: EngineDep, now: Now) -> UserCreated:
    """Create a user; the response carries its token, shown this once only."""
    with write_transaction(engine) as session:
        user, token = auth.create_user(session, data=data, now=now, actor_id=actor.id, via="api")
    return UserCreated(**public(user, now).model_dump(), token=token)


@router.get("")
def list_users(
    actor: AdminActor, session: SessionDep, now: Now, limit: Limit = 50, cursor: Cursor = None
) -> UserPage:
    """A page of users, oldest first (never their tokens)."""
    rows, last = auth.list_users(session, limit=limit, after_id=decode_cursor("users", cursor))
    return UserPage(items=[public(u, now) for u in rows], next_cursor=encode_cursor("users", last))


@router.get("/me")
def read_me(actor: CurrentActor, session: SessionDep, now: Now) -> UserPublic:
    """The caller's own user: any user may read it."""
    assert actor.id is not None
    return public(auth.get_user(session, actor.id), now)


@router.get("/{user_id}", responses=problem_responses(404))
def read_user(user_id: UserId, actor: AdminActor, session: SessionDep, now: Now) -> UserPublic:
    """One user."""
    return public(auth.get_user(session, user_id), now)


@router.patch("/{user_id}", responses=problem_responses(404))
def change_licenses(
    user_id: UserId, data: UserLicenses, actor: AdminActor, engine: EngineDep, now: Now
) -> UserPublic:
    """Replace a clinician's licences (a non-clinician may only have none)."""
    with write_transaction(engine) as session:
        user = auth.get_user(session, user_id)
        auth.set_licenses(
            session, user=user, licenses=data.licenses, now=now, actor_id=actor.id, via="api"
        )
    return public(user, now)


@router.post("/{user_id}/deactivate", responses=problem_responses(404, 409))
def deactivate_user(user_id: UserId, actor: AdminActor, engine: EngineDep, now: Now) -> UserPublic:
    """Refuse the user's token from the next request on; the last active admin stays."""
    with write_transaction(engine) as session:
        user = auth.deactivate(
            session, user=auth.get_user(session, user_id), now=now, actor_id=actor.id, via="api"
        )
    return public(user, now)


@router.post("/{user_id}/reactivate", responses=problem_responses(404))
def reactivate_user(user_id: UserId, actor: AdminActor, engine: EngineDep, now: Now) -> UserPublic:
    """Let the user's token work again."""
    with write_transaction(engine) as session:
        user = auth.reactivate(
            session, user=auth.get_user(session, user_id), now=now, actor_id=actor.id, via="api"
        )
    return public(user, now)


@router.post("/{user_id}/token", responses=problem_responses(404))
def rotate_token(user_id: UserId, actor: AdminActor, engine: EngineDep, now: Now) -> UserCreated:
    """A new token for the user, shown this once; the old one is refused from now on."""
    with write_transaction(engine) as session:
        user = auth.get_user(session, user_id)
        token = auth.rotate_token(session, user=user, now=now, actor_id=actor.id, via="api")
    return UserCreated(**public(user, now).model_dump(), token=token)


@router.get("/{user_id}/events", responses=problem_responses(404))
def user_events(
    user_id: UserId,
    actor: AdminActor,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> UserEventPage:
    """A page of the user's events, oldest first."""
    auth.get_user(session, user_id)
    after = decode_cursor("user_events", cursor)
    rows, last = auth.list_events(session, user_id, limit=limit, after_id=after)
    items = [UserEventPublic.model_validate(e) for e in rows]
    return UserEventPage(items=items, next_cursor=encode_cursor("user_events", last))
