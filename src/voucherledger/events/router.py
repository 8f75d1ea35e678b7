"""HTTP of the event feed: ``GET /v1/events`` and ``GET /v1/events/{event_id}``.

A caller reads the events of the accounts it reads as (its own account, and every
account of its kind for the events that concern them all: seal blocks); an admin
reads every event. Events come in ``sequence`` order, the order in which they
committed, so ``after=<the last event id processed>`` resumes exactly: an event that
commits later gets a later sequence, whatever its ``created_at``.

Before reading, the route numbers the committed events that are not numbered yet
(``core.events.sequence_pending``), in the threadpool, with sessions of its own (as
the checkpoint seals first); the read then runs on a fresh session, whose snapshot
includes those numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from voucherledger.core import events
from voucherledger.core.auth import CurrentPrincipal, Principal
from voucherledger.core.errors import NotFound, ValidationFailed, problem_responses
from voucherledger.core.routing import CommittingRoute
from voucherledger.events.schemas import EventList, EventOut

router = APIRouter(tags=["events"], route_class=CommittingRoute)


def _readers(principal: Principal) -> list[str] | None:
    """The recipient names the caller reads events under; None (all) for an admin."""
    if principal.kind == "admin":
        return None
    return events.readers_of(principal.account_id, principal.kind)


def _types(raw: Sequence[str]) -> list[str]:
    """``types`` given repeated or comma-separated; an unknown type is 422."""
    wanted = [t.strip() for value in raw for t in value.split(",") if t.strip()]
    unknown = sorted({t for t in wanted if t not in events.EVENT_TYPES})
    if unknown:
        raise ValidationFailed(
            f"unknown event types: {', '.join(unknown)}",
            [
                {
                    "loc": ["query", "types"],
                    "msg": f"{t!r} is not an event type",
                    "type": "event_type",
                }
                for t in unknown
            ],
        )
    return sorted(set(wanted))


def _position(session: Session, after: str, readers: list[str] | None) -> int:
    """The sequence of the ``after`` event: it must be a numbered event the caller
    reads (else 422, as an unknown id is)."""
    event = events.get_event(session, after)
    if event is None or event.sequence is None or not events.readable(session, after, readers):
        raise ValidationFailed(
            "after is not an event of yours",
            [
                {
                    "loc": ["query", "after"],
                    "msg": "not the id of an event you can read (or it was purged)",
                    "type": "event_id",
                }
            ],
        )
    return event.sequence


def _event_out(event: events.Event) -> EventOut:
    return EventOut.model_validate(events.event_object(event))


@router.get(
    "/v1/events",
    operation_id="list_events",
    responses=problem_responses(),
)
async def list_events(
    principal: CurrentPrincipal,
    request: Request,
    after: Annotated[str | None, Query(max_length=40, description="An event id (evt_...).")] = None,
    types: Annotated[
        list[str] | None,
        Query(max_length=1000, description="Event types, repeated or comma-separated."),
    ] = None,
    programme_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EventList:
    """The caller's events, oldest first, in the order they committed; resume with
    ``after`` set to the last event id processed (``next_after``)."""
    wanted = _types(types or [])
    readers = _readers(principal)
    factory = request.app.state.session_factory
    await run_in_threadpool(events.sequence_pending, factory)

    def read() -> EventList:
        with factory() as session:
            start = 0 if after is None else _position(session, after, readers)
            rows = events.list_events(
                session,
                readers=readers,
                after_sequence=start,
                limit=limit + 1,
                types=wanted,
                programme_id=programme_id,
            )
            page = [_event_out(event) for event in rows[:limit]]
        return EventList(
            data=page,
            has_more=len(rows) > limit,
            next_after=page[-1].id if page else after,
        )

    return await run_in_threadpool(read)


@router.get(
    "/v1/events/{event_id}",
    operation_id="get_event",
    responses=problem_responses(NotFound),
)
async def get_event(event_id: str, principal: CurrentPrincipal, request: Request) -> EventOut:
    """One event the caller may read (404 otherwise, as for an unknown id)."""
    readers = _readers(principal)
    factory = request.app.state.session_factory
    await run_in_threadpool(events.sequence_pending, factory)

    def read() -> EventOut:
        with factory() as session:
            event = events.get_event(session, event_id)
            if event is None or not events.readable(session, event_id, readers):
                raise NotFound(f"No event {event_id}.")
            return _event_out(event)

    return await run_in_threadpool(read)
