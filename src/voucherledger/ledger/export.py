"""The chain as a JSON Lines file that anyone can verify offline (``voucherledger verify``).

One line per chain position, in sequence order, from 1 to the head:

- ``{"type": "transaction", <the chained record>, "prev_hash", "hash", "block_height"}``
  for every transaction the export covers (the record's fields are exactly those of
  docs/ledger-format.md, so dropping ``type``, ``prev_hash``, ``hash`` and
  ``block_height`` gives back the object whose canonical bytes are chained);
- ``{"type": "redacted", "sequence", "prev_hash", "hash"}`` for a position the export
  does not cover (another programme's, or outside the period): its content stays
  private, but the chain still runs through it, so nothing can be left out unseen;
- ``{"type": "block", <the signed block object>, "signature", "public_key"}`` after the
  last position of each seal block;
- last, ``{"type": "manifest", ...}``: what the export covers, how many transactions,
  the totals per currency, the head it ends at, the signing key history
  (``signing_keys``: which key signs which blocks, with each rotation's
  endorsement) — signed with the chain's current key, so a truncated or edited
  file cannot pass.

It streams from the database in keyset chunks: memory stays flat whatever its size.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Connection, DateTime, Text, case, cast, func, null, select, type_coerce
from sqlalchemy.orm import Session

from voucherledger.core.db import utcnow
from voucherledger.ledger.canonical import (
    GENESIS_HASH,
    canonical_json,
    format_timestamp,
    json_plain,
    stored_block_object,
    transaction_object,
)
from voucherledger.ledger.keys import key_history
from voucherledger.ledger.models import JournalTransaction, Posting, Seal, SealBlock
from voucherledger.ledger.signing import Signer

MANIFEST_FORMAT = "voucherledger-export-v1"
NOT_CHAINED = ("type", "prev_hash", "hash", "block_height")


@dataclass(frozen=True, slots=True)
class Scope:
    """Which transactions an export shows in full; the rest are redacted."""

    programme_ids: frozenset[str] | None  # None: every programme (and none)
    since: datetime | None = None
    until: datetime | None = None

    def covers(self, programme_id: str | None, created_at: datetime) -> bool:
        if self.programme_ids is not None and programme_id not in self.programme_ids:
            return False
        if self.since is not None and created_at < self.since:
            return False
        return self.until is None or created_at <= self.until


def chain_lines(
    factory: Callable[[], Session], scope: Scope, signer: Signer, *, chunk: int = 5000
) -> Generator[dict[str, Any], None, None]:
    """Every line of the export as a dict, in order, manifest last (see
    :func:`_chain_items`)."""
    for line, _plain in _chain_items(factory, scope, signer, chunk=chunk):
        yield line


def chain_jsonl(
    factory: Callable[[], Session],
    scope: Scope,
    signer: Signer,
    *,
    chunk: int = 5000,
    flush_at: int = 1 << 18,
) -> Iterator[bytes]:
    """:func:`jsonl_bytes` of :func:`chain_lines`, without walking the lines known to
    be :func:`json_plain` from the columns they were built of."""
    return _jsonl_pieces(
        (
            _plain_bytes(line) if plain else line_bytes(line)
            for line, plain in _chain_items(factory, scope, signer, chunk=chunk)
        ),
        flush_at,
    )


def _chain_items(
    factory: Callable[[], Session], scope: Scope, signer: Signer, *, chunk: int
) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every line of the export as a dict, in order, manifest last; each with whether it
    is known to be :func:`json_plain` (its metadata and postings parsed plain, its
    other columns str, None or int within 64 bits: then orjson writes it as json does).

    Each chunk is one query of plain columns (no ORM objects): the chunk's seals with
    their transactions and, for the scope's programmes, their postings
    (:func:`_read_chunk`). A thread reads the next chunk while this one is
    turned into lines (:func:`_read_ahead`; the session's connection is used by that
    thread alone meanwhile). The records are built by the sealer's own
    :func:`transaction_object`, so they are exactly what was chained."""
    count = 0
    totals: dict[str, int] = defaultdict(int)
    prev_hash = GENESIS_HASH
    prev_plain = True
    last_sequence = 0
    height = 0
    programmes = scope.programme_ids
    since, until = _naive_utc(scope.since), _naive_utc(scope.until)
    with factory() as session:
        # Core execution: plain rows, none of the ORM's per-row loading machinery.
        connection = session.connection()
        signing_keys = [record.as_line() for record in key_history(session)]
        blocks = {
            row.last_sequence: row
            for row in connection.execute(
                select(
                    SealBlock.height,
                    SealBlock.first_sequence,
                    SealBlock.last_sequence,
                    SealBlock.prev_hash,
                    SealBlock.hash,
                    SealBlock.sealed_at,
                    SealBlock.signature,
                    SealBlock.public_key,
                )
            )
        }
        chunks = _read_ahead(partial(_read_chunk, connection, scope, chunk))
        try:
            for rows in chunks:
                for (
                    sequence,
                    seal_hash,
                    block_height,
                    txn_id,
                    kind,
                    programme_id,
                    actor,
                    idempotency_key,
                    created_at,
                    memo,
                    meta,
                    legs,
                    scalars_plain,
                    values_plain,
                ) in rows:
                    if (
                        (programmes is None or programme_id in programmes)
                        and (since is None or created_at >= since)
                        and (until is None or created_at <= until)
                    ):  # Scope.covers, in naive UTC
                        postings = [
                            {"account": account, "amount": amount, "currency": currency}
                            for account, amount, currency in legs or ()
                        ]
                        record = transaction_object(
                            sequence=sequence,
                            id=txn_id,
                            kind=kind,
                            programme_id=programme_id,
                            actor=actor,
                            idempotency_key=idempotency_key,
                            created_at=_utc_text(created_at),
                            memo=memo,
                            metadata=meta,
                            postings=postings,
                        )
                        count += 1
                        for leg in postings:
                            amount = leg["amount"]
                            if isinstance(amount, int) and amount > 0:
                                totals[str(leg["currency"])] += amount
                        yield (
                            {
                                "type": "transaction",
                                **record,
                                "prev_hash": prev_hash,
                                "hash": seal_hash,
                                "block_height": block_height,
                            },
                            scalars_plain and values_plain and prev_plain,
                        )
                    else:
                        yield (
                            {
                                "type": "redacted",
                                "sequence": sequence,
                                "prev_hash": prev_hash,
                                "hash": seal_hash,
                            },
                            scalars_plain and prev_plain,
                        )
                    prev_hash = seal_hash
                    prev_plain = scalars_plain
                    last_sequence = sequence
                    block = blocks.get(sequence)
                    if block is not None:
                        height = block.height
                        yield (
                            {
                                "type": "block",
                                **stored_block_object(block),
                                "signature": block.signature,
                                "public_key": block.public_key,
                            },
                            False,
                        )
        finally:
            chunks.close()  # the reading thread is done before the session closes
    manifest: dict[str, Any] = {
        "type": "manifest",
        "format": MANIFEST_FORMAT,
        "programme_ids": sorted(scope.programme_ids) if scope.programme_ids is not None else None,
        "since": format_timestamp(scope.since) if scope.since else None,
        "until": format_timestamp(scope.until) if scope.until else None,
        "transactions": count,
        "credits_by_currency": dict(sorted(totals.items())),
        "last_sequence": last_sequence,
        "block_height": height,
        "head_hash": prev_hash,
        "exported_at": format_timestamp(utcnow()),
        "public_key": signer.public_key_hex,
        "signing_keys": signing_keys,
    }
    manifest["signature"] = signer.sign(canonical_json(_unsigned(manifest)))
    yield manifest, False


