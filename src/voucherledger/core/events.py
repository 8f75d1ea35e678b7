"""The event outbox: what changed, written in the transaction that changed it.

Every state change calls :func:`emit` in its own database transaction, so an event
exists exactly when its change committed — never a change without its event, never
an event of a change that was rolled back.

An event is born without a place in the feed (``sequence`` is NULL). The sequencer
(:func:`sequence_pending`, run by the server's background loop and before every read
of the feed) numbers committed events one batch at a time, under a lock on the
``event_counters`` row, so sequences are handed out in the order events became
visible. A consumer reading ``sequence > n`` therefore never misses an event that
committed after it read: a late commit simply gets a later number. The same idea
numbers journal transactions (the seal sequence, ``ledger/sealer.py``).

Who may read an event: its ``event_recipients`` rows name the accounts (the
programme's funder, managers and auditors, the group or supplier concerned), or a
whole kind of account as ``kind:funder``/``kind:auditor`` (a seal block concerns every
programme). Admins read every event.

Events are kept ``events_retention_days`` (at least 30) and then purged by the
background sweep; the ledger itself is never purged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    String,
    delete,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from voucherledger.core.db import Base, UTCDateTime, utcnow
from voucherledger.core.ids import new_id
from voucherledger.core.rawsql import Raw, using

EVENT_TYPES: tuple[str, ...] = (
    "programme.created",
    "programme.funded",
    "programme.closed",
    "programme.updated",
    "voucher.issued",
    "voucher.revoked",
    "voucher.expired",
    "voucher.updated",
    "redemption.created",
    "redemption.captured",
    "redemption.voided",
    "redemption.refunded",
    "feedback.created",
    "settlement.proposed",
    "settlement.approved",
    "settlement.rejected",
    "settlement.settled",
    "accreditation.created",
    "accreditation.suspended",
    "member.invited",
    "member.activated",
    "member.disabled",
    "account.updated",
    "seal.block_created",
    "webhook_endpoint.disabled",
)

COUNTER = "events"
SEQUENCE_BATCH = 1000


class Event(Base):
    """One change, as an integrator sees it. ``data`` is ``{"object": {...}}``: the
    object after the change, in its API form (and ``previous`` where a PATCH changed
    it)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_sequence", "sequence", unique=True),
        Index("ix_events_created_at", "created_at"),
        # What the sequencer looks for: the few events not numbered yet.
        Index(
            "ix_events_unsequenced",
            "created_at",
            "id",
            postgresql_where=text("sequence IS NULL"),
            sqlite_where=text("sequence IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # NULL until the sequencer gives the committed event its place in the feed.
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    programme_id: Mapped[str | None] = mapped_column(String(40))
    account_ids: Mapped[list[str]] = mapped_column(JSON)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class EventRecipient(Base):
    """Who may read an event: an account id, or ``kind:<account kind>``."""

    __tablename__ = "event_recipients"
    __table_args__ = (Index("ix_event_recipients_event_id", "event_id"),)

    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)


class EventCounter(Base):
    """The last sequence handed out (one row, ``events``); its row lock serialises the
    sequencers of all processes and nodes."""

    __tablename__ = "event_counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


def emit(
    session: Session,
    type_: str,
    data: dict[str, Any],
    *,
    programme_id: str | None = None,
    account_ids: Iterable[str] = (),
    kinds: Iterable[str] = (),
    at: datetime | None = None,
) -> str:
    """Write an event in the caller's transaction; it is readable once that commits
    (and the sequencer has numbered it). ``data`` is JSON: ``{"object": {...}}``.
    ``account_ids`` may read it, and so may every account of each of ``kinds``."""
    [event_id] = emit_many(
        session,
        [(type_, data)],
        programme_id=programme_id,
        account_ids=account_ids,
        kinds=kinds,
        at=at,
    )
    return event_id


def emit_many(
    session: Session,
    items: Sequence[tuple[str, dict[str, Any]]],
    *,
    programme_id: str | None = None,
    account_ids: Iterable[str] = (),
    kinds: Iterable[str] = (),
    at: datetime | None = None,
    db: Raw | None = None,
) -> list[str]:
    """:func:`emit` for several events with the same readers (a claim captured at once
    is ``redemption.created`` then ``redemption.captured``), in their order, by
    :func:`insert_events`, on ``db`` when the caller has one open (a
    :class:`~voucherledger.core.rawsql.Pipeline`). Returns the events' ids."""
    for type_, _ in items:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
    if not items:
        return []
    when = at or utcnow()
    readers = sorted({a for a in account_ids if a})
    recipients = [*readers, *sorted({f"kind:{k}" for k in kinds})]
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("evt"),
            "type": type_,
            "created_at": when,
            "programme_id": programme_id,
            "account_ids": readers,
            "data": data,
            "recipients": recipients,
        }
        for type_, data in items
    ]
    with using(session, db) as raw:
        insert_events(raw, rows)
    return [row["id"] for row in rows]


