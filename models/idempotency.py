"""Idempotency keys: a POST's key, who sent it, and the response it got (SPEC.md section 5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from models.types import timestamp_field


class IdempotencyKey(SQLModel, table=True):
    """One ``Idempotency-Key`` a user sent on one method and path.

    ``status`` is None while the first request with the key is being served;
    then it holds the response that every replay gets.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index(
            "uq_idempotency_keys_user_method_path_key",
            "user_id",
            "method",
            "path",
            "key",
            unique=True,
        ),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    method: str = Field(max_length=10)
    path: str = Field(max_length=2000)
    key: str = Field(max_length=200)
    body_hash: str = Field(max_length=64)
    status: int | None = Field(default=None)
    headers: list[list[str]] = Field(default_factory=list, sa_type=JSON)
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = timestamp_field()
