"""The ``carepath`` command in-process: ``users`` verbs print tokens only where the API would."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api import cli, cli_users
from api.main import create_app
from models.db import session_scope
from models.tables import UserEvent


@pytest.fixture
def on_test_database(engine, monkeypatch):
    """Point the CLI at this test's (already prepared) database."""
    monkeypatch.setattr(cli, "get_engine", lambda: engine)
    monkeypatch.setattr(cli, "prepare_database", lambda: None)
    monkeypatch.setattr(cli_users, "get_engine", lambda: engine)
    monkeypatch.setattr(cli_users, "prepare_database", lambda engine: None)
    return engine


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``carepath *argv`` (stderr without its JSON log lines)."""
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    said = [line for line in captured.err.splitlines(keepends=True) if not _is_log(line)]
    return status, captured.out, "".join(said)


def _is_log(line: str) -> bool:
    """A JSON log line of ``api.logs``."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and {"time", "level", "message"} <= set(record)


def status_of(engine, token: str, path: str = "/api/v1/users/me") -> int:
    with TestClient(create_app(engine)) as client:
        return client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code


def test_users_add_prints_only_the_token(on_test_database, capsys):
    argv = ["users", "add", "nina", "--role", "clinician", "--license-state", "CA"]
    status, out, _ = run(capsys, *argv, "--license", "NY:2027-06-30")
    assert status == 0
    token = out.strip()
    assert out == token + "\n" and len(token) >= 40 and " " not in token
    assert status_of(on_test_database, token, "/api/v1/cases") == 200


def test_users_add_refuses_bad_input_on_stderr(on_test_database, capsys):
    status, out, err = run(
        capsys, "users", "add", "nina", "--role", "clinician", "--license-state", "ZZ"
    )
    assert (status, out) == (2, "") and "'ZZ' is not a US state code" in err
    status, out, err = run(
        capsys, "users", "add", "nina", "--role", "coordinator", "--license-state", "CA"
    )
    assert (status, out) == (2, "") and "only a clinician holds licences" in err
    status, out, err = run(
        capsys, "users", "add", "nina", "--role", "clinician", "--license", "CA:soon"
    )
    assert (status, out) == (2, "") and "expires_on" in err
    assert run(capsys, "users", "add", "nina", "--role", "coordinator")[0] == 0
    status, out, err = run(capsys, "users", "add", "NINA", "--role", "coordinator")
    assert (status, out) == (1, "") and "already exists" in err
    with pytest.raises(SystemExit):
        cli.main(["users", "add", "nina", "--role", "nurse"])


def test_users_list_shows_every_user_and_never_a_token(on_test_database, capsys):
    _, token, _ = run(
        capsys,
        "users",
        "add",
        "dr-lee",
        "--role",
        "clinician",
        "--license",
        "CA:2020-01-01",
        "--license-state",
        "NY",
    )
    run(capsys, "users", "add", "sam", "--role", "coordinator")
    run(capsys, "users", "deactivate", "SAM")
    status, out, _ = run(capsys, "users", "list")
    assert status == 0 and token.strip() not in out
    assert out.splitlines() == [
        "1\tdr-lee\tclinician\tactive\tCA:2020-01-01,NY\tvalid:NY",
        "2\tsam\tcoordinator\tdeactivated\t-\tvalid:-",
    ]


def test_deactivate_reactivate_and_rotate_take_effect_on_the_next_request(on_test_database, capsys):
    engine = on_test_database
    token = run(capsys, "users", "add", "sam", "--role", "coordinator")[1].strip()
    assert run(capsys, "users", "deactivate", "sam") == (0, "sam deactivated\n", "")
    assert status_of(engine, token) == 401
    assert run(capsys, "users", "reactivate", "Sam") == (0, "sam reactivated\n", "")
    assert status_of(engine, token) == 200
    status, out, _ = run(capsys, "users", "rotate", "sam")
    new = out.strip()
    assert status == 0 and out == new + "\n" and new != token
    assert (status_of(engine, token), status_of(engine, new)) == (401, 200)
    with session_scope(engine) as session:
        events = session.exec(select(UserEvent).order_by(UserEvent.id)).all()
        kinds = [(e.kind, e.actor_id, e.data["via"]) for e in events]
    assert kinds == [
        ("created", None, "cli"),
        ("deactivated", None, "cli"),
        ("reactivated", None, "cli"),
        ("token_rotated", None, "cli"),
    ]
    assert all(token not in str(e.data) and new not in str(e.data) for e in events)


def test_licenses_replaces_a_clinician_s_licences(on_test_database, capsys):
    run(capsys, "users", "add", "dr-lee", "--role", "clinician", "--license-state", "CA")
    status, out, _ = run(capsys, "users", "licenses", "dr-lee", "--license", "TX:2099-12-31")
    assert status == 0 and out == "1\tdr-lee\tclinician\tactive\tTX:2099-12-31\tvalid:TX\n"
    status, out, _ = run(capsys, "users", "licenses", "dr-lee")
    assert status == 0 and out.endswith("\t-\tvalid:-\n")


def test_the_verbs_refuse_what_the_api_refuses(on_test_database, capsys):
    run(capsys, "users", "add", "sam", "--role", "coordinator")
    run(capsys, "users", "add", "root", "--role", "admin")
    status, out, err = run(capsys, "users", "licenses", "sam", "--license-state", "CA")
    assert (status, out) == (1, "") and "holds no licences" in err
    status, out, err = run(capsys, "users", "deactivate", "root")
    assert (status, out) == (1, "") and "last active admin" in err
    status, out, err = run(capsys, "users", "rotate", "nobody")
    assert (status, out) == (1, "") and "no user named nobody" in err


def test_parser_knows_every_command():
    parser = cli.build_parser()
    args = parser.parse_args(["serve", "--port", "9001", "--no-scheduler"])
    assert (args.func, args.port, args.no_scheduler, args.host) == (
        cli.serve,
        9001,
        True,
        "127.0.0.1",
    )
    assert parser.parse_args(["scheduler"]).func is cli.scheduler
    assert parser.parse_args(["db", "upgrade"]).func is cli.db_upgrade
    verbs = {
        "add": ["x", "--role", "admin"],
        "list": [],
        "deactivate": ["x"],
        "reactivate": ["x"],
        "rotate": ["x"],
        "licenses": ["x"],
    }
    for verb, rest in verbs.items():
        func = parser.parse_args(["users", verb, *rest]).func
        assert func.__module__ == "api.cli_users" and func.__name__ in (verb, "list_all")
