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

A person may instead sign in from a browser (``POST /v1/sessions``): the cookie
``vl_session`` then carries a random token whose SHA-256 finds the session row
(one unique-index read joined to its member and account, by raw SQL, as for a
key). A state-changing request so authenticated must also send the session's
``X-CSRF-Token`` header; a Bearer key needs none (a browser never adds it by
itself). A key wins over a cookie when both are sent.

On a route whose endpoint runs folded in one worker thread (``core/routing.py``) the
key is checked in that thread, just before the endpoint: :func:`current_principal`
then hands FastAPI a :class:`DeferredPrincipal`, the role rules wait in it, and the
route resolves it before anything else runs (and before any other error is
answered, so a caller without a valid key still gets 401 first). One hand-off to the
thread pool per request instead of two.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Literal, cast

import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from voucherledger.core import rawsql
from voucherledger.core.db import transaction, utcnow
from voucherledger.core.errors import CsrfFailed, Forbidden, TotpSetupRequired, Unauthenticated
from voucherledger.core.ids import new_id
from voucherledger.core.session import request_session

log = structlog.get_logger("voucherledger.auth")

KEY_PREFIX = "vl_"
SESSION_COOKIE = "vl_session"
CSRF_HEADER = "X-CSRF-Token"
# last_seen_at is written at most this often, so a session's reads stay reads; the
# idle timeout is therefore exact to within this much.
SLIDE_EVERY = timedelta(minutes=1)
# All a session may reach while its account requires TOTP and its member has none.
TOTP_SETUP_PATHS = frozenset(
    {"/v1/me", "/v1/me/totp", "/v1/me/totp/confirm", "/v1/sessions/current"}
)

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer vl_...`")
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="A browser session from `POST /v1/sessions`; state-changing requests "
    "also need the header `X-CSRF-Token` (the `csrf_token` of the sign-in).",
)


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

    @property
    def is_admin(self) -> bool:
        """The scheme's administrator, with the power to manage every account's people
        and keys: the admin account's own key (the machine the CLI made) or an owner of
        the admin account. An admin member with a lesser role has only that role's
        powers; it cannot make itself an owner."""
        return self.kind == "admin" and self.member_role in (None, "owner")


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
    "SELECT k.secret_hash, k.revoked_at, a.id, a.kind, m.id, m.role, m.status, "
    "a.require_totp, m.totp_confirmed_at FROM api_keys k "
    "JOIN accounts a ON a.id = k.account_id "
    "LEFT JOIN members m ON m.id = k.member_id WHERE k.id = ?"
)


def authenticate(session: Session, plaintext: str, path: str = "") -> Principal | None:
    """The key's account, or None. Runs on every request: one primary-key read,
    straight to the driver. A personal key of a member whose account requires TOTP
    and who has none confirmed reaches only the set-up paths, as a session does."""
    parsed = parse_key(plaintext)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = rawsql.fetchone(session, _KEY_LOOKUP, (key_id,))
    if row is None:
        return None
    (
        secret_hash,
        revoked_at,
        account_id,
        kind,
        member_id,
        member_role,
        member_status,
        require_totp,
        totp_confirmed_at,
    ) = row
    if revoked_at is not None:
        return None
    if not hmac.compare_digest(secret_hash, hash_secret(secret)):
        return None
    if member_id is not None and member_status != "active":
        return None
    if member_id is not None and require_totp and totp_confirmed_at is None:
        refuse_until_totp_setup(path)
    return Principal(
        account_id=account_id,
        kind=kind,
        key_id=key_id,
        member_id=member_id,
        member_role=member_role,
    )


def refuse_until_totp_setup(path: str) -> None:
    """A member whose account requires TOTP and who has none confirmed reaches only
    the paths that set it up, with a session or with a personal key alike."""
    if path not in TOTP_SETUP_PATHS:
        raise TotpSetupRequired(
            "Your account requires a second factor: set one up with POST /v1/me/totp "
            "and POST /v1/me/totp/confirm first."
        )


_SESSION_LOOKUP = (
    "SELECT s.id, s.csrf_token, s.last_seen_at, s.expires_at, s.revoked_at, "
    "a.id, a.kind, a.require_totp, m.id, m.role, m.status, m.totp_confirmed_at "
    "FROM web_sessions s JOIN members m ON m.id = s.member_id "
    "JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ?"
)
_SLIDE = "UPDATE web_sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?"
MAX_SESSION_TOKEN = 100


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """A live session: who it acts as, and what the request must still check."""

    principal: Principal
    csrf_token: str
    setup_only: bool  # the account requires TOTP and the member has none yet
    slide: bool  # last_seen_at is old enough to be written again


def check_session(
    session: Session, token: str, now: datetime, idle: timedelta
) -> SessionCheck | None:
    """The session of a cookie's token, or None when it is unknown, signed out, idle
    for ``idle`` or more, past its absolute expiry, or its member is not active."""
    if not token or len(token) > MAX_SESSION_TOKEN:
        return None
    row = rawsql.fetchone(session, _SESSION_LOOKUP, (hash_secret(token),))
    if row is None:
        return None
    (
        session_id,
        csrf_token,
        last_seen_at,
        expires_at,
        revoked_at,
        account_id,
        kind,
        require_totp,
        member_id,
        member_role,
        member_status,
        totp_confirmed_at,
    ) = row
    if revoked_at is not None or member_status != "active":
        return None
    last_seen = rawsql.from_db_time(last_seen_at)
    if now >= rawsql.from_db_time(expires_at) or now - last_seen >= idle:
        return None
    principal = Principal(
        account_id=account_id,
        kind=kind,
        key_id=None,
        member_id=member_id,
        member_role=member_role,
        session_id=session_id,
    )
    return SessionCheck(
        principal=principal,
        csrf_token=csrf_token,
        setup_only=bool(require_totp) and totp_confirmed_at is None,
        slide=now - last_seen >= SLIDE_EVERY,
    )


def slide_session(session: Session, session_id: str, now: datetime) -> None:
    """Move the idle timeout on (a guarded write: a concurrent slide changes nothing)."""
    with rawsql.Raw(session) as db:
        db.execute(_SLIDE, (db.bind(now), session_id, db.bind(now - SLIDE_EVERY)))


def _session_principal(request: Request, token: str) -> Principal:
    settings = request.app.state.settings
    now = utcnow()
    session = request_session(request)
    check = check_session(session, token, now, timedelta(minutes=settings.session_idle_minutes))
    if check is None:
        raise Unauthenticated("The session is unknown, expired or signed out; sign in again.")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None or not hmac.compare_digest(
            sent.encode("latin-1"), check.csrf_token.encode("latin-1")
        ):
            raise CsrfFailed(f"Send the session's csrf_token in the {CSRF_HEADER} header.")
    if check.setup_only:
        refuse_until_totp_setup(request.url.path)
    if check.slide:
        session_id = check.principal.session_id or ""
        if request.method in ("GET", "HEAD"):
            # The request's own transaction only reads: write on a short one of its own.
            try:
                with transaction(request.app.state.session_factory) as writer:
                    slide_session(writer, session_id, now)
            except Exception:  # the request still stands; the next one slides
                log.warning("session_slide_failed", session_id=session_id)
        else:
            slide_session(session, session_id, now)
    return check.principal


@dataclass(slots=True)
class DeferredPrincipal:
    """A Bearer key not checked yet, and the role rules waiting for it. Resolve it in
    a worker thread (it reads the database): :meth:`resolve`."""

    request: Request
    token: str
    rules: list[Callable[[Principal], None]] = field(default_factory=list)
    resolved: Principal | None = None
    refused: bool = False
    # Set once the check has begun: should it fail (the database, say), that error
    # is the request's, and the check is not tried again on the failed session.
    started: bool = False

    def resolve(self) -> Principal:
        """The key's principal, with every waiting rule applied (401, 403 otherwise)."""
        if self.refused:
            raise Unauthenticated("The API key is unknown or revoked.")
        if self.resolved is None:
            self.started = True
            principal = authenticate(
                request_session(self.request), self.token, self.request.url.path
            )
            if principal is None:
                self.refused = True
                raise Unauthenticated("The API key is unknown or revoked.")
            self.request.state.principal = principal
            self.resolved = principal
        for rule in self.rules:
            rule(self.resolved)
        self.rules.clear()
        return self.resolved

    def add_rule(self, rule: Callable[[Principal], None]) -> None:
        if self.resolved is not None:
            rule(self.resolved)
        else:
            self.rules.append(rule)


def pending_principal(request: Request) -> DeferredPrincipal | None:
    """The request's key if it was deferred and its check has not begun."""
    pending: DeferredPrincipal | None = getattr(request.state, "pending_principal", None)
    return pending if pending is not None and not pending.started else None


def resolve_principal(value: Principal) -> Principal:
    """``value`` itself, or the principal a deferred one resolves to (in a worker
    thread)."""
    if isinstance(value, DeferredPrincipal):
        return value.resolve()
    return value


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if credentials is not None or "authorization" in request.headers:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
        if getattr(request.state, "defer_auth", False):
            pending = getattr(request.state, "pending_principal", None)
            if pending is None:
                pending = DeferredPrincipal(request, credentials.credentials)
                request.state.pending_principal = pending
            # Stands for the principal until the route resolves it (see the module).
            return cast(Principal, pending)
        session = request_session(request)
        principal = await run_in_threadpool(
            authenticate, session, credentials.credentials, request.url.path
        )
        if principal is None:
            raise Unauthenticated("The API key is unknown or revoked.")
    elif cookie is not None:
        principal = await run_in_threadpool(_session_principal, request, cookie)
    else:
        raise Unauthenticated(
            "Send an API key as 'Authorization: Bearer <key>', or sign in (POST /v1/sessions)."
        )
    request.state.principal = principal
    return principal


def require_roles(*kinds: str, member_role: MemberRole | None = None) -> Callable[..., object]:
    """A dependency that admits only accounts of the given kinds (403 otherwise).

    A member with the ``viewer`` role reads only: any other method is 403. With
    ``member_role``, a person must also hold at least that role inside the account
    (an account's own key has every power of its account)."""
    allowed = frozenset(kinds)

    async def check(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        method = request.method

        def rule(who: Principal) -> None:
            if who.kind not in allowed:
                raise Forbidden(f"This endpoint is for {', '.join(sorted(allowed))} accounts.")
            if who.member_role == "viewer" and method not in SAFE_METHODS:
                raise Forbidden("A viewer may read but not change anything.")
            if (
                member_role is not None
                and who.member_role is not None
                and not who.has_member_role(member_role)
            ):
                raise Forbidden(f"This needs the {member_role} role in the account.")

        if isinstance(principal, DeferredPrincipal):
            principal.add_rule(rule)
        else:
            rule(principal)
        return principal

    return check


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
