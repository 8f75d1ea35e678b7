"""HTTP idempotency: ``Idempotency-Key`` on every POST.

The first request with a key stores its response in the same database
transaction as its effects, so either both are committed or neither is. A
retry with the same key and the same body (from the same account; for a file
upload, the same file content) gets the stored response back, status and body;
with a different body it gets 409
``idempotency_key_reused``. Two concurrent requests with one key are
serialised by the record's primary key: the second waits for the first to
commit, then replays it. A request that fails writes nothing, its key
included, so it may be retried. Records are kept ``idempotency_retention_hours``
(at least 24 h) and then purged by the background sweep (``purge_records``); a
request that finds its key's record purged between its insert and its read claims
the key afresh rather than failing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Integer, String, Text, delete, select, tuple_
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from voucherledger.core.auth import Principal, current_principal, resolve_principal
from voucherledger.core.db import Base, UTCDateTime, utcnow
from voucherledger.core.errors import IdempotencyKeyReused, ValidationFailed
from voucherledger.core.http import is_form_media_type
from voucherledger.core.rawsql import Raw
from voucherledger.core.session import request_session


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    account_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    media_type: Mapped[str | None] = mapped_column(String(100))
    # Indexed for the purge of records past the retention (idempotency_retention_hours).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


@dataclass
class Replay(Exception):
    """Raised to answer a retried request with its stored response."""

    status_code: int
    body: str
    media_type: str


@dataclass(frozen=True, slots=True)
class IdempotencyScope:
    """Handed to the route so it can record its response under the key."""

    account_id: str
    key: str
    ledger_key: str  # the key ledger transactions of this request are written under


def _request_hash(method: str, path: str, normal: bytes, member_id: str | None) -> str:
    """What a retry must repeat: method, path, body (``normal``: as JSON, whatever its
    spacing, or a form as :func:`_normal_form` puts it), and the person. Keys are the
    account's, so a colleague who sends the same key and body gets 409 rather than the
    first person's answer, which names the first person and which the colleague's role
    might not allow. An account's own keys are one machine: their requests hash as they
    always have."""
    person = b"" if member_id is None else b"\nmember " + member_id.encode()
    return hashlib.sha256(
        method.encode() + b" " + path.encode() + person + b"\n" + normal
    ).hexdigest()


def _normal_json(body: bytes) -> bytes:
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        return body


async def _normal_form(request: Request) -> bytes:
    """A multipart form as a retry repeats it: each part's name with its text, or with
    the SHA-256 of its file's content. The boundary, the part headers and the file
    names may differ between a request and its retry; the content may not."""
    form = await request.form()  # parsed (and cached) already by the route
    parts: list[list[str]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            digest = hashlib.sha256()
            await value.seek(0)
            while chunk := await value.read(1 << 20):
                digest.update(chunk)
            await value.seek(0)
            parts.append([name, "file", digest.hexdigest()])
        else:
            parts.append([name, "text", value])
    return b"multipart/form-data\n" + json.dumps(sorted(parts), separators=(",", ":")).encode()


async def idempotency_guard(
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    idempotency_key: Annotated[
        str | None,
        Header(
            description="1-255 characters; a retry with the same key and body replays "
            "the first response",
            alias="Idempotency-Key",
        ),
    ] = None,
) -> IdempotencyScope | None:
    if idempotency_key is None:
        return None
    content_type = request.headers.get("content-type")
    if content_type and is_form_media_type(content_type):
        normal = await _normal_form(request)
    else:
        normal = _normal_json(await request.body())
    # One hand-off: the key check when it was deferred (its 401 before any other
    # answer), this header's rules, and the claim of the key.
    principal, ledger_key = await run_in_threadpool(
        _guard,
        request,
        principal,
        idempotency_key,
        normal,
        getattr(request.app.state, "ledger_key_used", None),
    )
    scope = IdempotencyScope(principal.account_id, idempotency_key, ledger_key)
    request.state.idempotency = scope
    return scope


def _guard(
    request: Request,
    principal: Principal,
    idempotency_key: str,
    normal: bytes,
    ledger_key_used: KeyUsed | None,
) -> tuple[Principal, str]:
    principal = resolve_principal(principal)
    if not 1 <= len(idempotency_key) <= 255:
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 characters",
            [
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "1-255 characters",
                    "type": "string_length",
                }
            ],
        )
    digest = _request_hash(request.method, request.url.path, normal, principal.member_id)
    ledger_key = f"http:{principal.account_id}:{idempotency_key}"
    _claim_key(
        request_session(request),
        principal.account_id,
        idempotency_key,
        digest,
        ledger_key,
        ledger_key_used,
    )
    return principal, ledger_key


# The same statement on both databases; ``key`` quoted as SQLite needs.
_CLAIM_KEY = (
    'INSERT INTO idempotency_records (account_id, "key", request_hash, created_at) '
    'VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING "key"'
)


# Whether the journal holds a transaction under a ledger key: the app sets it
# (``app.state.ledger_key_used``) to ``ledger.key_used``; core does not know the ledger.
KeyUsed = Callable[[Session, str], bool]


def _claim_key(
    session: Session,
    account_id: str,
    key: str,
    digest: str,
    ledger_key: str,
    ledger_key_used: KeyUsed | None,
) -> None:
    # RETURNING, not rowcount: with psycopg the rowcount of this INSERT is -1, so
    # every first use of a key looked like a replay of an unfinished request.
    # Two rounds: a record purged between the conflicting INSERT and the read below
    # leaves the key free again, and the second INSERT claims it.
    for _ in range(2):
        with Raw(session) as db:
            claimed = db.fetchone(_CLAIM_KEY, (account_id, key, digest, db.bind(utcnow())))
        if claimed is not None:
            if ledger_key_used is not None and ledger_key_used(session, ledger_key):
                # The key's record was purged (idempotency_retention_hours), but the
                # journal still holds what the first request wrote under it. Running
                # the request again would write its claim, refund or settlement rows a
                # second time beside a replayed (unmoved) ledger transaction.
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used by an earlier request, whose record "
                    "has since expired; send a new request with a new key."
                )
            return
        record = session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key
            )
        ).scalar_one_or_none()
        if record is not None:
            break
    else:
        raise RuntimeError("an idempotency key could be neither claimed nor read")
    if record.request_hash != digest:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
    if record.status_code is None or record.response_body is None:
        raise RuntimeError("an idempotency record was committed without its response")
    raise Replay(record.status_code, record.response_body, record.media_type or "application/json")


def purge_records(session: Session, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` records created before ``before`` (oldest first, along
    ``ix_idempotency_records_created_at``); returns how many. Records of requests in
    flight are not committed yet, so the purge cannot see them."""
    oldest = (
        select(IdempotencyRecord.account_id, IdempotencyRecord.key)
        .where(IdempotencyRecord.created_at < before)
        .order_by(IdempotencyRecord.created_at)
        .limit(batch)
    )
    keys = [tuple(row) for row in session.execute(oldest)]
    if keys:
        session.execute(
            delete(IdempotencyRecord).where(
                tuple_(IdempotencyRecord.account_id, IdempotencyRecord.key).in_(keys),
                IdempotencyRecord.created_at < before,
            )
        )
    return len(keys)


def redact_secrets(request: Request, *fields: str) -> None:
    """Keep these top-level response fields out of the stored response: a replay
    returns them as null (a secret such as a new API key is shown once only)."""
    request.state.idempotency_redact = fields


def record_response(
    session: Session,
    scope: IdempotencyScope,
    status_code: int,
    body: bytes,
    media_type: str,
    redact: tuple[str, ...] = (),
) -> None:
    record = session.get(IdempotencyRecord, (scope.account_id, scope.key))
    if record is None:
        raise RuntimeError("the idempotency record of this request is missing")
    text = body.decode("utf-8")
    if redact:
        document = json.loads(text)
        for field in redact:
            if field in document:
                document[field] = None
        text = json.dumps(document, separators=(",", ":"))
    record.status_code = status_code
    record.response_body = text
    record.media_type = media_type
    session.flush()
