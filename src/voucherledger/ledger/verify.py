"""Recomputing the seal chain: from the database, or from any stream of records.

:class:`ChainVerifier` takes transaction objects (as :func:`transaction_object`
builds them, which is also one line of a jsonl export) in sequence order, and
seal blocks, and reports the first place where the chain does not hold. It
needs no database, so the offline ``voucherledger verify`` uses it as well.

Every block is checked against the signing key history (``ledger/keys.py``) where
one is known — the database's, or the one an export's manifest carries — and
against the keys the caller trusts, when given. The result lists each key with the
blocks it signed.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voucherledger.ledger.canonical import (
    GENESIS_HASH,
    canonical_json,
    canonical_plain,
    chain_hash,
    json_plain,
    stored_block_object,
)
from voucherledger.ledger.export import MANIFEST_FORMAT, NOT_CHAINED, unsigned_manifest
from voucherledger.ledger.keys import KeyRecord, history_fault, key_for_height, key_history
from voucherledger.ledger.models import JournalTransaction, Posting, Seal, SealBlock, SealQueue
from voucherledger.ledger.sealer import postings_by_transaction, record_of
from voucherledger.ledger.signing import verify_signature

# 64 hexadecimal digits: what bytes.fromhex takes back to the 32 bytes of a SHA-256.
_HASH = re.compile("[0-9a-fA-F]{64}")


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
class KeyRange:
    """A signing key and the blocks it signed (``None``: none yet)."""

    public_key: str
    first_height: int | None
    last_height: int | None
    endorsed_by: str | None  # the previous key, when it endorsed this one
    unendorsed_reason: str | None

    def describe(self) -> str:
        blocks = (
            "no blocks yet"
            if self.first_height is None
            else f"blocks {self.first_height}-{self.last_height}"
        )
        text = f"key {self.public_key} {blocks}"
        if self.endorsed_by is not None:
            text += f" (endorsed by {self.endorsed_by[:16]}…)"
        elif self.unendorsed_reason is not None:
            text += f" (not endorsed: {self.unendorsed_reason})"
        return text


def key_ranges(
    history: Sequence[KeyRecord] | None, signed: Sequence[tuple[int, str]]
) -> list[KeyRange]:
    """Each key and its blocks: from the history when there is one (checked against the
    blocks already), else from the runs of blocks ``signed`` (height, key) alone."""
    if history is None:
        runs: list[list[Any]] = []
        for height, public_key in signed:
            if runs and runs[-1][0] == public_key:
                runs[-1][2] = height
            else:
                runs.append([public_key, height, height])
        return [KeyRange(key, first, last, None, None) for key, first, last in runs]
    head = max((height for height, _ in signed), default=0)
    out = []
    for index, record in enumerate(history):
        later = history[index + 1].first_height - 1 if index + 1 < len(history) else head
        last = min(later, head)
        shown = record.first_height <= last
        out.append(
            KeyRange(
                record.public_key,
                record.first_height if shown else None,
                last if shown else None,
                history[index - 1].public_key if index and record.endorsement else None,
                record.unendorsed_reason,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    count: int
    head_hash: str
    error: ChainBroken | None = None
    keys: list[KeyRange] = field(default_factory=list)
    unsealed: int = 0  # transactions written but still queued for sealing


class ChainVerifier:
    """Feeds on records in sequence order; raises :class:`ChainBroken` at the first fault."""

    def __init__(
        self,
        *,
        start_sequence: int = 0,
        start_hash: str = GENESIS_HASH,
        public_key: str | None = None,
        public_keys: Collection[str] | None = None,
        history: Sequence[KeyRecord] | None = None,
    ) -> None:
        self.sequence = start_sequence
        self.hash = start_hash
        self.count = 0
        trusted = set(public_keys or ()) | ({public_key} if public_key else set())
        self.trusted: frozenset[str] | None = frozenset(trusted) if trusted else None
        self.history = history
        self.signed: list[tuple[int, str]] = []  # (height, public key) of each block

    def add_transaction(
        self, obj: Mapping[str, Any], stored_hash: str | None = None, canonical: bytes | None = None
    ) -> str:
        """Chain ``obj`` on; ``canonical``: its canonical bytes, when the caller has them."""
        sequence = obj.get("sequence")
        txn_id = obj.get("id")
        if sequence != self.sequence + 1:
            raise ChainBroken(
                f"expected sequence {self.sequence + 1}, found {sequence}",
                sequence=sequence if isinstance(sequence, int) else None,
                transaction_id=txn_id if isinstance(txn_id, str) else None,
            )
        new_hash = chain_hash(self.hash, canonical_json(obj) if canonical is None else canonical)
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

    def add_redacted(self, sequence: Any, prev_hash: Any, stored_hash: Any) -> None:
        """A chain position whose content the export withholds: it must follow on from
        the previous hash; its own hash is taken as given and checked by what follows."""
        if sequence != self.sequence + 1:
            raise ChainBroken(
                f"expected sequence {self.sequence + 1}, found {sequence}",
                sequence=sequence if isinstance(sequence, int) else None,
            )
        if prev_hash != self.hash:
            raise ChainBroken("does not follow on from the previous hash", sequence=sequence)
        if not isinstance(stored_hash, str) or not _HASH.fullmatch(stored_hash):
            raise ChainBroken("has no valid hash", sequence=sequence)
        self.sequence = sequence
        self.hash = stored_hash

    def check_block(self, block: Mapping[str, Any], signature: str, public_key: str) -> None:
        """Check a block whose last sequence has just been added."""
        height = block.get("height")
        if not isinstance(height, int):
            raise ChainBroken("the block has no integer height")
        if block.get("last_sequence") != self.sequence or block.get("hash") != self.hash:
            raise ChainBroken(
                f"block {height} does not end at the recomputed head", sequence=self.sequence
            )
        if self.trusted is not None and public_key not in self.trusted:
            raise ChainBroken(
                f"block {height} is signed by an unexpected key {public_key} "
                "(not among the trusted public keys)"
            )
        if not verify_signature(public_key, canonical_json(dict(block)), signature):
            raise ChainBroken(f"block {height} has an invalid signature")
        if self.history is not None:
            check_block_key(self.history, height, public_key)
        self.signed.append((height, public_key))


def check_block_key(history: Sequence[KeyRecord], height: int, public_key: str) -> None:
    """The block at ``height`` must be signed by the key the history names for it."""
    expected = key_for_height(history, height)
    if expected is not None and expected.public_key == public_key:
        return
    if not any(record.public_key == public_key for record in history):
        raise ChainBroken(f"block {height} is signed by key {public_key}, not in the key history")
    named = expected.public_key if expected else "no key"
    raise ChainBroken(
        f"block {height} is signed by key {public_key}, but the key history names {named} for it"
    )


def verify_database(
    session: Session,
    *,
    public_key: str | None = None,
    public_keys: Collection[str] | None = None,
    chunk: int = 2000,
) -> VerifyResult:
    """Recompute every seal and block signature stored in the database, each block
    against the signing key history (and the ``public_keys`` trusted, when given)."""
    history = key_history(session)
    verifier = ChainVerifier(public_key=public_key, public_keys=public_keys, history=history)
    blocks = {b.last_sequence: b for b in session.execute(select(SealBlock)).scalars()}
    queued = 0
    try:
        fault = history_fault(history)
        if fault is not None:
            raise ChainBroken(fault)
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
                        stored_block_object(block),
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
        return VerifyResult(False, verifier.count, verifier.hash, exc, unsealed=queued)
    return VerifyResult(
        True,
        verifier.count,
        verifier.hash,
        keys=key_ranges(history, verifier.signed),
        unsealed=queued,
    )


@dataclass(frozen=True, slots=True)
class FileResult:
    ok: bool
    transactions: int
    head_hash: str
    line: int | None = None
    error: str | None = None
    keys: list[KeyRange] = field(default_factory=list)


# A line nested deeper than this is refused (the ledger writes a few levels; json.loads
# gives up at about a thousand, the browser's verifier at some other depth).
MAX_DEPTH = 200
_NAN = "a value has no canonical form (NaN)"
_INFINITY = "a value has no canonical form (infinity)"
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _constant(name: str) -> Any:
    raise ChainBroken(_NAN if name == "NaN" else _INFINITY)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: a float too large for a double
        raise ChainBroken(_INFINITY)
    return value


# Made once (json.loads with hooks would build a decoder for every line). The float
# hook costs a Python call per float; the ledger writes none.
_loads = json.JSONDecoder(parse_constant=_constant, parse_float=_float).decode


def _too_deep_at(text: str) -> int | None:
    """Where, outside strings, the line's nesting first passes ``MAX_DEPTH`` (or None)."""
    depth = 0
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if piece in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return match.end()
        elif piece in ("]", "}"):
            depth -= 1
    return None