def insert_events(db: Raw, rows: Sequence[dict[str, Any]]) -> None:
    """New, unnumbered events (``id``, ``type``, ``created_at``, ``programme_id``,
    ``account_ids``, ``data``) and who may read each (``recipients``; its
    ``account_ids`` when absent), straight to the driver: two statements whatever
    their number (``unnest`` arrays on PostgreSQL, one fixed text however many rows;
    ``executemany`` on SQLite), the rows as the ORM would write them. A claim's
    events and a batch issuance's (up to 10,000 vouchers) both come here."""
    if not rows:
        return
    bound = [[db.bind(row[name]) for name in _EVENT_COLUMNS] for row in rows]
    recipients = [
        (reader, row["id"])
        for row in rows
        for reader in row.get("recipients", sorted(set(row["account_ids"])))
    ]
    if db.dialect == "postgresql":
        db.execute(_PG_EVENTS, [list(column) for column in zip(*bound, strict=True)])
        if recipients:
            db.execute(_PG_RECIPIENTS, [[a for a, _ in recipients], [e for _, e in recipients]])
    else:
        db.executemany(_SQLITE_EVENTS, bound)
        if recipients:
            db.executemany(_SQLITE_RECIPIENTS, recipients)


_EVENT_COLUMNS = ("id", "type", "created_at", "programme_id", "account_ids", "data")
_PG_EVENTS = (
    "INSERT INTO events (id, sequence, type, created_at, programme_id, account_ids, data) "
    "SELECT u.id, NULL, u.type, u.created_at, u.programme_id, CAST(u.account_ids AS JSON), "
    "CAST(u.data AS JSON) "
    "FROM unnest(?::text[], ?::text[], ?::timestamp[], ?::text[], ?::text[], ?::text[]) "
    "AS u(id, type, created_at, programme_id, account_ids, data)"
)
_SQLITE_EVENTS = (
    "INSERT INTO events (id, sequence, type, created_at, programme_id, account_ids, data) "
    "VALUES (?, NULL, ?, ?, ?, ?, ?)"
)
_PG_RECIPIENTS = (
    "INSERT INTO event_recipients (account_id, event_id) "
    "SELECT u.account_id, u.event_id FROM unnest(?::text[], ?::text[]) AS u(account_id, event_id)"
)
_SQLITE_RECIPIENTS = "INSERT INTO event_recipients (account_id, event_id) VALUES (?, ?)"


def _lock_counter(session: Session, *, wait: bool) -> int | None:
    """Lock the counter row and return its value; None when another sequencer holds
    it and ``wait`` is false (PostgreSQL; SQLite's write lock serialises anyway)."""
    dialect = session.get_bind().dialect.name
    stmt = select(EventCounter.value).where(EventCounter.name == COUNTER)
    if dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=not wait)
    else:
        # Take SQLite's write lock now, before reading what to number.
        session.execute(
            update(EventCounter)
            .where(EventCounter.name == COUNTER)
            .values(value=EventCounter.value)
        )
    return session.execute(stmt).scalar_one_or_none()


