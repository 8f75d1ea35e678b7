"""The sealer: puts written transactions into the signed hash chain, in batches.

Writers never touch the chain head: they only add their transaction to
``ledger_seal_queue``. The sealer (one at a time, under an advisory lock on
PostgreSQL; SQLite's write lock serialises it there) takes a batch from the
queue in (created_at, id) order, gives each transaction the next sequence
number and chain hash, stores the seals, signs the batch as one block and
empties those queue entries — all in one database transaction. A transaction
that commits late is simply sealed in a later batch.

Only the chain's current key (the last entry of the signing key history,
``ledger/keys.py``) seals: any other key is refused before anything is written,
and a new key is recorded by :func:`rotate_signing_key` first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from voucherledger.core import events
from voucherledger.core.db import utcnow
from voucherledger.core.rawsql import Raw
from voucherledger.ledger import keys
from voucherledger.ledger.canonical import (
    BLOCK_FORMAT,
    GENESIS_HASH,
    block_object,
    canonical_json,
    chain_hash,
    transaction_object,
)
from voucherledger.ledger.errors import SigningKeyNotRecorded
from voucherledger.ledger.models import (
    JournalTransaction,
    Posting,
    Seal,
    SealBlock,
    SealQueue,
)
from voucherledger.ledger.signing import Signer

log = structlog.get_logger("voucherledger.sealer")

# Any constant works; it only has to be the same in every process.
_SEALER_LOCK_ID = 0x564C5345414C  # "VLSEAL"
_IN_CHUNK = 900
_PG_INSERT_SEALS = (
    "INSERT INTO ledger_seals (sequence, transaction_id, hash, block_height) "
    "SELECT u.sequence, u.transaction_id, u.hash, ? "
    "FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(sequence, transaction_id, hash)"
)
_PG_DEQUEUE = "DELETE FROM ledger_seal_queue WHERE transaction_id = ANY(?)"


@dataclass(frozen=True, slots=True)
class Head:
    height: int
    last_sequence: int
    hash: str


@dataclass(frozen=True, slots=True)
class BlockInfo:
    height: int
    first_sequence: int
    last_sequence: int
    prev_hash: str
    hash: str
    sealed_at: datetime
    signature: str
    public_key: str


def chain_head(session: Session) -> Head:
    row = session.execute(
        select(SealBlock.height, SealBlock.last_sequence, SealBlock.hash)
        .order_by(SealBlock.height.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return Head(0, 0, GENESIS_HASH)
    return Head(row.height, row.last_sequence, row.hash)


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in the seal queue: how many, and since when (None when empty)."""

    depth: int
    oldest: datetime | None


def backlog(session: Session) -> Backlog:
    """The seal queue's depth and its oldest transaction's time, for ``/metrics``."""
    row = session.execute(
        select(func.count(), func.min(JournalTransaction.created_at)).select_from(
            SealQueue.__table__.join(
                JournalTransaction.__table__,
                SealQueue.transaction_id == JournalTransaction.id,
            )
        )
    ).one()
    return Backlog(int(row[0]), row[1])


def latest_block(session: Session) -> BlockInfo | None:
    block = session.execute(
        select(SealBlock).order_by(SealBlock.height.desc()).limit(1)
    ).scalar_one_or_none()
    if block is None:
        return None
    return BlockInfo(
        block.height,
        block.first_sequence,
        block.last_sequence,
        block.prev_hash,
        block.hash,
        block.sealed_at,
        block.signature,
        block.public_key,
    )