_TEXT = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string in ``value`` (a key too) holds a lone surrogate (json.loads
    leaves ``"\\ud800"`` one): UTF-8 cannot encode it. In C, not a walk in Python."""
    try:
        _TEXT.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_line(text: str) -> Any:
    """One line's JSON value, or :class:`ChainBroken` with why it cannot be verified:
    bytes that were not UTF-8 (kept as lone surrogates by ``errors="surrogateescape"``),
    not JSON, NaN or an infinity (no canonical form), nesting deeper than ``MAX_DEPTH``,
    a string with a lone surrogate (``"\\ud800"``, which UTF-8 cannot encode). Faults
    are found left to right, as the browser's verifier (static/console/verify.js) finds
    them, so both name the same one."""
    if not text.isascii() and _SURROGATE.search(text):
        raise ChainBroken("the file is not UTF-8 text")
    deep_at = None
    if text.count("[") + text.count("{") > MAX_DEPTH:
        deep_at = _too_deep_at(text)
    try:
        if deep_at is not None:
            # A fault before the nesting passes the limit is the one to report.
            try:
                _loads(text[:deep_at])
            except json.JSONDecodeError as exc:
                if exc.pos < deep_at:
                    raise
            raise ChainBroken(f"nested more than {MAX_DEPTH} levels deep")
        value = _loads(text)
    except RecursionError:
        raise ChainBroken(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:
        raise ChainBroken("not a JSON line") from None
    if "\\u" in text and _ESCAPED_SURROGATE.search(text) and _has_lone_surrogate(value):
        raise ChainBroken("a value has no canonical form (a lone surrogate)")
    return value


def _fast_value(text: str) -> Any:
    """:func:`parse_line`'s value for the line, parsed by orjson where that is sure to
    give the same value; else None (then :func:`parse_line` decides). orjson refuses
    what json refuses here (invalid UTF-8, lone surrogates, NaN, infinities) and more;
    a value it returns is the same as json's when it holds no float (orjson also
    parses an integer past 64 bits as a float) and no integer at or past 2**63
    (:func:`json_plain`), and the line is too shallow to reach ``MAX_DEPTH``. Duplicate
    keys: the last value wins in both. ``tests/ledger/test_verify_parallel.py``."""
    if text.count("[") + text.count("{") > MAX_DEPTH:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if json_plain(value) else None


def _parse(text: str) -> tuple[Any, bool]:
    """The line's value (as :func:`parse_line`), and whether it is plain
    (:func:`json_plain`), so its canonical bytes can be orjson's."""
    value = _fast_value(text)
    if value is not None:
        return value, True
    return parse_line(text), False


