"""``carepath users add | list | deactivate | reactivate | rotate | licenses``.

The same changes an admin makes over the API, each a user event (actor none,
``via`` ``cli``). Tokens are printed only where the API shows one (``add``,
``rotate``), alone on stdout so that a script can capture them; errors go to
stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api import auth
from models.db import get_engine, session_scope
from models.migrate import prepare_database
from models.schemas import LicenseIn, UserCreate, UserLicenses
from models.settings import settings
from models.tables import User
from models.types import utcnow
from workflow.definition import ROLES
from workflow.errors import DomainError
from workflow.unit import write_transaction


def database() -> Engine:
    """The configured database, its schema ready."""
    engine = get_engine()
    prepare_database(engine)
    return engine


def _license(value: str) -> dict[str, Any]:
    """``CA`` (no expiry) or ``CA:2027-06-30``, as a licence body."""
    state, _, expires = value.partition(":")
    return {"state": state, "expires_on": expires or None}


def _refuse_invalid(exc: ValidationError) -> int:
    for error in exc.errors():
        where = ".".join(map(str, error["loc"])) or "user"
        message = error["msg"].removeprefix("Value error, ")
        print(f"carepath: {where}: {message}", file=sys.stderr)
    return 2


def _describe(user: User, today: date) -> str:
    """One line per user: id, name, role, active or not, licences (never a token)."""
    licenses = ",".join(
        lic["state"] + (f":{lic['expires_on']}" if lic["expires_on"] else "")
        for lic in user.licenses
    )
    valid = ",".join(auth.valid_states(user, today))
    status = "active" if user.active else "deactivated"
    return "\t".join(
        [str(user.id), user.name, user.role, status, licenses or "-", f"valid:{valid or '-'}"]
    )


def _change(work: Callable[[Session], str]) -> int:
    """Run one change in a transaction; print what it returns, or the refusal on stderr."""
    try:
        with write_transaction(database()) as session:
            out = work(session)
    except DomainError as exc:
        print(f"carepath: {exc.detail}", file=sys.stderr)
        return 1
    print(out)
    return 0


def add(args: argparse.Namespace) -> int:
    """Create a user and print its token, alone on stdout."""
    try:
        licenses = [LicenseIn(**_license(v)) for v in args.license]
        data = UserCreate(
            name=args.name, role=args.role, licenses=licenses, license_states=args.license_state
        )
    except ValidationError as exc:
        return _refuse_invalid(exc)
    return _change(lambda s: auth.create_user(s, data=data, now=utcnow(), via="cli")[1])


def list_all(args: argparse.Namespace) -> int:
    """Print every user, one line each, oldest first."""
    today = settings.today(utcnow())
    with session_scope(database()) as session:
        after: int | None = None
        while True:
            users, after = auth.list_users(session, after_id=after)
            for user in users:
                print(_describe(user, today))
            if after is None:
                return 0


def deactivate(args: argparse.Namespace) -> int:
    """Refuse a user's token from now on."""

    def work(session: Session) -> str:
        user = auth.deactivate(session, user=auth.find_user(session, args.name), now=utcnow())
        return f"{user.name} deactivated"

    return _change(work)


def reactivate(args: argparse.Namespace) -> int:
    """Let a deactivated user's token work again."""

    def work(session: Session) -> str:
        user = auth.reactivate(session, user=auth.find_user(session, args.name), now=utcnow())
        return f"{user.name} reactivated"

    return _change(work)


def rotate(args: argparse.Namespace) -> int:
    """Give a user a new token and print it, alone on stdout."""
    return _change(lambda s: auth.rotate_token(s, user=auth.find_user(s, args.name), now=utcnow()))


def licenses(args: argparse.Namespace) -> int:
    """Replace a clinician's licences (none given: remove them all)."""
    try:
        given = [_license(v) for v in args.license]
        given += [{"state": s, "expires_on": None} for s in args.license_state]
        data = UserLicenses.model_validate({"licenses": given})
    except ValidationError as exc:
        return _refuse_invalid(exc)

    def work(session: Session) -> str:
        user = auth.find_user(session, args.name)
        auth.set_licenses(session, user=user, licenses=data.licenses, now=utcnow())
        return _describe(user, settings.today(utcnow()))

    return _change(work)


def _licence_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--license-state", action="append", default=[], metavar="XX", help="a licence, no expiry"
    )
    parser.add_argument(
        "--license",
        action="append",
        default=[],
        metavar="XX:YYYY-MM-DD",
        help="a licence valid through a date",
    )


def register(commands: Any) -> None:
    """Add the ``users`` command and its verbs to the ``carepath`` parser."""
    users = commands.add_parser("users", help="manage staff users")
    verbs = users.add_subparsers(dest="users_command", required=True)
    p = verbs.add_parser("add", help="create a user and print its token")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    _licence_options(p)
    p.set_defaults(func=add)
    p = verbs.add_parser("list", help="every user, one a line (never tokens)")
    p.set_defaults(func=list_all)
    for verb, func, what in (
        ("deactivate", deactivate, "refuse a user's token from now on"),
        ("reactivate", reactivate, "let a deactivated user's token work again"),
        ("rotate", rotate, "give a user a new token and print it"),
    ):
        p = verbs.add_parser(verb, help=what)
        p.add_argument("name")
        p.set_defaults(func=func)
    p = verbs.add_parser("licenses", help="replace a clinician's licences")
    p.add_argument("name")
    _licence_options(p)
    p.set_defaults(func=licenses)
