"""``carepath audit verify`` and ``carepath db grant``: commands kept apart from ``api.cli``.

``api.cli.build_parser`` registers them with one call each.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlmodel import Session

from models.db import get_engine, read_only


def audit_verify(args: argparse.Namespace) -> int:
    """Verify every case's hash chain; one line per broken case, exit 1 if any is broken."""
    from workflow.audit_chain import verify_all

    cases = events = broken = 0
    with Session(read_only(get_engine())) as session:
        for verdict in verify_all(session):
            cases += 1
            events += verdict.events
            if not verdict.ok:
                broken += 1
                print(
                    f"case {verdict.case_id}: chain broken at event {verdict.first_bad_event_id}",
                    file=sys.stderr,
                )
    print(f"{cases} cases, {events} events checked, {broken} broken")
    return 1 if broken else 0


def db_grant(args: argparse.Namespace) -> int:
    """Grant a PostgreSQL role what the service needs: INSERT and SELECT only on the audit table."""
    from models.migrate import grant_service_role

    try:
        grant_service_role(get_engine(), args.role)
    except ValueError as exc:
        print(f"carepath: {exc}", file=sys.stderr)
        return 2
    return 0


def add_audit_parser(commands: Any) -> None:
    """Register ``carepath audit verify`` on the top-level subparsers."""
    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    p = audit_commands.add_parser("verify", help="verify every case's hash chain")
    p.set_defaults(func=audit_verify)


def add_db_grant_parser(db_commands: Any) -> None:
    """Register ``carepath db grant ROLE`` on the ``db`` subparsers."""
    p = db_commands.add_parser(
        "grant", help="grant the service's PostgreSQL role its privileges (run as the owner)"
    )
    p.add_argument("role", help="the role the service connects as")
    p.set_defaults(func=db_grant)
