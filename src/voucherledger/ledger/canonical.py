"""The canonical bytes of journal transactions and seal blocks, and the chain hash.

This module is the whole definition of the tamper-evident format: the sealer,
the offline verifier and ``docs/ledger-format.md`` all follow it. It has no
database or HTTP dependency so a verifier can use it on an export file alone.

- A transaction's canonical bytes are the UTF-8 encoding of its JSON object
  with keys sorted, no insignificant white space, integers for amounts and
  RFC 3339 UTC timestamps with six fractional digits and a ``Z``. For the data
  the ledger accepts (no floats, integers within +-(2**53 - 1)) this is the
  RFC 8785 (JCS) serialisation.
- ``hash_n = SHA-256(bytes(hash_{n-1}) || canonical_bytes(transaction_n))``,
  with ``hash_0`` 32 zero bytes; hashes are written as 64 lowercase hex digits.
- A block's signature is Ed25519 over the canonical bytes of the block object.

The bytes are made by ``orjson`` where its output is proven byte-identical to the
standard library's (:func:`json_plain`: str, exact int within 64 bits, bool, None,
lists, tuples and dicts with str keys, nested at most :data:`PLAIN_DEPTH` deep;
``tests/ledger/test_canonical_orjson.py``); anything else (floats, huge integers,
subclasses, lone surrogates, other types) goes to the standard library's encoder, so
it gives the same bytes or raises the same error as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from voucherledger.core.money import MAX_SAFE_INTEGER as MAX_SAFE_INTEGER

GENESIS_HASH = "0" * 64
BLOCK_FORMAT = "voucherledger-seal-block-v1"


def format_timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> datetime:
    if not value.endswith("Z"):
        raise ValueError(f"timestamp {value!r} is not UTC")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# Exactly the encoder ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False, allow_nan=False)`` builds on every call, built once (it keeps no
# state between calls, so threads may share it).
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


# The values orjson writes exactly as json does (both print ints in decimal; orjson
# refuses ints beyond 64 bits, and writes NaN as null where json raises).
_INT_LIMIT = 1 << 63
# orjson refuses to write more than 254 levels; json goes on to the recursion limit.
PLAIN_DEPTH = 200
_SORTED = orjson.OPT_SORT_KEYS


def json_plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` holds only the types whose JSON orjson writes byte for byte as
    ``json`` does: str, int (not bool) within +-2**63, bool, None, and list, tuple and
    dict (str keys) of those, at most ``PLAIN_DEPTH`` containers deep. Exact types, no
    subclasses. (Lone surrogates pass here; orjson then raises, see :func:`canonical_json`.)
    Scalars inside a container are checked in its loop, without a call each."""
    kind = type(value)
    if kind is dict:
        if depth >= PLAIN_DEPTH or any(type(key) is not str for key in value):
            return False
        items: Iterable[Any] = value.values()
    elif kind is list or kind is tuple:
        if depth >= PLAIN_DEPTH:
            return False
        items = value
    elif kind is str or kind is bool or value is None:
        return True
    elif kind is int:
        return bool(-_INT_LIMIT < value < _INT_LIMIT)
    else:
        return False
    for item in items:
        item_kind = type(item)
        if item_kind is str or item is None or item_kind is bool:
            continue
        if item_kind is int:
            if -_INT_LIMIT < item < _INT_LIMIT:
                continue
            return False
        if not json_plain(item, depth + 1):
            return False
    return True


def canonical_json(obj: Any) -> bytes:
    if json_plain(obj):
        return canonical_plain(obj)
    return _CANONICAL_ENCODER.encode(obj).encode("utf-8")


def canonical_plain(obj: Any) -> bytes:
    """:func:`canonical_json` of a value :func:`json_plain` accepts (the caller has
    checked): orjson's bytes, or the standard encoder's when orjson refuses a string
    (a lone surrogate, which UTF-8 cannot encode: that raises as it always did)."""
    try:
        return orjson.dumps(obj, option=_SORTED)
    except orjson.JSONEncodeError:
        return _CANONICAL_ENCODER.encode(obj).encode("utf-8")


def check_canonical_value(value: Any, path: str = "metadata") -> None:
    """Refuse values with no exact canonical form (floats, huge integers, odd types)."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"{path}: integer {value} is outside +-(2**53 - 1)")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings")
            check_canonical_value(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_canonical_value(item, f"{path}[{index}]")
        return
    raise ValueError(f"{path}: {type(value).__name__} values are not allowed (no floats)")


def sort_postings(postings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    legs = [
        {"account": p["account"], "amount": p["amount"], "currency": p["currency"]}
        for p in postings
    ]
    legs.sort(key=lambda p: (p["account"], p["currency"], p["amount"]))
    return legs


def transaction_object(
    *,
    sequence: int,
    id: str,
    kind: str,
    programme_id: str | None,
    actor: str | None,
    idempotency_key: str | None,
    created_at: datetime | str,
    memo: str | None,
    metadata: Mapping[str, Any] | None,
    postings: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """The object whose canonical bytes are chained; also one line of a jsonl export."""
    return {
        "sequence": sequence,
        "id": id,
        "kind": kind,
        "programme_id": programme_id,
        "actor": actor,
        "idempotency_key": idempotency_key,
        "created_at": created_at if isinstance(created_at, str) else format_timestamp(created_at),
        "memo": memo,
        "metadata": dict(metadata or {}),
        "postings": sort_postings(postings),
    }


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()


def block_object(
    *,
    height: int,
    first_sequence: int,
    last_sequence: int,
    prev_hash: str,
    hash: str,
    sealed_at: datetime | str,
) -> dict[str, Any]:
    return {
        "format": BLOCK_FORMAT,
        "height": height,
        "first_sequence": first_sequence,
        "last_sequence": last_sequence,
        "prev_hash": prev_hash,
        "hash": hash,
        "sealed_at": sealed_at if isinstance(sealed_at, str) else format_timestamp(sealed_at),
    }


class StoredBlock(Protocol):
    """A seal block as stored (a ``SealBlock`` row, or the sealer's ``BlockInfo``)."""

    @property
    def height(self) -> int: ...
    @property
    def first_sequence(self) -> int: ...
    @property
    def last_sequence(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def sealed_at(self) -> datetime: ...


def stored_block_object(block: StoredBlock) -> dict[str, Any]:
    """:func:`block_object` of a stored block: the object its signature covers."""
    return block_object(
        height=block.height,
        first_sequence=block.first_sequence,
        last_sequence=block.last_sequence,
        prev_hash=block.prev_hash,
        hash=block.hash,
        sealed_at=block.sealed_at,
    )
