"""Cursor pagination: ``?limit=1..500`` (default 50) and an opaque ``?cursor=``.

Lists are ordered by id, which sorts by creation time; the cursor is the last
id of the previous page, base64url-encoded so clients treat it as opaque.

Every list works the same way: :func:`page_params` reads the query, the repository
fetches ``limit + 1`` rows with :func:`keyset`, and the service cuts them with
:func:`split_page` (or :func:`make_page` when the items are the response's).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Query
from pydantic import BaseModel, computed_field
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from voucherledger.core.errors import ValidationFailed


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T")
ItemT = TypeVar("ItemT", bound=HasId)


class Paginated(BaseModel):
    """What every list answer ends with: the next page's cursor, and ``has_more``,
    true exactly when there is a next page (``next_cursor`` is not null)."""

    next_cursor: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


class Page(Paginated, Generic[T]):
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
    # An id is printable ASCII: "AA" decodes to U+0000, which PostgreSQL cannot compare.
    if not value or len(value) > 64 or not all("!" <= char <= "~" for char in value):
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


def split_page(rows: Sequence[ItemT], limit: int) -> tuple[list[ItemT], str | None]:
    """``rows`` was fetched with ``limit + 1``: the page, and the next page's cursor
    (None on the last page); the extra row only says there is more."""
    page = list(rows[:limit])
    return page, encode_cursor(page[-1].id) if len(rows) > limit else None


def make_page(items: Sequence[ItemT], limit: int) -> Page[ItemT]:
    """:func:`split_page` as a :class:`Page` of the items themselves."""
    data, cursor = split_page(items, limit)
    return Page(data=data, next_cursor=cursor)


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
