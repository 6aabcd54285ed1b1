"""``Idempotency-Key`` on every POST (SPEC.md section 5), as ASGI middleware around the app.

The first request with a key claims it: a row unique on (user, method, path,
key) is committed before the request runs, so that of concurrent requests
with one key exactly one wins the claim. It runs, and its response (status,
body and the headers a client acts on) is stored on the row. Every other
request with that key and the same body (compared as parsed JSON) waits for
the stored response and gets it again, changing nothing; one with a different
body is a 422. A first request that fails with a 5xx, or raises, gives its
claim up so that a retry runs afresh. Rows are kept ``idempotency_hours``.

A response's ``token`` (a user's, shown once and stored only as its hash,
SPEC.md section 1) is never kept: its replay comes without it.

A process killed between the write's commit and the storing of its response
leaves the claim without a response: requests with that key then get a 409
until the key expires, rather than a second write.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import auth
from models.db import read_only, run_write, write_lock
from models.idempotency import IdempotencyKey
from models.settings import settings

KEY_HEADER = b"idempotency-key"
VALID_KEY = re.compile(r"^[\x20-\x7e]{1,200}$")
REPLAYED_HEADERS = frozenset({b"content-type", b"etag", b"location"})
SECRET_FIELDS = ("token",)
"""Left out of a response's body when it is kept: a user's token is shown only once."""
POLL_SECONDS = 0.02
WAIT_SECONDS = 30.0
"""How long a request waits for the first one with its key to finish."""


@dataclass(frozen=True)
class Stored:
    status: int
    headers: list[list[str]]
    body: str


def body_hash(body: bytes) -> str:
    """SHA-256 of the body as parsed JSON (key order and spacing do not count), else its bytes."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Stored:
    body = {
        "type": f"urn:carepath:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return Stored(status, [["content-type", "application/problem+json"]], json.dumps(body))


def _bad_key() -> Stored:
    detail = "Idempotency-Key must be 1 to 200 printable ASCII characters."
    error = {"loc": ["header", "Idempotency-Key"], "msg": detail, "type": "value_error"}
    return _problem(422, "validation_error", "Validation error", detail, errors=[error])


def _other_body() -> Stored:
    detail = "This Idempotency-Key was used with a different body: use a new key."
    error = {"loc": ["header", "Idempotency-Key"], "msg": detail, "type": "value_error"}
    return _problem(422, "validation_error", "Validation error", detail, errors=[error])


def _in_progress() -> Stored:
    detail = (
        "The first request with this Idempotency-Key has not finished (or was interrupted): "
        "retry later, or use a new key for a new request."
    )
    return _problem(409, "conflict", "Conflict", detail)


@dataclass(frozen=True)
class Claim:
    """Who asks, with which key, for what."""

    user_id: int
    method: str
    path: str
    key: str
    body_hash: str

    def where(self) -> Any:
        return (
            col(IdempotencyKey.user_id) == self.user_id,
            col(IdempotencyKey.method) == self.method,
            col(IdempotencyKey.path) == self.path,
            col(IdempotencyKey.key) == self.key,
        )


class KeyStore:
    """The idempotency rows, read and written in short transactions of their own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, claim: Claim, now: datetime) -> int | Stored | None:
        """The new row's id if this request claimed the key; else the stored response,
        a refusal, or None while the first request is still running."""
        cutoff = now - timedelta(hours=settings.idempotency_hours)
        while True:
            with write_lock(self.engine), Session(self.engine) as session:
                row = session.exec(select(IdempotencyKey).where(*claim.where())).first()
                if row is not None and row.created_at >= cutoff:
                    session.rollback()
                    return self._answer(row, claim)
                session.execute(
                    delete(IdempotencyKey).where(col(IdempotencyKey.created_at) < cutoff)
                )
                new = IdempotencyKey(
                    user_id=claim.user_id,
                    method=claim.method,
                    path=claim.path,
                    key=claim.key,
                    body_hash=claim.body_hash,
                    created_at=now,
                )
                session.add(new)
                try:
                    session.commit()
                except IntegrityError:  # another request claimed it first: read its row
                    session.rollback()
                    continue
                return int(new.id or 0)

    def poll(self, claim: Claim) -> Stored | bool | None:
        """The stored response; None while it runs; False if the claim was given up."""
        with Session(read_only(self.engine)) as session:
            row = session.exec(select(IdempotencyKey).where(*claim.where())).first()
            if row is None:
                return False
            return self._answer(row, claim)

    @staticmethod
    def _answer(row: IdempotencyKey, claim: Claim) -> Stored | None:
        if row.body_hash != claim.body_hash:
            return _other_body()
        if row.status is None:
            return None
        return Stored(row.status, row.headers, row.body or "")

    def store(self, row_id: int, response: Stored) -> None:
        with write_lock(self.engine), Session(self.engine) as session:
            row = session.get(IdempotencyKey, row_id)
            if row is not None:
                row.status, row.headers, row.body = response.status, response.headers, response.body
                session.commit()

    def give_up(self, row_id: int) -> None:
        with write_lock(self.engine), Session(self.engine) as session:
            session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.id) == row_id))
            session.commit()


class Idempotency:
    """Replays a POST's stored response for a repeated ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        raw_key = headers.get(KEY_HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not VALID_KEY.match(key):
            await _send(send, _bad_key())
            return
        body = await _read_body(receive)
        replay_receive = _replaying(body, receive)
        app_state = scope["app"].state
        user_id = await _user_id(app_state.tokens, headers.get(b"authorization"))
        if user_id is None:  # no valid token: the app answers with its 401
            await self.app(scope, replay_receive, send)
            return
        path = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        if "\x00" in path:  # no route has one, and PostgreSQL text cannot hold it
            await self.app(scope, replay_receive, send)
            return
        claim = Claim(user_id, "POST", path[:2000], key, body_hash(body))
        store = KeyStore(app_state.engine)
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            now = app_state.clock()
            result = await run_write(store.engine, functools.partial(store.claim, claim, now))
            while result is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(POLL_SECONDS)
                result = await anyio.to_thread.run_sync(store.poll, claim)
            if result is False:  # the first request gave its claim up: claim it again
                continue
            break
        if result is None:
            await _send(send, _in_progress())
            return
        if isinstance(result, Stored):
            await _send(send, result, replayed=True)
            return
        await self._first(scope, replay_receive, send, store, result)

    async def _first(
        self, scope: Scope, receive: Receive, send: Send, store: KeyStore, row_id: int
    ) -> None:
        """Run the request that claimed the key, and store its response."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await anyio.to_thread.run_sync(store.give_up, row_id)
            raise
        if start is None or start["status"] >= 500:
            await anyio.to_thread.run_sync(store.give_up, row_id)
            return
        kept = [
            [name.decode("latin-1"), value.decode("latin-1")]
            for name, value in start.get("headers", ())
            if name.lower() in REPLAYED_HEADERS
        ]
        body = _kept_body(b"".join(chunks))
        stored = Stored(start["status"], kept, body)
        await run_write(store.engine, functools.partial(store.store, row_id, stored))


def _kept_body(body: bytes) -> str:
    """The body as it is stored: a JSON object without its ``SECRET_FIELDS``."""
    if any(f'"{name}"'.encode() in body for name in SECRET_FIELDS):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            kept = {k: v for k, v in parsed.items() if k not in SECRET_FIELDS}
            body = json.dumps(kept, separators=(",", ":")).encode()
    return body.decode("utf-8", errors="replace")


async def _user_id(tokens: auth.TokenLookup, authorization: bytes | None) -> int | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    actor = await tokens.actor_async(token.strip())
    return None if actor is None else actor.id


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body already read, then waits as the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, response: Stored, replayed: bool = False) -> None:
    body = response.body.encode()
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    headers.append((b"content-length", str(len(body)).encode()))
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "1 to 200 printable characters. A retry with the same key and body within "
        "`idempotency_hours` gets the first response again and changes nothing; "
        "the same key with another body is a 422. A response that carried a token "
        "comes again without it: a token is shown once."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"},
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the ``Idempotency-Key`` header to every POST of an OpenAPI document."""
    for operations in schema.get("paths", {}).values():
        post = operations.get("post")
        if post is not None:
            post.setdefault("parameters", []).append(dict(KEY_PARAMETER))
    return schema
