"""The baseline: the bare stack doing the least possible write.

FastAPI + SQLModel on the same SQLite engine settings as carepath (WAL,
``synchronous=FULL``, busy timeout, ``BEGIN IMMEDIATE``: the engine comes
from ``models.db.make_engine`` itself, so the two can never drift apart),
served by uvicorn with one worker. ``POST /items/{id}/bump`` reads one row by
id, bumps its version and commits: no auth, no audit, no state machine.
Like carepath's routes, the handler is a plain ``def`` with a session
dependency, so it runs in the same thread pool.

    uv run python benchmarks/baseline_app.py --database-url sqlite:////tmp/b.db --port 8001
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from models.db import make_engine


class Item(SQLModel, table=True):
    """One row to bump."""

    __tablename__ = "bench_items"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    version: int = 1


class ItemPublic(SQLModel):
    id: int
    name: str
    version: int


def prepare(engine: Engine, rows: int) -> None:
    """Create the table and fill it up to ``rows`` rows."""
    Item.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    with Session(engine) as session:
        have = session.exec(select(func.count()).select_from(Item)).one()
        session.add_all(Item(name=f"item-{n}") for n in range(have, rows))
        session.commit()


ENGINES: list[Engine] = []
"""The engine the app serves from, set by ``create_app``."""


def get_session() -> Iterator[Session]:
    # As carepath's sessions: no reload of the row after the commit.
    with Session(ENGINES[-1], expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def create_app(engine: Engine) -> FastAPI:
    ENGINES.append(engine)
    app = FastAPI(title="baseline")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/items/{item_id}/bump", response_model=ItemPublic)
    def bump(item_id: int, session: SessionDep) -> Item:
        item = session.get(Item, item_id)
        if item is None:
            raise HTTPException(404, "no such item")
        item.version += 1
        session.add(item)
        session.commit()
        return item

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    prepare(engine, args.rows)
    uvicorn.run(
        create_app(engine),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        access_log=not args.no_access_log,
    )


if __name__ == "__main__":
    main()
