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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, computed_field
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from voucherledger.core.errors import ValidationFailed
from voucherledger.core.schemas import METADATA_MAX_KEYS, UTCDateTimeIn


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


async def page_params(
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


# --- filters shared by the lists of vouchers, claims and settlements -----------------

METADATA_PREFIX = "metadata["
_METADATA_PARAM = re.compile(r"metadata\[([A-Za-z0-9_.-]{1,40})\]")
METADATA_VALUE_MAX = 500


@dataclass(frozen=True, slots=True)
class ListFilters:
    """``created_after < created_at < created_before`` (either bound optional), and
    ``metadata[key]=value`` pairs, all of which must hold (AND)."""

    created_after: datetime | None = None
    created_before: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


NO_FILTERS = ListFilters()


def _refuse(param: str, msg: str) -> ValidationFailed:
    return ValidationFailed(
        f"query parameter {param[:60]} is not valid",
        [{"loc": ["query", param[:60]], "msg": msg, "type": "value_error"}],
    )


async def created_range(
    created_after: Annotated[UTCDateTimeIn | None, Query()] = None,
    created_before: Annotated[UTCDateTimeIn | None, Query()] = None,
) -> ListFilters:
    """``?created_after=`` / ``?created_before=``: zoned timestamps, both exclusive."""
    if created_after is not None and created_before is not None:
        if created_after >= created_before:
            raise _refuse("created_after", "created_after must be before created_before")
    return ListFilters(created_after=created_after, created_before=created_before)


async def metadata_filters(request: Request) -> dict[str, str]:
    """``?metadata[key]=value`` pairs (FastAPI cannot declare them, so they are read
    here and documented by :data:`METADATA_FILTER_DOC`); keys follow the rules of
    ``metadata``, values at most 500 characters."""
    wanted: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if not name.startswith(METADATA_PREFIX):
            continue
        match = _METADATA_PARAM.fullmatch(name)
        if match is None:
            raise _refuse(name, "a metadata key is 1 to 40 characters of A-Z a-z 0-9 _ . -")
        if len(value) > METADATA_VALUE_MAX:
            raise _refuse(name, "a metadata value is at most 500 characters")
        if wanted.get(match[1], value) != value:
            raise _refuse(name, "the same metadata key is given two values")
        wanted[match[1]] = value
        if len(wanted) > METADATA_MAX_KEYS:
            # An object holds at most 20 keys: more can match nothing, and each is a
            # condition of the query.
            raise _refuse(name, f"at most {METADATA_MAX_KEYS} metadata keys can be filtered on")
    return wanted


# ``CommittingRoute`` lets query parameters with these prefixes through to a route
# that depends on the function (it refuses every parameter no route declares).
metadata_filters.query_prefixes = (METADATA_PREFIX,)  # type: ignore[attr-defined]


async def created_and_metadata(
    created: Annotated[ListFilters, Depends(created_range)],
    metadata: Annotated[dict[str, str], Depends(metadata_filters)],
) -> ListFilters:
    """:func:`created_range` and :func:`metadata_filters` together."""
    return replace(created, metadata=metadata)


METADATA_FILTER_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "metadata",
            "in": "query",
            "required": False,
            "style": "deepObject",
            "explode": True,
            "description": "Only items whose metadata holds every one of these pairs: "
            "?metadata[grant_id]=G-17&metadata[region]=north (keys as in metadata; "
            "values at most 500 characters).",
            "schema": {
                "type": "object",
                "additionalProperties": {"type": "string", "maxLength": 500},
                "maxProperties": 20,
            },
        }
    ]
}
"""``openapi_extra`` of a list that takes ``?metadata[key]=value`` filters."""


def narrow(
    stmt: Select[Any],
    filters: ListFilters,
    created_at: InstrumentedAttribute[datetime],
    meta: InstrumentedAttribute[dict[str, str]],
) -> Select[Any]:
    """``stmt`` limited by ``filters``: portable JSON access, the same SQL shape on
    SQLite and PostgreSQL."""
    if filters.created_after is not None:
        stmt = stmt.where(created_at > filters.created_after)
    if filters.created_before is not None:
        stmt = stmt.where(created_at < filters.created_before)
    for key, value in filters.metadata.items():
        stmt = stmt.where(meta[key].as_string() == value)
    return stmt
