"""API keys, the principal a request acts as, and roles.

A key is ``vl_{key id}_{secret}``: 256 random bits of secret, stored only as
its SHA-256 (a fast hash is right for high-entropy secrets), compared in
constant time. Checking a key is one primary-key look-up joined to its
account (and to its member, for a personal key), on every request, so a
revoked key or a disabled member stops working at once.

A principal is an account and, when a person acts, a member of it with a role
inside the account: ``viewer`` reads only, ``operator`` acts for the account,
``approver`` may also give the second approval, ``owner`` also manages members.
An account's own key (a machine) has no member: it acts for the account but is
nobody, so it can never be the second person.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

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


MemberRole = Literal["viewer", "operator", "approver", "owner"]

# What each role inside an account may do, in increasing order of power.
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "approver": 2, "owner": 3}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as.

    ``key_id`` is the API key used, or None for a browser session
    (``session_id``). ``member_id`` and ``member_role`` are the person, or None
    for an account's own key.
    """

    account_id: str
    kind: str
    key_id: str | None
    member_id: str | None = None
    member_role: MemberRole | None = None
    session_id: str | None = None

    @property
    def actor_ref(self) -> str:
        """Who did it, as recorded: the member, or the account key for a machine."""
        ref = self.member_id or self.key_id
        if ref is None:
            raise RuntimeError("a principal with neither a member nor a key")
        return ref

    def has_member_role(self, role: MemberRole) -> bool:
        """True for a person with at least ``role`` inside the account."""
        return self.member_role is not None and ROLE_RANK[self.member_role] >= ROLE_RANK[role]


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
    "SELECT k.secret_hash, k.revoked_at, a.id, a.kind, m.id, m.role, m.status FROM api_keys k "
    "JOIN accounts a ON a.id = k.account_id "
    "LEFT JOIN members m ON m.id = k.member_id WHERE k.id = ?"
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
    secret_hash, revoked_at, account_id, kind, member_id, member_role, member_status = row
    if revoked_at is not None:
        return None
    if not hmac.compare_digest(secret_hash, hash_secret(secret)):
        return None
    if member_id is not None and member_status != "active":
        return None
    return Principal(
        account_id=account_id,
        kind=kind,
        key_id=key_id,
        member_id=member_id,
        member_role=member_role,
    )


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
    """A dependency that admits only accounts of the given kinds (403 otherwise).

    A member with the ``viewer`` role reads only: any other method is 403."""
    allowed = frozenset(kinds)

    async def check(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        if principal.kind not in allowed:
            raise Forbidden(f"This endpoint is for {', '.join(sorted(allowed))} accounts.")
        if principal.member_role == "viewer" and request.method not in SAFE_METHODS:
            raise Forbidden("A viewer may read but not change anything.")
        return principal

    return check


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
