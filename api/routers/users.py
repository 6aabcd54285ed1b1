"""Staff users: admins create them and list them."""

from __future__ import annotations

from fastapi import APIRouter

from api import auth
from api.deps import AdminActor, Now, SessionDep
from api.problems import problem_responses
from api.schemas import UserCreated, UserPublic
from models.schemas import UserCreate

router = APIRouter(
    prefix="/api/v1/users", tags=["users"], responses=problem_responses(401, 403, 422, 503)
)


@router.post("", status_code=201, responses=problem_responses(409))
def create_user(data: UserCreate, actor: AdminActor, session: SessionDep, now: Now) -> UserCreated:
    """Create a user; the response carries its token, shown this once only."""
    user, token = auth.create_user(session, data=data, now=now)
    session.commit()
    return UserCreated(**UserPublic.model_validate(user).model_dump(), token=token)


@router.get("")
def list_users(actor: AdminActor, session: SessionDep) -> list[UserPublic]:
    """Every user, oldest first (never their tokens)."""
    return [UserPublic.model_validate(u) for u in auth.list_users(session)]