def _utc_text(value: datetime) -> str:
    """:func:`format_timestamp` of a naive UTC timestamp (as the column holds it):
    ``isoformat`` where that is the same text (it pads the year to four digits,
    strftime's ``%Y`` may not)."""
    if value.year >= 1000:
        return value.isoformat(timespec="microseconds") + "Z"
    return format_timestamp(value.replace(tzinfo=UTC))


def _naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


Row = tuple[Any, ...]
Chunk = list[Row]


def _read_chunk(connection: Connection, scope: Scope, chunk: int, after: int) -> Chunk:
    """The seals after ``after`` (at most ``chunk``) with their transactions: each row
    its columns, its metadata and its postings (``[account, amount, currency]`` legs,
    only for the scope's programmes, else None) parsed from their JSON text by
    :func:`_json_value`. One query: the legs are aggregated per transaction in SQL
    (``json_agg`` on PostgreSQL, ``json_group_array`` on SQLite), their order left to
    :func:`~voucherledger.ledger.canonical.sort_postings`."""
    legs: Any
    if connection.dialect.name == "postgresql":
        legs = cast(
            func.json_agg(
                func.json_build_array(Posting.account_code, Posting.amount, Posting.currency)
            ),
            Text,
        )
    else:
        legs = func.json_group_array(
            func.json_array(Posting.account_code, Posting.amount, Posting.currency)
        )
    legs_of = (
        select(legs)
        .where(Posting.transaction_id == JournalTransaction.id)
        .correlate(JournalTransaction)
        .scalar_subquery()
    )
    postings: Any = legs_of
    if scope.programme_ids is not None:
        postings = case(
            (JournalTransaction.programme_id.in_(sorted(scope.programme_ids)), legs_of),
            else_=null(),
        )
    rows = connection.execute(
        select(
            Seal.sequence,
            Seal.hash,
            Seal.block_height,
            JournalTransaction.id,
            JournalTransaction.kind,
            JournalTransaction.programme_id,
            JournalTransaction.actor,
            JournalTransaction.idempotency_key,
            # Naive UTC as stored, without UTCDateTime's per-row step (see _utc_text).
            type_coerce(JournalTransaction.created_at, DateTime()),
            JournalTransaction.memo,
            cast(JournalTransaction.meta, Text),
            postings,
        )
        .join(JournalTransaction, JournalTransaction.id == Seal.transaction_id)
        .where(Seal.sequence > after)
        .order_by(Seal.sequence)
        .limit(chunk)
    ).all()
    out = []
    for row in rows:
        meta, meta_plain = _json_value(row[10])
        legs, legs_plain = _legs_value(row[11])
        created_at = row[8]
        if created_at.tzinfo is not None:  # not as stored; made naive UTC all the same
            created_at = created_at.astimezone(UTC).replace(tzinfo=None)
        # Every column but created_at (written as text) goes into the lines.
        scalars = (*row[:8], row[9])
        out.append(
            (
                *row[:8],
                created_at,
                row[9],
                meta,
                legs,
                _scalars_plain(scalars),
                meta_plain and legs_plain,
            )
        )
    return out


