"""API keys and roles.

A key is ``vl_{key id}_{secret}``: 256 random bits of secret, stored only as
its SHA-256 (a fast hash is right for high-entropy secrets), compared in
constant time. Checking a key is one primary-key look-up joined to its
account, on every request, so a revoked key stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from voucherledger.core import rawsql
from voucherledger.core.errors import Forbidden, Unauthenticated
from voucherledger.core.ids import new_id
from voucherledger.core.session import request_session

KEY_PREFIX = "vl_"

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer vl_...`")


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    kind: str
    key_id: str


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    secret_hash: str
    plaintext: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_key() -> NewKey:
    key_id = new_id("key")
    secret = secrets.token_hex(32)
    return NewKey(key_id, hash_secret(secret), f"{KEY_PREFIX}{key_id}_{secret}")


def parse_key(plaintext: str) -> tuple[str, str] | None:
    if not plaintext.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = plaintext[len(KEY_PREFIX) :].rpartition("_")
    if not sep or not key_id.startswith("key_") or len(key_id) > 40 or len(secret) != 64:
        return None
    return key_id, secret


_KEY_LOOKUP = (
    "SELECT k.secret_hash, k.revoked_at, a.id, a.kind FROM api_keys k "
    "JOIN accounts a ON a.id = k.account_id WHERE k.id = ?"
)


def authenticate(session: Session, plaintext: str) -> Principal | None:
    """The key's account, or None. Runs on every request: one primary-key read,
    straight to the driver."""
    parsed = parse_key(plaintext)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = rawsql.fetchone(session, _KEY_LOOKUP, (key_id,))
    if row is None:
        return None
    secret_hash, revoked_at, account_id, kind = row
    if revoked_at is not None:
        return None
    if not hmac.compare_digest(secret_hash, hash_secret(secret)):
        return None
    return Principal(account_id=account_id, kind=kind, key_id=key_id)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
    session = request_session(request)
    principal = await run_in_threadpool(authenticate, session, credentials.credentials)
    if principal is None:
        raise Unauthenticated("The API key is unknown or revoked.")
    request.state.principal = principal
    return principal


def require_roles(*kinds: str) -> Callable[..., object]:
    """A dependency that admits only accounts of the given kinds (403 otherwise)."""
    allowed = frozenset(kinds)

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.kind not in allowed:
            raise Forbidden(f"This endpoint is for {', '.join(sorted(allowed))} accounts.")
        return principal

    return check


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
