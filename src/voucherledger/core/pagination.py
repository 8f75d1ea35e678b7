"""Cursor pagination: ``?limit=1..500`` (default 50) and an opaque ``?cursor=``.

Lists are ordered by id, which sorts by creation time; the cursor is the last
id of the previous page, base64url-encoded so clients treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from voucherledger.core.errors import ValidationFailed


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T")
ItemT = TypeVar("ItemT", bound=HasId)


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int
    after: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValidationFailed(
            "cursor is not valid",
            [{"loc": ["query", "cursor"], "msg": "not a cursor from this API", "type": "cursor"}],
        ) from exc
    if not value or len(value) > 64 or not value.isascii():
        raise ValidationFailed(
            "cursor is not valid",
            [{"loc": ["query", "cursor"], "msg": "not a cursor from this API", "type": "cursor"}],
        )
    return value


def page_params(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def make_page(items: list[ItemT], limit: int) -> Page[ItemT]:
    """``items`` was fetched with ``limit + 1`` rows; the extra one says there is more."""
    if len(items) > limit:
        return Page(data=items[:limit], next_cursor=encode_cursor(items[limit - 1].id))
    return Page(data=items, next_cursor=None)


def keyset(
    session: Session,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[str],
    after: str | None,
    limit: int,
) -> list[Any]:
    """One page of ``stmt`` in id (creation) order, after the cursor's id."""
    stmt = stmt.order_by(id_column)
    if after is not None:
        stmt = stmt.where(id_column > after)
    return list(session.execute(stmt.limit(limit)).scalars())
