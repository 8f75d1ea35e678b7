"""Recomputing the seal chain: from the database, or from any stream of records.

:class:`ChainVerifier` takes transaction objects (as :func:`transaction_object`
builds them, which is also one line of a jsonl export) in sequence order, and
seal blocks, and reports the first place where the chain does not hold. It
needs no database, so the offline ``voucherledger verify`` uses it as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voucherledger.ledger.canonical import (
    GENESIS_HASH,
    block_object,
    canonical_json,
    chain_hash,
)
from voucherledger.ledger.models import JournalTransaction, Posting, Seal, SealBlock, SealQueue
from voucherledger.ledger.sealer import postings_by_transaction, record_of
from voucherledger.ledger.signing import verify_signature


class ChainBroken(Exception):
    def __init__(
        self, reason: str, *, sequence: int | None = None, transaction_id: str | None = None
    ) -> None:
        where = []
        if sequence is not None:
            where.append(f"sequence {sequence}")
        if transaction_id is not None:
            where.append(f"transaction {transaction_id}")
        super().__init__(f"{', '.join(where) or 'chain'}: {reason}")
        self.reason = reason
        self.sequence = sequence
        self.transaction_id = transaction_id


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int
    head_hash: str
    error: ChainBroken | None = None


class ChainVerifier:
    """Feeds on records in sequence order; raises :class:`ChainBroken` at the first fault."""

    def __init__(
        self,
        *,
        start_sequence: int = 0,
        start_hash: str = GENESIS_HASH,
        public_key: str | None = None,
    ) -> None:
        self.sequence = start_sequence
        self.hash = start_hash
        self.count = 0
        self.public_key = public_key

    def add_transaction(self, obj: Mapping[str, Any], stored_hash: str | None = None) -> str:
        sequence = obj.get("sequence")
        txn_id = obj.get("id")
        if sequence != self.sequence + 1:
            raise ChainBroken(
                f"expected sequence {self.sequence + 1}, found {sequence}",
                sequence=sequence if isinstance(sequence, int) else None,
                transaction_id=txn_id if isinstance(txn_id, str) else None,
            )
        new_hash = chain_hash(self.hash, canonical_json(obj))
        if stored_hash is not None and stored_hash != new_hash:
            raise ChainBroken(
                "content does not match its seal hash",
                sequence=sequence,
                transaction_id=txn_id if isinstance(txn_id, str) else None,
            )
        self.sequence = sequence
        self.hash = new_hash
        self.count += 1
        return new_hash

    def check_block(self, block: Mapping[str, Any], signature: str, public_key: str) -> None:
        """Check a block whose last sequence has just been added."""
        height = block["height"]
        if block["last_sequence"] != self.sequence or block["hash"] != self.hash:
            raise ChainBroken(
                f"block {height} does not end at the recomputed head", sequence=self.sequence
            )
        if self.public_key is not None and public_key != self.public_key:
            raise ChainBroken(f"block {height} is signed by an unexpected key")
        if not verify_signature(public_key, canonical_json(dict(block)), signature):
            raise ChainBroken(f"block {height} has an invalid signature")


def verify_database(
    session: Session, *, public_key: str | None = None, chunk: int = 2000
) -> VerifyResult:
    """Recompute every seal and block signature stored in the database."""
    verifier = ChainVerifier(public_key=public_key)
    blocks = {b.last_sequence: b for b in session.execute(select(SealBlock)).scalars()}
    try:
        after = 0
        while True:
            rows = session.execute(
                select(Seal.sequence, Seal.hash, JournalTransaction)
                .join(JournalTransaction, JournalTransaction.id == Seal.transaction_id)
                .where(Seal.sequence > after)
                .order_by(Seal.sequence)
                .limit(chunk)
            ).all()
            if not rows:
                break
            legs = postings_by_transaction(session, [row[2].id for row in rows])
            for sequence, stored_hash, txn in rows:
                verifier.add_transaction(record_of(txn, sequence, legs[txn.id]), stored_hash)
                block = blocks.pop(sequence, None)
                if block is not None:
                    verifier.check_block(
                        block_object(
                            height=block.height,
                            first_sequence=block.first_sequence,
                            last_sequence=block.last_sequence,
                            prev_hash=block.prev_hash,
                            hash=block.hash,
                            sealed_at=block.sealed_at,
                        ),
                        block.signature,
                        block.public_key,
                    )
            after = rows[-1][0]
        if blocks:
            raise ChainBroken(
                f"blocks {sorted(b.height for b in blocks.values())} cover sequences with no seal"
            )
        # A posting's created_at is a copy of its transaction's (for as-of balances) and
        # not part of the canonical bytes: it must still equal the sealed original.
        moved = session.execute(
            select(Posting.transaction_id)
            .join(JournalTransaction, JournalTransaction.id == Posting.transaction_id)
            .where(Posting.created_at != JournalTransaction.created_at)
            .order_by(Posting.transaction_id)
            .limit(1)
        ).scalar_one_or_none()
        if moved is not None:
            raise ChainBroken(
                "a posting's created_at differs from its transaction's", transaction_id=moved
            )
        total = session.execute(select(func.count()).select_from(JournalTransaction)).scalar_one()
        queued = session.execute(select(func.count()).select_from(SealQueue)).scalar_one()
        if total != verifier.count + queued:
            raise ChainBroken(
                f"{total} transactions, but {verifier.count} sealed and {queued} queued"
            )
    except ChainBroken as exc:
        return VerifyResult(False, verifier.count, verifier.hash, exc)
    return VerifyResult(True, verifier.count, verifier.hash)
