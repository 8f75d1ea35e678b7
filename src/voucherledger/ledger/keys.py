"""The signing key history: which Ed25519 keys sign the seal chain, from which block.

``ledger_signing_keys`` is append-only. Entry 1 is the key of block 1, recorded by
the first seal; each later entry is a rotation, effective from the block after the
chain's head when it was recorded, and carries the previous key's **endorsement** —
its Ed25519 signature over the canonical bytes of
``{"format": "voucherledger-signing-key-v1", "public_key", "previous_public_key",
"first_height"}`` — or, when the previous key was lost, an ``unendorsed_reason``.
A block at height h must be signed by the last entry whose ``first_height`` <= h.
See ``docs/ledger-format.md#signing-keys``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from voucherledger.core.db import utcnow
from voucherledger.ledger.canonical import canonical_json, format_timestamp
from voucherledger.ledger.errors import KeyRotationRefused, SigningKeyNotRecorded
from voucherledger.ledger.models import SigningKey
from voucherledger.ledger.signing import Signer, verify_signature

KEY_FORMAT = "voucherledger-signing-key-v1"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    position: int
    public_key: str
    first_height: int
    recorded_at: datetime | str  # a string when read from an export
    endorsement: str | None
    unendorsed_reason: str | None

    def as_line(self) -> dict[str, Any]:
        """The entry as the export's manifest carries it."""
        recorded = self.recorded_at
        return {
            "position": self.position,
            "public_key": self.public_key,
            "first_height": self.first_height,
            "recorded_at": format_timestamp(recorded)
            if isinstance(recorded, datetime)
            else recorded,
            "endorsement": self.endorsement,
            "unendorsed_reason": self.unendorsed_reason,
        }

    @classmethod
    def from_line(cls, line: Mapping[str, Any]) -> KeyRecord:
        position, first_height = line.get("position"), line.get("first_height")
        public_key = line.get("public_key")
        if (
            not isinstance(position, int)
            or not isinstance(first_height, int)
            or not isinstance(public_key, str)
        ):
            raise ValueError("a signing key entry needs position, public_key and first_height")
        endorsement, reason = line.get("endorsement"), line.get("unendorsed_reason")
        return cls(
            position,
            public_key,
            first_height,
            str(line.get("recorded_at")),
            endorsement if isinstance(endorsement, str) else None,
            reason if isinstance(reason, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Rotation:
    record: KeyRecord
    previous: KeyRecord | None
    already_current: bool = False


def endorsement_message(*, public_key: str, previous_public_key: str, first_height: int) -> bytes:
    """What the previous key signs to endorse its successor."""
    return canonical_json(
        {
            "format": KEY_FORMAT,
            "public_key": public_key,
            "previous_public_key": previous_public_key,
            "first_height": first_height,
        }
    )


def key_history(session: Session) -> list[KeyRecord]:
    rows = session.execute(select(SigningKey).order_by(SigningKey.position)).scalars()
    return [
        KeyRecord(
            row.position,
            row.public_key,
            row.first_height,
            row.recorded_at,
            row.endorsement,
            row.unendorsed_reason,
        )
        for row in rows
    ]


def current_key(session: Session) -> KeyRecord | None:
    history = key_history(session)
    return history[-1] if history else None


def key_for_height(history: Sequence[KeyRecord], height: int) -> KeyRecord | None:
    """The entry whose key must sign the block at ``height``."""
    found = None
    for record in history:
        if record.first_height <= height:
            found = record
    return found


def history_fault(history: Sequence[KeyRecord]) -> str | None:
    """What is wrong with a history, or None: positions 1, 2, 3, ...; the first from
    block 1; first heights never going back; each later key endorsed by the one
    before it (the signature verifies) or its absence explained."""
    previous: KeyRecord | None = None
    for index, record in enumerate(history, start=1):
        if record.position != index:
            return f"the signing key history has entry {record.position} where {index} belongs"
        if previous is None:
            if record.first_height != 1:
                return f"the first signing key starts at block {record.first_height}, not 1"
        else:
            if record.first_height < previous.first_height:
                return f"signing key {record.public_key} starts before the key it replaces"
            if record.endorsement is not None:
                message = endorsement_message(
                    public_key=record.public_key,
                    previous_public_key=previous.public_key,
                    first_height=record.first_height,
                )
                if not verify_signature(previous.public_key, message, record.endorsement):
                    return (
                        f"signing key {record.public_key} carries an endorsement that "
                        f"{previous.public_key} did not sign"
                    )
            elif not record.unendorsed_reason:
                return f"signing key {record.public_key} is neither endorsed nor explained"
        previous = record
    return None


def require_current(session: Session, signer: Signer, head_height: int) -> bool:
    """Refuse (:class:`SigningKeyNotRecorded`) a signer that is not the chain's current
    key. Returns True when the history is empty and ``signer`` would be its first key
    (the caller records it with :func:`record_first` when it seals block 1)."""
    current = current_key(session)
    if current is None:
        if head_height > 0:
            raise SigningKeyNotRecorded(signer.public_key_hex, None, 0)
        return True
    if current.public_key != signer.public_key_hex:
        raise SigningKeyNotRecorded(signer.public_key_hex, current.public_key, current.first_height)
    return False


def record_first(session: Session, signer: Signer) -> None:
    _insert(session, position=1, public_key=signer.public_key_hex, first_height=1)


def record_rotation(
    session: Session,
    signer: Signer,
    head_height: int,
    *,
    previous: Signer | None,
    reason: str | None,
) -> Rotation:
    """Record ``signer`` as the key from the block after ``head_height`` on. The caller
    holds the sealer's lock, so no block is sealed in between."""
    history = key_history(session)
    if not history:
        if head_height > 0:
            raise KeyRotationRefused(
                "the chain has blocks but no signing key history: run `voucherledger db upgrade`"
            )
        _insert(session, position=1, public_key=signer.public_key_hex, first_height=1)
        return Rotation(key_history(session)[0], None)
    current = history[-1]
    if current.public_key == signer.public_key_hex:
        return Rotation(current, history[-2] if len(history) > 1 else None, already_current=True)
    if any(record.public_key == signer.public_key_hex for record in history):
        raise KeyRotationRefused(
            f"key {signer.public_key_hex} signed this chain before and was replaced; "
            "a retired key is never brought back: use a new key"
        )
    first_height = head_height + 1
    endorsement = None
    if previous is not None:
        if previous.public_key_hex != current.public_key:
            raise KeyRotationRefused(
                f"the previous key given is {previous.public_key_hex}, but the chain's "
                f"current signing key is {current.public_key}"
            )
        endorsement = previous.sign(
            endorsement_message(
                public_key=signer.public_key_hex,
                previous_public_key=current.public_key,
                first_height=first_height,
            )
        )
    elif not (reason and reason.strip()):
        raise KeyRotationRefused(
            f"without the previous key ({current.public_key}) to endorse the new one, "
            "give the reason it is not available (--reason)"
        )
    _insert(
        session,
        position=current.position + 1,
        public_key=signer.public_key_hex,
        first_height=first_height,
        endorsement=endorsement,
        unendorsed_reason=None if endorsement else (reason or "").strip(),
    )
    return Rotation(key_history(session)[-1], current)


def _insert(
    session: Session,
    *,
    position: int,
    public_key: str,
    first_height: int,
    endorsement: str | None = None,
    unendorsed_reason: str | None = None,
) -> None:
    session.execute(
        insert(SigningKey).values(
            public_key=public_key,
            position=position,
            first_height=first_height,
            recorded_at=utcnow(),
            endorsement=endorsement,
            unendorsed_reason=unendorsed_reason,
        )
    )
