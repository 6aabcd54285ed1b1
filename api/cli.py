"""The ``carepath`` command: serve the API, run the scheduler, manage users and the schema."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from api import auth, cli_users
from models.db import get_engine
from models.migrate import SchemaBehind
from models.settings import settings

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

    try:
        if settings.admin_token:  # a short token is refused before the database is touched
            auth.check_bootstrap_token(settings.admin_token)
        prepare_database()
        if settings.admin_token:
            auth.bootstrap_admin(get_engine(), settings.admin_token)
    except auth.BootstrapRefused as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return 1
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

    cli_users.register(commands)

    db = commands.add_parser("db", help="the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    p = db_commands.add_parser("upgrade", help="apply schema migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=db_upgrade)
    p = db_commands.add_parser("current", help="print the schema revision")
    p.set_defaults(func=db_current)
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
