"""The ``carepath`` command: serve the API, run the scheduler, manage users and the schema.

Adding a command: write ``register(commands)`` that calls ``commands.add_parser(...)``
and ``set_defaults(func=...)``, and list it in ``REGISTRARS``. A command's
``func(args) -> int`` runs after the settings were read and checked and the
logs configured; it gets its database from ``open_database()``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from api import audit_cli, auth, cli_users, cpu
from api.logs import configure_logging
from models.db import DatabaseUnusable, check_database, describe_url, get_engine
from models.migrate import SchemaBehind
from models.settings import Settings, SettingsError, relaxed_settings, settings

logger = logging.getLogger("carepath")

Commands = Any  # argparse's private _SubParsersAction
USAGE_ERROR = 2


def open_database(*, must_exist: bool = False) -> Engine:
    """The configured database, checked: it answers, and SQLite can be written."""
    engine = get_engine()
    check_database(engine, must_exist=must_exist)
    return engine


def prepare_database() -> None:
    """Make the configured database's schema ready (migrating the embedded SQLite default)."""
    from models.migrate import prepare_database as migrate_or_check

    # SQLite (the embedded default) is migrated here; a server database must
    # already be at head (``carepath db upgrade``), or this raises SchemaBehind.
    migrate_or_check(open_database())


def _stop_cleanly(signum: int, _frame: object) -> None:
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the
    # signal; this handler turns that into a normal exit instead of a kill.
    raise SystemExit(0)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so that a busy port fails before anything is served."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def announce(engine: Engine, scheduler: str, current: Settings = settings) -> None:
    """The start-up line: the database (without a password), the scheduler, relaxed settings."""
    relaxed = relaxed_settings(current)
    database = describe_url(engine.url.render_as_string(hide_password=False))
    below = ", ".join(f"{name}={value:g}" for name, value in relaxed.items())
    logger.info(
        "database %s; scheduler %s%s",
        database,
        scheduler,
        f"; below the clinical default: {below}" if below else "",
        extra={"database": database, "scheduler": scheduler, "relaxed_settings": relaxed},
    )


def serve(args: argparse.Namespace) -> int:
    """Run the API (and, unless --no-scheduler, the reminder scheduler) until signalled."""
    import uvicorn

    from api.main import create_app

    source = "--cpu" if args.cpu is not None else "CAREPATH_SERVE_CPU"
    try:  # first, before any thread starts: a new thread runs where its starter may
        kept_on = cpu.keep_on_one(
            args.cpu if args.cpu is not None else cpu.parse(settings.serve_cpu)
        )
    except ValueError as exc:
        print(f"carepath: {source}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        if settings.admin_token:  # a short token is refused before the database is touched
            auth.check_bootstrap_token(settings.admin_token)
        prepare_database()
        if settings.admin_token:
            auth.bootstrap_admin(get_engine(), settings.admin_token)
    except auth.BootstrapRefused as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return 1
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(
            f"carepath: --port: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return USAGE_ERROR
    engine = get_engine()
    app = create_app(engine, run_scheduler=not args.no_scheduler)
    announce(engine, "off (--no-scheduler)" if args.no_scheduler else "in this process")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_cleanly)
    logging.getLogger().setLevel(args.log_level.upper())
    logger.info("serving on http://%s:%s", args.host, args.port)
    where = f"kept on CPU {kept_on}" if kept_on is not None else "not kept on one CPU"
    logger.info("%s (CAREPATH_SERVE_CPU, --cpu)", where, extra={"cpu": kept_on})
    config = uvicorn.Config(app, log_config=None, access_log=False, log_level=args.log_level)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def scheduler(args: argparse.Namespace) -> int:
    """Run the reminder scheduler alone, until SIGTERM or SIGINT."""
    from schedules.runner import run_scheduler

    prepare_database()
    announce(get_engine(), "alone (no API)")
    run_scheduler(get_engine())
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    """Apply every schema migration to the configured database."""
    from models.migrate import upgrade

    upgrade(open_database(), args.revision)
    return 0


def db_current(args: argparse.Namespace) -> int:
    """Print the schema revision of the configured database (which must exist)."""
    from models.migrate import current_revision

    print(current_revision(open_database(must_exist=True)) or "none")
    return 0


def _cpu_choice(text: str) -> str | int:
    """``--cpu``: ``auto``, ``off`` or a CPU number."""
    try:
        return cpu.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _register_serve(commands: Commands) -> None:
    p = commands.add_parser("serve", help="run the API and the reminder scheduler")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-scheduler", action="store_true", help="serve the API alone")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--cpu",
        type=_cpu_choice,
        default=None,
        help="keep the server on one CPU: auto (default, CAREPATH_SERVE_CPU), a number, or off",
    )
    p.set_defaults(func=serve)


def _register_scheduler(commands: Commands) -> None:
    p = commands.add_parser("scheduler", help="run the reminder scheduler alone")
    p.set_defaults(func=scheduler)


def _register_db(commands: Commands) -> None:
    db = commands.add_parser("db", help="the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    p = db_commands.add_parser("upgrade", help="apply schema migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=db_upgrade)
    p = db_commands.add_parser("current", help="print the schema revision")
    p.set_defaults(func=db_current)
    audit_cli.add_db_grant_parser(db_commands)


REGISTRARS: tuple[Callable[[Commands], None], ...] = (
    _register_serve,
    _register_scheduler,
    cli_users.register,
    _register_db,
    audit_cli.add_audit_parser,
)
"""Each adds its sub-command(s) to the parser; nothing here reads a setting."""


def build_parser() -> argparse.ArgumentParser:
    """The ``carepath`` argument parser."""
    parser = argparse.ArgumentParser(prog="carepath", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRARS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carepath`` command: one line and exit code 2 for a bad setting."""
    args = build_parser().parse_args(argv)  # --help exits here, before any setting is read
    configure_logging()
    try:
        _ = settings.database_url  # read and check every setting, once
        return int(args.func(args))
    except SettingsError as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except DatabaseUnusable as exc:
        print(f"carepath: CAREPATH_DATABASE_URL: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except SchemaBehind as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