def _legs_value(text: str | None) -> tuple[Any, bool]:
    """:func:`_json_value` of the aggregated legs; plain when each is ``[str, int, str]``
    (checked here without :func:`json_plain`'s walk)."""
    if text is None:
        return None, True
    try:
        legs = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text), False
    if type(legs) is list:
        for leg in legs:
            if not (
                type(leg) is list
                and len(leg) == 3
                and type(leg[0]) is str
                and type(leg[1]) is int
                and -_INT_LIMIT < leg[1] < _INT_LIMIT
                and type(leg[2]) is str
            ):
                break
        else:
            return legs, True
    return _json_value(text)


_INT_LIMIT = 1 << 63


def _scalars_plain(values: tuple[Any, ...]) -> bool:
    for value in values:
        kind = type(value)
        if kind is str or value is None or (kind is int and -_INT_LIMIT < value < _INT_LIMIT):
            continue
        return False
    return True


def _json_value(text: str | None) -> tuple[Any, bool]:
    """``json.loads(text)`` (None for SQL NULL), and whether it is :func:`json_plain`.
    By orjson where its value is the same: when it parses the text and the value is
    plain (orjson refuses NaN and lone surrogates, reads integers past 64 bits as
    floats; then json decides)."""
    if text is None:
        return None, True
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text), False
    if json_plain(value):
        return value, True
    return json.loads(text), False


