"""The ``carepath`` command in-process: ``users add`` prints the token alone."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api import cli
from api.main import create_app


@pytest.fixture
def on_test_database(engine, monkeypatch):
    """Point the CLI at this test's (already prepared) database."""
    monkeypatch.setattr(cli, "get_engine", lambda: engine)
    monkeypatch.setattr(cli, "prepare_database", lambda: None)
    return engine


def test_users_add_prints_only_the_token(on_test_database, capsys):
    argv = ["users", "add", "nina", "--role", "clinician", "--license-state", "CA"]
    assert cli.main([*argv, "--license-state", "NY"]) == 0
    out = capsys.readouterr().out
    token = out.strip()
    assert out == token + "\n" and len(token) >= 40 and " " not in token
    with TestClient(create_app(on_test_database)) as client:
        response = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


def test_users_add_refuses_bad_input_on_stderr(on_test_database, capsys):
    assert cli.main(["users", "add", "nina", "--role", "clinician", "--license-state", "ZZ"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "'ZZ' is not a US state code" in captured.err
    assert cli.main(["users", "add", "nina", "--role", "coordinator"]) == 0
    capsys.readouterr()
    assert cli.main(["users", "add", "nina", "--role", "coordinator"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "already exists" in captured.err
    with pytest.raises(SystemExit):
        cli.main(["users", "add", "nina", "--role", "nurse"])


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