def _add_transaction_line(
    verifier: ChainVerifier, line: dict[str, Any], plain: bool, totals: dict[str, int]
) -> None:
    """A transaction line: chained (without the export's own fields), and its credits
    added to ``totals``."""
    stored_hash = line.get("hash")
    # The line without the export's own fields is the chained record.
    for name in NOT_CHAINED:
        line.pop(name, None)
    verifier.add_transaction(line, stored_hash, canonical_plain(line) if plain else None)
    legs = line.get("postings")
    for leg in legs if isinstance(legs, list) else ():
        if not isinstance(leg, dict):
            continue
        amount = leg.get("amount")
        if isinstance(amount, int) and amount > 0:
            currency = str(leg.get("currency"))
            totals[currency] = totals.get(currency, 0) + amount


# A file this large is verified in several processes (when there are several cores).
PARALLEL_FROM = 64 << 20
CHUNK_BYTES = 4 << 20


def verify_file(
    path: Path,
    *,
    public_keys: Collection[str] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    key_history: Sequence[KeyRecord] | None = None,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> FileResult:
    """:func:`verify_lines` over a file, opened as ``voucherledger verify`` opens it:
    UTF-8, with any byte that is not kept for :func:`verify_lines` to refuse at its
    line (rather than failing the whole read).

    ``workers`` processes (default: one per core, for a file of ``PARALLEL_FROM`` bytes
    or more) parse and hash chunks of ``chunk_bytes``; this process links the chunks
    and checks the blocks and the manifest in order (:func:`_verify_parallel`). Any
    fault there, and the file is verified again in this process alone, so a failure is
    named exactly as :func:`verify_lines` names it."""
    if workers is None:
        workers = _default_workers(path)
    if workers > 1:
        result = _verify_parallel(
            path,
            workers=workers,
            chunk_bytes=chunk_bytes,
            public_keys=public_keys,
            checkpoint=checkpoint,
            key_history=key_history,
        )
        if result is not None:
            return result
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        return verify_lines(
            handle, public_keys=public_keys, checkpoint=checkpoint, key_history=key_history
        )


def verify_lines(
    lines: Iterable[str],
    *,
    public_key: str | None = None,
    public_keys: Collection[str] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    key_history: Sequence[KeyRecord] | None = None,
) -> FileResult:
    """Verify a jsonl export (see ``ledger/export.py``) from its lines alone: every
    transaction's hash, the chain through redacted positions, every block signature, and
    the signed manifest that must close the file. Stops at the first fault and names
    its line, sequence and transaction.

    Keys: with ``public_keys`` (or ``public_key``), every block and the manifest must be
    signed by one of them. The manifest's ``signing_keys`` history, when present (exports
    before it existed have none), must hold together and name each block's key. With a
    checkpoint and no trusted keys, the checkpoint's block must be signed by its key, and
    every later block (and the manifest) by that key or a key it endorsed, directly or
    through endorsed successors: the blocks up to the checkpoint are pinned by its hash.
    A ``key_history`` the caller trusts (an earlier manifest's, say) must hold together,
    and each block must be signed by the key it names for that height.

    ``lines`` are split at LF, as iterating over a file gives them; not by
    ``str.splitlines``, which also splits at U+0085, U+2028 and U+2029 — exports
    written before those were escaped carry them raw inside strings."""
    check = _FileCheck(
        public_key=public_key,
        public_keys=public_keys,
        checkpoint=checkpoint,
        key_history=key_history,
    )
    number = 0
    try:
        check.start()
        for number, text in enumerate(lines, start=1):  # noqa: B007 - reported on failure
            check.line(text)
        return check.finish()
    except ChainBroken as exc:
        return FileResult(False, check.shown, check.verifier.hash, number, str(exc))


class _FileCheck:
    """The state of one file's verification, fed its lines in order (:func:`verify_lines`
    holds the line numbers; :func:`_verify_parallel` feeds only the lines that are not
    transactions or redacted positions, the chunks' workers having chained those)."""

    def __init__(
        self,
        *,
        public_key: str | None,
        public_keys: Collection[str] | None,
        checkpoint: Mapping[str, Any] | None,
        key_history: Sequence[KeyRecord] | None,
    ) -> None:
        given = list(public_keys or ())
        if key_history is not None:
            given += [record.public_key for record in key_history]
        self.verifier = ChainVerifier(public_key=public_key, public_keys=given, history=key_history)
        self.trusted = self.verifier.trusted
        self.key_history = key_history
        self.checkpoint = checkpoint
        self.point_key = str(checkpoint["public_key"]) if checkpoint else None
        self.point_height = checkpoint.get("height") if checkpoint else None
        self.shown = 0
        self.totals: dict[str, int] = {}
        self.manifest: dict[str, Any] | None = None
        self.history: list[KeyRecord] | None = None
        self.seen_checkpoint = checkpoint is None

    def start(self) -> None:
        fault = history_fault(self.key_history) if self.key_history is not None else None
        if fault is not None:
            raise ChainBroken(f"the given key history: {fault}")

    def line(self, text: str) -> None:
        if not text or text.isspace():
            return
        if self.manifest is not None:
            if not text.isascii() and _SURROGATE.search(text):
                raise ChainBroken("the file is not UTF-8 text")
            raise ChainBroken("content after the manifest")
        line, plain = _parse(text)
        if not isinstance(line, dict):
            raise ChainBroken("not a JSON object")
        verifier = self.verifier
        checkpoint = self.checkpoint
        kind = line.get("type")
        if kind == "transaction":
            _add_transaction_line(verifier, line, plain, self.totals)
            self.shown += 1
        elif kind == "redacted":
            verifier.add_redacted(line.get("sequence"), line.get("prev_hash"), line.get("hash"))
        elif kind == "block":
            block = {k: v for k, v in line.items() if k not in ("type", "signature", "public_key")}
            block_key = str(line.get("public_key"))
            verifier.check_block(block, str(line.get("signature")), block_key)
            if checkpoint is not None and block.get("height") == self.point_height:
                if block.get("hash") != checkpoint.get("hash"):
                    raise ChainBroken("block differs from the checkpoint")
                if block_key != self.point_key:
                    raise ChainBroken(
                        f"block {self.point_height} is signed by {block_key}, "
                        f"not by the checkpoint's key {self.point_key}"
                    )
                self.seen_checkpoint = True
        elif kind == "manifest":
            self.manifest = line
            signer_key = str(line.get("public_key"))
            if self.trusted is not None and signer_key not in self.trusted:
                raise ChainBroken(
                    f"the manifest is signed by an unexpected key {signer_key} "
                    "(not among the trusted public keys)"
                )
            if not verify_signature(
                signer_key, canonical_json(unsigned_manifest(line)), str(line.get("signature"))
            ):
                raise ChainBroken("the manifest's signature is invalid")
            if line.get("format") != MANIFEST_FORMAT:
                raise ChainBroken("unknown export format")
            if line.get("transactions") != self.shown:
                raise ChainBroken(
                    f"the manifest lists {line.get('transactions')} transactions, "
                    f"the file has {self.shown}"
                )
            if line.get("credits_by_currency") != dict(sorted(self.totals.items())):
                raise ChainBroken("the manifest's totals differ from the file's")
            if (
                line.get("last_sequence") != verifier.sequence
                or line.get("head_hash") != verifier.hash
            ):
                raise ChainBroken("the manifest's head differs from the file's")
            self.history = _manifest_history(line)
            if self.history is not None:
                for height, block_key in verifier.signed:
                    check_block_key(self.history, height, block_key)
        else:
            raise ChainBroken(f"unknown line type {kind!r}")

    def finish(self) -> FileResult:
        """The checks after the last line; the result when all hold."""
        verifier = self.verifier
        manifest = self.manifest
        if manifest is None:
            raise ChainBroken("no manifest: the file is truncated")
        if not self.seen_checkpoint:
            raise ChainBroken("the checkpoint's block is not in the file")
        point_key, point_height = self.point_key, self.point_height
        if self.checkpoint is not None and self.trusted is None and point_key is not None:
            endorsed = _endorsed_from(point_key, self.history)
            for height, block_key in verifier.signed:
                if isinstance(point_height, int) and height > point_height:
                    if block_key not in endorsed:
                        raise ChainBroken(
                            f"block {height} is signed by key {block_key}, which the "
                            f"checkpoint's key {point_key} did not endorse"
                        )
            if str(manifest.get("public_key")) not in endorsed:
                raise ChainBroken(
                    "the manifest is signed by a key the checkpoint's key did not endorse"
                )
        return FileResult(
            True, self.shown, verifier.hash, keys=key_ranges(self.history, verifier.signed)
        )


def _default_workers(path: Path) -> int:
    """One process per core for a large file, where this process may fork (no other
    threads, which a fork would copy in whatever state they are)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or threading.active_count() > 1 or "fork" not in _start_methods():
        return 1
    try:
        size = path.stat().st_size
    except OSError:
        return 1
    return min(cores or 1, 8) if size >= PARALLEL_FROM else 1


def _start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods()


# What a worker gives back for its chunk: the chain position and hash it starts from
# (taken from its first transaction or redacted line, which the linking checks), where it
# ends, its transactions and their credits, and its other lines (blocks, the manifest,
# anything else) with the chain position and hash just before each; or None: a fault
# (or anything unusual, such as a line after a manifest) in the chunk.
_Chunk = tuple[
    tuple[int, str] | None,
    tuple[int, str] | None,
    int,
    dict[str, int],
    list[tuple[str, int | None, str | None]],
]


def _chunk_bounds(path: Path, chunk_bytes: int) -> Iterator[tuple[str, int, int]]:
    """Byte ranges of about ``chunk_bytes``, each ending just after an LF (or at the end)."""
    size = path.stat().st_size
    start = 0
    with path.open("rb") as handle:
        while start < size:
            handle.seek(min(start + chunk_bytes, size))
            end = handle.tell() + len(handle.readline())
            yield str(path), start, end
            start = end


def _verify_chunk(task: tuple[str, int, int]) -> _Chunk | None:
    """Parse and chain one chunk's transaction and redacted lines, in a worker."""
    name, start, end = task
    with open(name, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    # As the file is read for verify_lines: UTF-8 with surrogateescape, universal
    # newlines (CR LF and CR read as LF). A chunk starts after an LF, so no character
    # and no CR LF is split between two chunks.
    text = data.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    verifier: ChainVerifier | None = None
    first: tuple[int, str] | None = None
    shown = 0
    totals: dict[str, int] = {}
    others: list[tuple[str, int | None, str | None]] = []
    ended = False  # a manifest seen: nothing may follow it
    try:
        for piece in text.split("\n"):
            if not piece or piece.isspace():
                continue
            if ended:
                return None
            line, plain = _parse(piece)
            kind = line.get("type") if isinstance(line, dict) else None
            if kind == "transaction" or kind == "redacted":
                if verifier is None:
                    sequence, prev_hash = line.get("sequence"), line.get("prev_hash")
                    if (
                        type(sequence) is not int
                        or not isinstance(prev_hash, str)
                        or not _HASH.fullmatch(prev_hash)
                    ):
                        return None
                    first = (sequence - 1, prev_hash)
                    verifier = ChainVerifier(start_sequence=sequence - 1, start_hash=prev_hash)
                if kind == "transaction":
                    _add_transaction_line(verifier, line, plain, totals)
                    shown += 1
                else:
                    verifier.add_redacted(
                        line.get("sequence"), line.get("prev_hash"), line.get("hash")
                    )
            else:
                if verifier is None:
                    others.append((piece, None, None))
                else:
                    others.append((piece, verifier.sequence, verifier.hash))
                ended = kind == "manifest"
    except Exception:  # any fault: the file is verified again in one process
        return None
    last = (verifier.sequence, verifier.hash) if verifier is not None else None
    return first, last, shown, totals, others


def _verify_parallel(
    path: Path,
    *,
    workers: int,
    chunk_bytes: int,
    public_keys: Collection[str] | None,
    checkpoint: Mapping[str, Any] | None,
    key_history: Sequence[KeyRecord] | None,
) -> FileResult | None:
    """The verdict of a file whose chunks all chain and link (then it is what
    :func:`verify_lines` gives), or None: verify it again in one process.

    Each worker chains its chunk's transactions and redacted positions from the hash
    its first line says it follows; here each chunk must start where the previous one
    ended (its first position and that hash), and the other lines (blocks, manifest)
    are checked in order, from the chain position each worker saw just before them,
    with the same code as :func:`verify_lines`."""
    check = _FileCheck(
        public_key=None, public_keys=public_keys, checkpoint=checkpoint, key_history=key_history
    )
    context = multiprocessing.get_context("fork")
    try:
        check.start()
        with context.Pool(workers) as pool:
            for chunk in pool.imap(_verify_chunk, _chunk_bounds(path, chunk_bytes)):
                if chunk is None:
                    return None
                first, last, shown, totals, others = chunk
                verifier = check.verifier
                if check.manifest is not None and (first is not None or others):
                    return None  # something after the manifest
                if first is not None and first != (verifier.sequence, verifier.hash):
                    return None
                check.shown += shown
                for currency, amount in totals.items():
                    check.totals[currency] = check.totals.get(currency, 0) + amount
                for text, sequence, hash_ in others:
                    if sequence is not None and hash_ is not None:
                        verifier.sequence, verifier.hash = sequence, hash_
                    check.line(text)
                if last is not None:
                    verifier.sequence, verifier.hash = last
        return check.finish()
    except Exception:  # a fault, or no processes: one process decides
        return None


def _manifest_history(manifest: Mapping[str, Any]) -> list[KeyRecord] | None:
    """The manifest's signing key history (None in an export made before it existed),
    checked to hold together."""
    raw = manifest.get("signing_keys")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        raise ChainBroken("the manifest's signing_keys is not a list of keys")
    try:
        history = [KeyRecord.from_line(entry) for entry in raw]
    except ValueError as exc:
        raise ChainBroken(f"the manifest's signing_keys: {exc}") from None
    fault = history_fault(history)
    if fault is not None:
        raise ChainBroken(fault)
    return history


def _endorsed_from(public_key: str, history: Sequence[KeyRecord] | None) -> set[str]:
    """``public_key`` and the keys after it that it endorsed, directly or through
    endorsed successors (an unendorsed rotation ends the line)."""
    out = {public_key}
    if history is None:
        return out
    following = False
    for record in history:
        if record.public_key == public_key:
            following = True
        elif following:
            if record.endorsement is None:
                break
            out.add(record.public_key)
    return out