def _read_ahead(read: Callable[[int], Chunk], depth: int = 2) -> Generator[Chunk, None, None]:
    """The chunks ``read`` gives (after sequence 0, then after each chunk's last), read by
    a thread at most ``depth`` chunks ahead, so the next queries overlap the current
    chunk's encoding. Closing the generator stops the thread and waits for it; an error
    in the thread is raised here."""
    out: queue.Queue[Chunk | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Chunk | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        after = 0
        try:
            while not stop.is_set():
                rows = read(after)
                if not rows:
                    break
                if not put(rows):
                    return
                after = rows[-1][0]
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
            return
        put(None)

    reader = threading.Thread(target=run, name="export-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _unsigned(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "signature"}


# What ``json.dumps(line, separators=(",", ":"), ensure_ascii=False)`` builds on every
# call, made once: the encoder of a line orjson would not write identically.
_LINE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# U+0085, U+2028, U+2029 in UTF-8 (these byte runs are those characters and nothing
# else: UTF-8 is self-synchronising) and their escapes, as core.exporttext.json_line.
_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def line_bytes(line: dict[str, Any]) -> bytes:
    """One line's JSON (keys in insertion order), UTF-8: orjson's bytes where they are
    the standard encoder's (:func:`~voucherledger.ledger.canonical.json_plain`), else
    the standard encoder's (floats, huge integers; a lone surrogate raises as before)."""
    if json_plain(line):
        try:
            return orjson.dumps(line)
        except orjson.JSONEncodeError:
            pass
    return _LINE_ENCODER.encode(line).encode()


def _plain_bytes(line: dict[str, Any]) -> bytes:
    """:func:`line_bytes` of a line known to be :func:`json_plain`."""
    try:
        return orjson.dumps(line)
    except orjson.JSONEncodeError:  # a lone surrogate: raises as it always did
        return _LINE_ENCODER.encode(line).encode()


def jsonl_bytes(lines: Iterator[dict[str, Any]], *, flush_at: int = 1 << 18) -> Iterator[bytes]:
    """The lines as JSON Lines, in pieces of about ``flush_at`` bytes.

    U+0085, U+2028 and U+2029 (line boundaries to some readers, ``str.splitlines``
    among them) are written as ``\\u`` escapes, so every reader sees one record per
    line; they parse back to the same strings, whose canonical bytes (which carry
    them as UTF-8) are what the chain hashes (docs/ledger-format.md)."""
    return _jsonl_pieces(map(line_bytes, lines), flush_at)


def _jsonl_pieces(encoded: Iterator[bytes], flush_at: int) -> Iterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    for data in encoded:
        buffer.append(data)
        size += len(data)
        if size >= flush_at:
            buffer.append(b"")
            yield _escape_breaks(b"\n".join(buffer))
            buffer = []
            size = 0
    if buffer:
        buffer.append(b"")
        yield _escape_breaks(b"\n".join(buffer))


def _escape_breaks(data: bytes) -> bytes:
    if data.isascii():
        return data
    for raw, escaped in _BREAKS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def chained_record(line: dict[str, Any]) -> dict[str, Any]:
    """The record whose canonical bytes are chained, from a transaction line."""
    return {k: v for k, v in line.items() if k not in NOT_CHAINED}


def unsigned_manifest(line: dict[str, Any]) -> dict[str, Any]:
    return _unsigned(line)
