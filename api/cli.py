"""The ``carepath`` command: serve the API, run the scheduler, manage users and the schema."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from api import audit_cli
from models.db import get_engine, session_scope
from models.migrate import SchemaBehind
from models.schemas import UserCreate
from models.types import utcnow
from workflow.definition import ROLES
from workflow.errors import Conflict

logger = logging.getLogger("carepath")


def prepare_database() -> None:
    """Make the configured database's schema ready (migrating the embedded SQLite default)."""
    from models.migrate import prepare_database as migrate_or_check

    # SQLite (the embedded default) is migrated here; a server database must
    # already be at head (``carepath db upgrade``), or this raises SchemaBehind.
    migrate_or_check(get_engine())


def _stop_cleanly(signum: int, _frame: object) -> None:
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the
    # signal; this handler turns that into a normal exit instead of a kill.
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    """Run the API (and, unless --no-scheduler, the reminder scheduler) until signalled."""
    import uvicorn

    from api.main import create_app

    prepare_database()
    app = create_app(get_engine(), run_scheduler=not args.no_scheduler)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_cleanly)
    logger.info("serving on http://%s:%s", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def scheduler(args: argparse.Namespace) -> int:
    """Run the reminder scheduler alone, until SIGTERM or SIGINT."""
    from schedules.runner import run_scheduler

    prepare_database()
    run_scheduler(get_engine())
    return 0


def users_add(args: argparse.Namespace) -> int:
    """Create a user and print its token, alone on stdout."""
    from api.auth import create_user

    try:
        data = UserCreate(name=args.name, role=args.role, license_states=args.license_state)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(map(str, error["loc"])) or "user"
            message = error["msg"].removeprefix("Value error, ")
            print(f"carepath: {where}: {message}", file=sys.stderr)
        return 2
    prepare_database()
    try:
        with session_scope(get_engine()) as session:
            _, token = create_user(session, data=data, now=utcnow())
    except Conflict as exc:
        print(f"carepath: {exc.detail}", file=sys.stderr)
        return 1
    print(token)
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    """Apply every schema migration to the configured database."""
    from models.migrate import upgrade

    upgrade(get_engine(), args.revision)
    return 0


def db_current(args: argparse.Namespace) -> int:
    """Print the schema revision of the configured database."""
    from models.migrate import current_revision

    print(current_revision(get_engine()) or "none")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``carepath`` argument parser."""
    parser = argparse.ArgumentParser(prog="carepath", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the API and the reminder scheduler")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-scheduler", action="store_true", help="serve the API alone")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=serve)

    p = commands.add_parser("scheduler", help="run the reminder scheduler alone")
    p.set_defaults(func=scheduler)

    users = commands.add_parser("users", help="manage staff users")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    p = users_commands.add_parser("add", help="create a user and print its token")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--license-state", action="append", default=[], metavar="XX")
    p.set_defaults(func=users_add)

    db = commands.add_parser("db", help="the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    p = db_commands.add_parser("upgrade", help="apply schema migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=db_upgrade)
    p = db_commands.add_parser("current", help="print the schema revision")
    p.set_defaults(func=db_current)
    audit_cli.add_db_grant_parser(db_commands)
    audit_cli.add_audit_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carepath`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Library chatter (one line per state change, per scheduler run) drowns what matters.
    for name in ("alembic.runtime.plugins", "transitions", "apscheduler.executors"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except SchemaBehind as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
