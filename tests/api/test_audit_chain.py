"""The audit trail's hash chain: tampering done directly in SQL is found by the endpoint and CLI.

The tampering runs as the tables' owner with the append-only triggers set
aside, as only someone with more than the service's privileges could.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from api import audit_cli, cli
from models.db import make_engine
from tests.api.helpers import Api, case_url, open_case, record_evaluation
from tests.conftest import owner_url
from workflow.audit_chain import event_hash

COLUMNS = "case_id, at, actor_id, actor_role, kind, trigger, from_state, to_state, data"


@contextmanager
def tampering(engine: Engine) -> Iterator[Connection]:
    """A transaction that may change audit_events behind the service's back."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            for name in ("update", "delete", "replace"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS audit_events_no_{name}"))
            yield conn
        return
    owner = make_engine(owner_url(engine.url.render_as_string(hide_password=False)))
    try:
        with owner.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            yield conn
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    finally:
        owner.dispose()


def event_ids(engine: Engine, case_id: int) -> list[int]:
    with engine.connect() as conn:
        query = text("SELECT id FROM audit_events WHERE case_id = :c ORDER BY id")
        return list(conn.execute(query, {"c": case_id}).scalars())


def verify(api: Api, case_id: int) -> dict[str, Any]:
    return api.get("admin", case_url(case_id, "/events/verify"))


@pytest.fixture
def two_cases(api: Api) -> tuple[int, int]:
    """Two cases whose events interleave, so that each case's ids have gaps."""
    first, second = open_case(api), open_case(api)
    record_evaluation(api, first)
    api.clock.advance(minutes=5)
    record_evaluation(api, second)
    record_evaluation(api, first)
    return first, second


def test_an_untouched_chain_verifies(api: Api, engine, two_cases):
    first, second = two_cases
    ids = event_ids(engine, first)
    assert verify(api, first) == {"ok": True, "events": len(ids)}
    events = api.items("admin", case_url(first, "/events"))
    events = events["items"] if isinstance(events, dict) else events
    assert events[0]["prev_hash"] is None
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))
    assert verify(api, second)["ok"]


def _change(conn: Connection, ids: list[int]) -> int:
    conn.execute(text("UPDATE audit_events SET data = :d WHERE id = :i"), {"d": "{}", "i": ids[3]})
    return ids[3]


def _change_time(conn: Connection, ids: list[int]) -> int:
    conn.execute(
        text(
            "UPDATE audit_events SET at = (SELECT at FROM audit_events WHERE id = :j) WHERE id = :i"
        ),
        {"i": ids[-1], "j": ids[0]},
    )
    return ids[-1]


def _delete(conn: Connection, ids: list[int]) -> int:
    conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": ids[2]})
    return ids[3]


def _delete_last(conn: Connection, ids: list[int]) -> int:
    conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": ids[-1]})
    return ids[-2]


def _reorder(conn: Connection, ids: list[int]) -> int:
    """Swap the whole content (hashes included) of two events."""
    cols = f"{COLUMNS}, prev_hash, hash"
    rows = {
        i: dict(
            conn.execute(text(f"SELECT {cols} FROM audit_events WHERE id = :i"), {"i": i})
            .mappings()
            .one()
        )
        for i in (ids[1], ids[2])
    }
    for row in rows.values():
        row["data"] = as_json(row["data"])
    sets = ", ".join(f"{c.strip()} = :{c.strip()}" for c in cols.split(","))
    for target, source in ((ids[1], ids[2]), (ids[2], ids[1])):
        conn.execute(
            text(f"UPDATE audit_events SET {sets} WHERE id = :id"), {**rows[source], "id": target}
        )
    return ids[1]


def as_json(value: Any) -> str:
    """A JSON column's value as SQL text takes it (PostgreSQL gives it back parsed)."""
    return value if isinstance(value, str) else json.dumps(value)


def _insert_in_the_middle(conn: Connection, ids: list[int], other: list[int]) -> int:
    """Replace another case's event by a well-formed one on this case, between two of its own."""
    gap = next(i for i in other if ids[1] < i < ids[-1])
    before = max(i for i in ids if i < gap)
    conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": gap})
    _insert_forged(conn, gap, template=before, prev_id=before)
    return min(i for i in ids if i > gap)


def _append(conn: Connection, ids: list[int], other: list[int]) -> int:
    """A well-formed event after the newest, chained to it: only the case's head disagrees."""
    _insert_forged(conn, max(ids + other) + 100, template=ids[-1], prev_id=ids[-1])
    return max(ids + other) + 100


def _insert_forged(conn: Connection, new_id: int, *, template: int, prev_id: int) -> None:
    from types import SimpleNamespace

    from models.tables import AuditEvent

    sql = f"SELECT {COLUMNS}, hash FROM audit_events WHERE id = :i"
    row = dict(conn.execute(text(sql), {"i": template}).mappings().one())
    prev = conn.execute(text("SELECT hash FROM audit_events WHERE id = :i"), {"i": prev_id})
    prev_hash = prev.scalar_one()
    event = AuditEvent.model_validate({**row, "prev_hash": prev_hash, "data": {"forged": True}})
    forged: Any = SimpleNamespace(**{**event.model_dump(), "at": event.at})
    values = {**row, "id": new_id, "data": '{"forged": true}', "prev_hash": prev_hash}
    values["hash"] = event_hash(forged)
    conn.execute(
        text(
            f"INSERT INTO audit_events (id, {COLUMNS}, prev_hash, hash) VALUES "
            f"(:id, :{', :'.join(c.strip() for c in COLUMNS.split(','))}, :prev_hash, :hash)"
        ),
        values,
    )


TAMPERING: dict[str, Callable[..., int]] = {
    "change": _change,
    "change_time": _change_time,
    "delete": _delete,
    "delete_last": _delete_last,
    "reorder": _reorder,
}


@pytest.mark.parametrize("kind", [*TAMPERING, "insert", "append"])
def test_tampering_in_sql_is_found(api: Api, engine, two_cases, kind, monkeypatch, capsys):
    first, second = two_cases
    ids, other = event_ids(engine, first), event_ids(engine, second)
    with tampering(engine) as conn:
        if kind == "insert":
            bad = _insert_in_the_middle(conn, ids, other)
        elif kind == "append":
            _append(conn, ids, other)
            bad = max(ids + other) + 100
        else:
            bad = TAMPERING[kind](conn, ids)
    verdict = verify(api, first)
    assert verdict["ok"] is False
    assert verdict["first_bad_event_id"] == bad
    if kind != "insert":
        assert verify(api, second)["ok"] is True

    monkeypatch.setattr(audit_cli, "get_engine", lambda: engine)
    assert cli.main(["audit", "verify"]) == 1
    captured = capsys.readouterr()
    assert f"case {first}: chain broken at event {bad}" in captured.err


def test_cli_exits_zero_on_sound_chains(api: Api, engine, two_cases, monkeypatch, capsys):
    monkeypatch.setattr(audit_cli, "get_engine", lambda: engine)
    assert cli.main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    total = len(event_ids(engine, two_cases[0])) + len(event_ids(engine, two_cases[1]))
    assert f"2 cases, {total} events checked, 0 broken" in out


def test_verify_of_an_unknown_case_is_404(api: Api):
    api.get("admin", case_url(999, "/events/verify"), expect=404)
