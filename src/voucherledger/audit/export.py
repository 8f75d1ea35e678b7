"""The audit exports as streams of bytes, for ``GET /v1/audit/export`` to send.

- :func:`journal_jsonl` and :func:`journal_csv`: the journal from the hash chain
  (:func:`~voucherledger.ledger.export.chain_lines`), as JSON Lines or as CSV of one
  posting per row; both end with the chain's signed manifest.
- :func:`standard_export`: an IATI or 360Giving document, followed by a manifest
  built from the writer's :class:`~voucherledger.audit.standards.ExportTally` and the
  latest seal block, signed with the ledger's key: an XML comment after the IATI
  document's root element, a ``voucherledger_manifest`` member closing the
  360Giving package.

No HTTP here: the router picks the function, the media type and the file name. Each
function returns an iterator that does its reading as it is consumed, except that
:func:`standard_export` checks its arguments and starts its writer first, so its
errors come before any byte is sent.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from voucherledger.audit.giving360 import giving360_export
from voucherledger.audit.iati import iati_export
from voucherledger.audit.standards import ExportTally
from voucherledger.core.errors import NotFound
from voucherledger.core.exporttext import csv_cell
from voucherledger.core.settings import Settings
from voucherledger.ledger.canonical import canonical_json
from voucherledger.ledger.export import Scope, chain_jsonl, chain_lines
from voucherledger.ledger.sealer import latest_block
from voucherledger.ledger.signing import Signer

CSV_HEADER = [
    "transaction_id",
    "sequence",
    "kind",
    "created_at",
    "account",
    "amount",
    "currency",
    "programme_id",
    "actor",
    "memo",
    # metadata.created_by: the person or key inside the actor account (empty before 0009)
    "created_by",
]
_CSV_FLUSH_AT = 65536


def journal_jsonl(factory: Callable[[], Session], scope: Scope, signer: Signer) -> Iterator[bytes]:
    """The chain's lines as JSON Lines, redacted outside ``scope``; ``voucherledger
    verify`` proves such a file complete."""
    return chain_jsonl(factory, scope, signer)


def journal_csv(factory: Callable[[], Session], scope: Scope, signer: Signer) -> Iterator[bytes]:
    """The transactions in ``scope`` as CSV, one posting per row."""
    return csv_bytes(chain_lines(factory, scope, signer))


def csv_bytes(lines: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """Chain lines as UTF-8 CSV (CRLF): :data:`CSV_HEADER`, a row per posting of each
    transaction line, then a blank row and ``# manifest`` with the manifest's JSON.
    Redacted lines write nothing. Every cell goes through
    :func:`~voucherledger.core.exporttext.csv_cell`: a text cell a spreadsheet would run
    as a formula (a memo is free text) starts with an apostrophe; the jsonl export
    carries the exact value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        if line["type"] == "transaction":
            for leg in line["postings"]:
                writer.writerow(
                    csv_cell(value)
                    for value in (
                        line["id"],
                        line["sequence"],
                        line["kind"],
                        line["created_at"],
                        leg["account"],
                        leg["amount"],
                        leg["currency"],
                        line["programme_id"],
                        line["actor"],
                        line["memo"],
                        line["metadata"].get("created_by"),
                    )
                )
        elif line["type"] == "manifest":
            writer.writerow([])
            writer.writerow(
                csv_cell(value) for value in ("# manifest", json.dumps(line, separators=(",", ":")))
            )
        if buffer.tell() > _CSV_FLUSH_AT:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def standard_export(
    factory: Callable[[], Session],
    signer: Signer,
    settings: Settings,
    export_format: str,
    programme_ids: list[str],
    since: datetime | None,
    until: datetime | None,
) -> Iterator[bytes]:
    """The programmes as an ``iati`` or ``360giving`` document with its signed manifest.

    ``factory`` opens the session the export reads with (closed when the stream ends
    or is closed); the reporting organisation and the 360Giving prefix come from
    ``settings``. Raises :class:`NotFound` for no programme, and whatever the writer
    raises for its arguments, before returning the stream."""
    if not programme_ids:
        raise NotFound("No programme to export.")
    session = factory()
    tally = ExportTally(format=export_format)
    try:
        if export_format == "iati":
            chunks = iati_export(
                session,
                programme_ids,
                reporting_org_ref=settings.iati_reporting_org_ref,
                reporting_org_name=settings.iati_reporting_org_name,
                reporting_org_type=settings.iati_reporting_org_type,
                since=since,
                until=until,
                tally=tally,
            )
        else:
            chunks = giving360_export(
                session,
                programme_ids,
                prefix=settings.giving360_prefix,
                since=since,
                until=until,
                tally=tally,
            )
    except BaseException:
        session.close()
        raise

    def manifest() -> dict[str, Any]:
        # Called once the writer is exhausted, when the tally is complete.
        return signed_manifest(session, signer, tally, programme_ids)

    splice = _with_iati_manifest if export_format == "iati" else _with_giving360_manifest
    return _closing(session, splice(chunks, manifest))


def signed_manifest(
    session: Session, signer: Signer, tally: ExportTally, programme_ids: list[str]
) -> dict[str, Any]:
    """The manifest of an open-standard export: the tally's figures, the programmes,
    the latest seal block, and a signature over the canonical JSON of all of it."""
    block = latest_block(session)
    document: dict[str, Any] = {
        **tally.as_dict(),
        "programme_ids": programme_ids,
        "block_height": block.height if block else 0,
        "last_sequence": block.last_sequence if block else 0,
        "head_hash": block.hash if block else None,
        "public_key": signer.public_key_hex,
    }
    document["signature"] = signer.sign(canonical_json(document))
    return document


def _closing(session: Session, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        session.close()


def _with_iati_manifest(
    chunks: Iterator[bytes], manifest: Callable[[], dict[str, Any]]
) -> Iterator[bytes]:
    """The document, then the manifest as a comment (``--`` may not occur in one)."""
    yield from chunks
    text = json.dumps(manifest(), separators=(",", ":")).replace("--", "- -")
    yield f"<!-- voucherledger-manifest {text} -->\n".encode()


def _with_giving360_manifest(
    chunks: Iterator[bytes], manifest: Callable[[], dict[str, Any]]
) -> Iterator[bytes]:
    """The package with the manifest as its last member: each chunk is held back
    until the next arrives, so the closing ``}`` can be opened up."""
    pending = b""
    for chunk in chunks:
        if pending:
            yield pending
        pending = chunk
    closing = pending.rstrip()
    if not closing.endswith(b"}"):
        raise RuntimeError("a 360Giving package must end with '}'")
    member = json.dumps(manifest(), separators=(",", ":")).encode()
    yield closing[:-1] + b',"voucherledger_manifest":' + member + b"}\n"
