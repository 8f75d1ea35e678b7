"""What every ``PATCH`` correction shares: apply the fields sent to a locked row,
record each change (:mod:`voucherledger.core.changes`), and list an object's
recorded changes as ``GET .../{id}/changes``.

The domains decide who may change what; this module only compares, assigns and
records, so the three PATCHes (account, programme, voucher) behave alike: a field
sent with the value it already has is no change, and no change records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from voucherledger.core.changes import ChangeRecord, record_change
from voucherledger.core.pagination import Page, keyset, make_page
from voucherledger.core.schemas import CREATED_BY, Schema


class ChangeOut(Schema):
    """One field's recorded change."""

    id: str
    field: str
    old_value: Any = Field(description="The value before (JSON), null if it had none.")
    new_value: Any = Field(description="The value after (JSON).")
    changed_by: str | None = Field(description=CREATED_BY)
    changed_at: datetime


def apply_fields(
    session: Session,
    row: object,
    wanted: Mapping[str, Any],
    *,
    object_type: str,
    object_id: str,
    changed_by: str,
    programme_id: str | None = None,
    attributes: Mapping[str, str] | None = None,
    as_json: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Set each of ``wanted`` (API field name to new value) on ``row`` where it
    differs, record the change, and return ``{field: old value}`` of the changed
    fields (empty: nothing changed, nothing recorded). ``attributes`` maps an API
    field to the model attribute holding it (``metadata`` is ``meta``); ``as_json``
    turns a value into its recorded JSON form (default: as it is)."""
    convert = as_json or (lambda value: value)
    previous: dict[str, Any] = {}
    at = None
    for field in sorted(wanted):
        attribute = (attributes or {}).get(field, field)
        old = getattr(row, attribute)
        new = wanted[field]
        if convert(old) == convert(new):
            continue
        setattr(row, attribute, new)
        previous[field] = convert(old)
        record = record_change(
            session,
            object_type=object_type,
            object_id=object_id,
            field=field,
            old=convert(old),
            new=convert(new),
            changed_by=changed_by,
            programme_id=programme_id,
            at=at,
        )
        at = record.changed_at  # one PATCH, one moment
    if previous:
        session.flush()
    return previous


def record_fields(
    session: Session,
    previous: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    object_type: str,
    object_id: str,
    changed_by: str,
    programme_id: str | None = None,
) -> None:
    """Record changes the caller made itself (``previous`` and ``current`` JSON values
    of the changed fields), as :func:`apply_fields` records its own."""
    at = None
    for field in sorted(previous):
        record = record_change(
            session,
            object_type=object_type,
            object_id=object_id,
            field=field,
            old=previous[field],
            new=current.get(field),
            changed_by=changed_by,
            programme_id=programme_id,
            at=at,
        )
        at = record.changed_at


def list_changes(
    session: Session, object_type: str, object_id: str, after: str | None, limit: int
) -> Page[ChangeOut]:
    """One page of an object's recorded changes, oldest first."""
    rows = keyset(
        session,
        select(ChangeRecord).where(
            ChangeRecord.object_type == object_type, ChangeRecord.object_id == object_id
        ),
        ChangeRecord.id,
        after,
        limit + 1,
    )
    return make_page([ChangeOut.model_validate(r) for r in rows], limit)
