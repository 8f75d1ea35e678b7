"""Bodies of the event feed (``GET /v1/events``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from voucherledger.core.schemas import Schema


class EventOut(Schema):
    """One change, as it committed: ``data.object`` is the object after the change, in
    its API form."""

    id: str = Field(description="evt_...; pass it as `after` to read what follows it.")
    sequence: int | None = Field(
        description="The event's place in the feed: increasing in the order events "
        "committed (null for a moment after commit, until it is numbered)."
    )
    type: str = Field(description="One of the event types, e.g. `redemption.created`.")
    created_at: datetime
    programme_id: str | None
    account_ids: list[str] = Field(description="The accounts that may read the event.")
    data: dict[str, Any] = Field(description='`{"object": {...}}`.')


class EventList(Schema):
    data: list[EventOut]
    has_more: bool = Field(description="More events follow this page already.")
    next_after: str | None = Field(
        description="Where to resume: the last event of this page, or the `after` given "
        "when the page is empty (null only when neither exists)."
    )