def sequence_batch(session: Session, *, limit: int = SEQUENCE_BATCH, wait: bool = True) -> int:
    """Number up to ``limit`` committed, unnumbered events in the caller's transaction
    (oldest first); returns how many. Commit promptly: the counter stays locked."""
    last = _lock_counter(session, wait=wait)
    if last is None:
        return 0
    # One statement whatever the batch: the oldest unnumbered events, numbered on
    # from the counter in (created_at, id) order (SQLite 3.33+ and PostgreSQL alike).
    count = session.execute(
        text(
            "UPDATE events SET sequence = numbered.sequence FROM ("
            " SELECT id, :last + ROW_NUMBER() OVER (ORDER BY created_at, id) AS sequence"
            " FROM events WHERE sequence IS NULL ORDER BY created_at, id LIMIT :limit"
            ") AS numbered WHERE events.id = numbered.id"
        ),
        {"last": last, "limit": limit},
    ).rowcount  # type: ignore[attr-defined]
    if not count:
        return 0
    session.execute(
        update(EventCounter).where(EventCounter.name == COUNTER).values(value=last + count)
    )
    return int(count)


def sequence_pending(session_factory: Any, *, wait: bool = False) -> int:
    """Number every committed, unnumbered event, one committed batch at a time.
    ``session_factory`` is a ``sessionmaker``; without ``wait``, returns at once when
    another process is numbering (it will number these too)."""
    total = 0
    while True:
        with session_factory() as session:
            count = sequence_batch(session, wait=wait)
            session.commit()
        total += count
        if count < SEQUENCE_BATCH:
            return total


def last_sequence(session: Session) -> int:
    """The last sequence handed out (0 before any event)."""
    value = session.execute(
        select(EventCounter.value).where(EventCounter.name == COUNTER)
    ).scalar_one_or_none()
    return int(value or 0)


def readers_of(account_id: str, account_kind: str) -> list[str]:
    """The recipient names an account reads events under."""
    return [account_id, f"kind:{account_kind}"]


def list_events(
    session: Session,
    *,
    readers: Sequence[str] | None,
    after_sequence: int,
    limit: int,
    types: Sequence[str] = (),
    programme_id: str | None = None,
    until_sequence: int | None = None,
) -> list[Event]:
    """Numbered events after ``after_sequence``, oldest first, that one of ``readers``
    may read (``None``: every event, for admins); ``limit`` rows at most."""
    stmt = select(Event).where(Event.sequence.is_not(None), Event.sequence > after_sequence)
    if until_sequence is not None:
        stmt = stmt.where(Event.sequence <= until_sequence)
    if readers is not None:
        stmt = stmt.where(
            Event.id.in_(
                select(EventRecipient.event_id).where(EventRecipient.account_id.in_(readers))
            )
        )
    if types:
        stmt = stmt.where(Event.type.in_(list(types)))
    if programme_id is not None:
        stmt = stmt.where(Event.programme_id == programme_id)
    return list(session.execute(stmt.order_by(Event.sequence).limit(limit)).scalars())


def get_event(session: Session, event_id: str) -> Event | None:
    return session.get(Event, event_id)


def readable(session: Session, event_id: str, readers: Sequence[str] | None) -> bool:
    """Whether one of ``readers`` may read the event (``None``: an admin, always)."""
    if readers is None:
        return True
    return (
        session.execute(
            select(EventRecipient.event_id).where(
                EventRecipient.event_id == event_id,
                or_(*[EventRecipient.account_id == r for r in readers]),
            )
        ).first()
        is not None
    )


def purge_events(session: Session, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` numbered events created before ``before`` (and who could
    read them); returns how many. The sweep calls it in batches."""
    ids = list(
        session.execute(
            select(Event.id)
            .where(Event.created_at < before, Event.sequence.is_not(None))
            .order_by(Event.created_at)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return 0
    session.execute(delete(EventRecipient).where(EventRecipient.event_id.in_(ids)))
    session.execute(delete(Event).where(Event.id.in_(ids)))
    return len(ids)


def event_object(event: Event) -> dict[str, Any]:
    """An event as the API and webhooks show it."""
    return {
        "id": event.id,
        "sequence": event.sequence,
        "type": event.type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "programme_id": event.programme_id,
        "account_ids": list(event.account_ids),
        "data": event.data,
    }


# The counter's one row, inserted by the migration.
COUNTER_ROW_SQL = text("INSERT INTO event_counters (name, value) VALUES ('events', 0)")