def postings_by_transaction(session: Session, ids: list[str]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {txn_id: [] for txn_id in ids}
    for start in range(0, len(ids), _IN_CHUNK):
        rows = session.execute(
            select(
                Posting.transaction_id, Posting.account_code, Posting.amount, Posting.currency
            ).where(Posting.transaction_id.in_(ids[start : start + _IN_CHUNK]))
        )
        for txn_id, account, amount, currency in rows:
            out[txn_id].append({"account": account, "amount": amount, "currency": currency})
    return out


def record_of(
    txn: JournalTransaction, sequence: int, postings: list[dict[str, object]]
) -> dict[str, Any]:
    """The chained record of a stored transaction at its place in the chain."""
    return transaction_object(
        sequence=sequence,
        id=txn.id,
        kind=txn.kind,
        programme_id=txn.programme_id,
        actor=txn.actor,
        idempotency_key=txn.idempotency_key,
        created_at=txn.created_at,
        memo=txn.memo,
        metadata=txn.meta,
        postings=postings,
    )


def _take_lock(session: Session, wait: bool) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        session.connection()  # BEGIN IMMEDIATE: SQLite's write lock serialises sealers
        return True
    fn = func.pg_advisory_xact_lock if wait else func.pg_try_advisory_xact_lock
    result = session.execute(select(fn(_SEALER_LOCK_ID))).scalar()
    return wait or bool(result)


def seal_batch(
    session: Session, signer: Signer, *, batch_size: int = 5000, wait: bool = True
) -> BlockInfo | None:
    """Seal up to ``batch_size`` queued transactions as one block, in the caller's
    transaction. Returns the new block, or None when there was nothing to seal (or,
    with ``wait=False``, another sealer holds the lock). Raises
    :class:`SigningKeyNotRecorded` when ``signer`` is not the chain's current key."""
    if not _take_lock(session, wait):
        return None
    head = chain_head(session)
    first_key = keys.require_current(session, signer, head.height)
    queued = (
        session.execute(
            select(JournalTransaction)
            .join(SealQueue, SealQueue.transaction_id == JournalTransaction.id)
            .order_by(JournalTransaction.created_at, JournalTransaction.id)
            .limit(batch_size)
        )
        .scalars()
        .all()
    )
    if not queued:
        return None
    if first_key:
        keys.record_first(session, signer)
    ids = [txn.id for txn in queued]
    legs = postings_by_transaction(session, ids)
    height = head.height + 1
    sequence = head.last_sequence
    current = head.hash
    seal_rows = []
    for txn in queued:
        sequence += 1
        obj = record_of(txn, sequence, legs[txn.id])
        current = chain_hash(current, canonical_json(obj))
        seal_rows.append(
            {
                "sequence": sequence,
                "transaction_id": txn.id,
                "hash": current,
                "block_height": height,
            }
        )
    sealed_at = utcnow()
    block = block_object(
        height=height,
        first_sequence=head.last_sequence + 1,
        last_sequence=sequence,
        prev_hash=head.hash,
        hash=current,
        sealed_at=sealed_at,
    )
    signature = signer.sign(canonical_json(block))
    if session.get_bind().dialect.name == "postgresql":
        # One statement each, whatever the batch (an executemany was a statement per
        # seal, the sealer's largest cost per claim).
        with Raw(session) as db:
            db.execute(
                _PG_INSERT_SEALS,
                (
                    height,
                    [row["sequence"] for row in seal_rows],
                    [row["transaction_id"] for row in seal_rows],
                    [row["hash"] for row in seal_rows],
                ),
            )
            db.execute(_PG_DEQUEUE, (ids,))
    else:
        session.execute(insert(Seal), seal_rows)
        for start in range(0, len(ids), _IN_CHUNK):
            session.execute(
                delete(SealQueue).where(
                    SealQueue.transaction_id.in_(ids[start : start + _IN_CHUNK])
                )
            )
    session.execute(
        insert(SealBlock).values(
            height=height,
            first_sequence=head.last_sequence + 1,
            last_sequence=sequence,
            prev_hash=head.hash,
            hash=current,
            sealed_at=sealed_at,
            signature=signature,
            public_key=signer.public_key_hex,
        )
    )
    info = BlockInfo(
        height,
        head.last_sequence + 1,
        sequence,
        head.hash,
        current,
        sealed_at,
        signature,
        signer.public_key_hex,
    )
    # Every funder and auditor may hear of a new block: it covers every programme.
    events.emit(
        session,
        "seal.block_created",
        {"object": block_event_object(info)},
        kinds=("funder", "auditor"),
        at=sealed_at,
    )
    return info


def block_event_object(block: BlockInfo) -> dict[str, Any]:
    """A seal block as ``GET /v1/audit/checkpoint`` shows it (``CheckpointOut``)."""
    return {
        "format": BLOCK_FORMAT,
        "height": block.height,
        "first_sequence": block.first_sequence,
        "last_sequence": block.last_sequence,
        "prev_hash": block.prev_hash,
        "hash": block.hash,
        "sealed_at": block.sealed_at.isoformat().replace("+00:00", "Z"),
        "signature": block.signature,
        "public_key": block.public_key,
    }


def rotate_signing_key(
    session: Session, signer: Signer, *, previous: Signer | None, reason: str | None
) -> keys.Rotation:
    """Record ``signer`` as the chain's signing key from the next block on, endorsed by
    ``previous`` (the current key) or, without it, explained by ``reason``; in the
    caller's transaction, under the sealer's lock so no block is sealed meanwhile."""
    _take_lock(session, wait=True)
    return keys.record_rotation(
        session, signer, chain_head(session).height, previous=previous, reason=reason
    )


def seal_pending(
    factory: sessionmaker[Session], signer: Signer, *, batch_size: int = 5000, wait: bool = True
) -> int:
    """Seal everything queued, one committed block per batch. Returns how many."""
    total = 0
    while True:
        with factory() as session:
            block = seal_batch(session, signer, batch_size=batch_size, wait=wait)
            session.commit()
        if block is None:
            return total
        total += block.last_sequence - block.first_sequence + 1
        if block.last_sequence - block.first_sequence + 1 < batch_size:
            return total


class BackgroundSealer:
    """Runs :func:`seal_pending` about every ``interval`` seconds in a daemon thread."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        signer: Signer,
        *,
        interval: float,
        batch_size: int,
    ) -> None:
        self._factory = factory
        self._signer = signer
        self._interval = interval
        self._batch_size = batch_size
        self._refused: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voucherledger-sealer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                sealed = seal_pending(
                    self._factory, self._signer, batch_size=self._batch_size, wait=False
                )
                if sealed:
                    log.debug("sealed", count=sealed)
                self._refused = None
            except SigningKeyNotRecorded as exc:  # logged once, not every interval
                if str(exc) != self._refused:
                    self._refused = str(exc)
                    log.error("sealing_refused", reason=str(exc))
            except Exception:  # keep sealing after a transient database error
                log.exception("sealer_failed")
            try:
                # Number the events committed since (the webhook worker and every read
                # of the feed do it too; whoever comes first).
                events.sequence_pending(self._factory)
            except Exception:
                log.exception("event_sequencing_failed")
