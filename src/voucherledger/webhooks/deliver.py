"""Delivering webhooks: fan events out to endpoints, claim due deliveries, send them
signed, record each attempt, retry with backoff, disable endpoints that keep failing.

:func:`deliver_due` is one pass; the server runs it in a :class:`BackgroundDeliverer`
thread (``webhook_delivery_enabled``) and ``voucherledger deliver`` in a process of its
own. Any number of them may run on one database:

- fan-out locks the endpoint's row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
  write lock serialises), and a delivery is unique per (endpoint, event);
- a delivery is claimed by pushing its ``next_attempt_at`` forward by a lease
  (timeout + 30 s) in a committed transaction, so two workers never send one delivery
  at once, and one killed mid-send leaves it to be sent again after the lease (at least
  once; receivers dedupe on ``webhook-id``, the event id).

Retry schedule: after the n-th failed attempt the next is due after
``min(30 s * 2**(n-1), 6 h)``, times a random factor in [0.8, 1.2]: about 30 s, 1, 2,
4, 8, 16, 32 min, 1 h 4, 2 h 8, 4 h 16, then every 6 h. A delivery still failing
``webhook_retry_hours`` after it was created is ``failed``. An endpoint whose every
attempt failed for ``webhook_retry_hours`` is disabled and a
``webhook_endpoint.disabled`` event is emitted to its owner.

SSRF: the host is resolved here, every address checked (unless
``webhook_allow_insecure_urls``), and the connection made to the checked address
(the URL's host goes in ``Host`` and, for https, in TLS SNI and the certificate
check); the peer address is checked again after connecting. Redirects are never
followed (a 3xx is a failure); at most ``webhook_max_response_bytes`` of an answer is
read.

Deliveries and their attempts are kept ``events_retention_days``, like events: the
worker purges older ones about hourly (:func:`purge`, which the sweep may call too).
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from voucherledger import __version__
from voucherledger.accounts.models import Account
from voucherledger.core import events
from voucherledger.core.db import read_only, transaction, utcnow
from voucherledger.core.errors import AppError
from voucherledger.core.ids import new_id
from voucherledger.core.settings import Settings
from voucherledger.webhooks import repository, urls
from voucherledger.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from voucherledger.webhooks.service import endpoint_out

log = structlog.get_logger("voucherledger.webhooks")

FAN_OUT_BATCH = 500
CLAIM_BATCH = 8  # sent at once, one thread each, so each finishes within its lease
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
LEASE_EXTRA = timedelta(seconds=30)
PURGE_BATCH = 1000
PURGE_EVERY_SECONDS = 3600.0
Clock = Callable[[], datetime]


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1 for the first)."""
    exponent = max(0, attempts - 1)
    seconds = min(
        BACKOFF_BASE.total_seconds() * 2 ** min(exponent, 30), BACKOFF_MAX.total_seconds()
    )
    factor = (rng or random).uniform(0.8, 1.2)
    return timedelta(seconds=seconds * factor)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- fan-out --------------------------------------------------------------------------


def fan_out(factory: sessionmaker[Session], now: datetime) -> int:
    """Turn each enabled endpoint's new events into deliveries; returns how many."""
    with factory() as session:
        ids = list(
            session.execute(
                select(WebhookEndpoint.id)
                .where(WebhookEndpoint.enabled.is_(True), WebhookEndpoint.deleted_at.is_(None))
                .order_by(WebhookEndpoint.id)
            ).scalars()
        )
    total = 0
    for endpoint_id in ids:
        while True:
            with transaction(factory) as session:
                created, more = _fan_out_batch(session, endpoint_id, now)
            total += created
            if not more:
                break
    return total


def _fan_out_batch(session: Session, endpoint_id: str, now: datetime) -> tuple[int, bool]:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id,
        WebhookEndpoint.enabled.is_(True),
        WebhookEndpoint.deleted_at.is_(None),
    )
    if _postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    endpoint = session.execute(stmt).scalar_one_or_none()
    if endpoint is None:  # disabled, deleted, or another worker is at it
        return 0, False
    kind = session.execute(
        select(Account.kind).where(Account.id == endpoint.account_id)
    ).scalar_one()
    readers = None if kind == "admin" else events.readers_of(endpoint.account_id, kind)
    # Every event up to the counter's value has committed: reading up to it, then
    # moving the cursor to it, skips none.
    until = events.last_sequence(session)
    types = [] if endpoint.event_types == ["*"] else list(endpoint.event_types)
    found = events.list_events(
        session,
        readers=readers,
        after_sequence=endpoint.cursor,
        limit=FAN_OUT_BATCH,
        types=types,
        until_sequence=until,
    )
    insert = postgresql.insert if _postgres(session) else sqlite.insert
    for event in found:
        session.execute(
            insert(WebhookDelivery)
            .values(
                id=new_id("dlv"),
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_sequence=event.sequence,
                event_type=event.type,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        )
    more = len(found) == FAN_OUT_BATCH
    last = found[-1].sequence if more and found[-1].sequence is not None else until
    endpoint.cursor = max(endpoint.cursor, last)
    return len(found), more


# --- claiming -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: str
    event_id: str
    url: str
    secrets: tuple[str, ...]
    leased_until: datetime  # the lease's token: the attempt is recorded only under it


def claim(
    factory: sessionmaker[Session], now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries for one lease, committed."""
    with transaction(factory) as session:
        stmt = (
            select(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if _postgres(session):
            stmt = stmt.with_for_update(of=WebhookDelivery, skip_locked=True)
        out: list[Claimed] = []
        until = now + lease
        for delivery in session.execute(stmt).scalars().all():
            delivery.next_attempt_at = until
            delivery.leased_until = until
            endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
            keys = [endpoint.secret]
            expires = endpoint.previous_secret_expires_at
            if endpoint.previous_secret and expires is not None and now < expires:
                keys.append(endpoint.previous_secret)
            out.append(Claimed(delivery.id, delivery.event_id, endpoint.url, tuple(keys), until))
        return out


# --- sending --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(
    event_id: str, body: bytes, keys: tuple[str, ...], at: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers: one ``v1,`` signature per secret, space-separated."""
    text = body.decode()
    signatures = " ".join(Webhook(key).sign(event_id, at, text) for key in keys)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": f"voucherledger/{__version__}",
    }


def _target(parts: Any, address: urls.IPAddress) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{host}:{port}{path}{query}"


class _Deadline:
    """A hard limit on one send: at ``seconds`` it shuts the connection's socket, which
    ends any read or write in progress. httpx's own timeouts are per read, so an answer
    trickled a byte at a time would otherwise keep a send alive, past its lease."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: keep the socket of each new connection."""
        if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            found = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(found, socket.socket):
                with self._lock:
                    self._sockets.append(found)
                    late = self.expired
                if late:
                    self._shut(found)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def send(
    client: httpx.Client, url: str, headers: dict[str, str], body: bytes, settings: Settings
) -> Outcome:
    """One POST to the checked address of ``url``, over within
    ``webhook_timeout_seconds`` whatever the receiver does; never raises."""
    started = time.monotonic()
    insecure = settings.webhook_allow_insecure_urls

    def done(status: int | None, error: str | None) -> Outcome:
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(status, elapsed, error[:500] if error else None)

    try:
        parts = urls.parse(url, allow_insecure=insecure)
        address = urls.resolve(parts, allow_insecure=insecure)[0]
    except AppError as exc:
        return done(None, exc.detail)
    except Exception as exc:  # a fault of the resolver is a failed attempt, not a crash
        return done(None, f"{type(exc).__name__}: {exc}")
    timeout = settings.webhook_timeout_seconds
    deadline = started + timeout
    with _Deadline(max(0.0, deadline - time.monotonic())) as limit:
        extensions: dict[str, Any] = {"trace": limit.trace}
        if parts.scheme == "https":
            extensions["sni_hostname"] = parts.hostname
        try:
            return _post(client, parts, address, headers, body, extensions, settings, done)
        except Exception as exc:  # whatever happens, the attempt failed
            if limit.expired or time.monotonic() >= deadline:
                return done(None, f"timed out after {timeout:g} s")
            if isinstance(exc, httpx.TimeoutException):
                return done(None, "timed out")
            return done(None, f"{type(exc).__name__}: {exc}")


def _post(
    client: httpx.Client,
    parts: Any,
    address: urls.IPAddress,
    headers: dict[str, str],
    body: bytes,
    extensions: dict[str, Any],
    settings: Settings,
    done: Callable[[int | None, str | None], Outcome],
) -> Outcome:
    deadline = time.monotonic() + settings.webhook_timeout_seconds
    request = client.build_request(
        "POST",
        _target(parts, address),
        headers={**headers, "host": parts.netloc},
        content=body,
        extensions=extensions,
    )
    response = client.send(request, stream=True, follow_redirects=False)
    try:
        peer = _peer(response)
        if peer is not None and peer != address:
            return done(None, "connected to another address than the one checked")
        received = 0
        cut = False
        for chunk in response.iter_raw():
            received += len(chunk)
            if received > settings.webhook_max_response_bytes:
                cut = True
                break
            if time.monotonic() > deadline:
                return done(None, "timed out reading the answer")
    finally:
        response.close()
    status = response.status_code
    if 300 <= status < 400:
        return done(status, f"redirect to {response.headers.get('location', '?')} not followed")
    error = None if 200 <= status < 300 else f"answered {status}"
    if cut and error is None:
        log.debug("webhook_answer_cut", host=parts.hostname)
    return done(status, error)


def _peer(response: httpx.Response) -> urls.IPAddress | None:
    """The address the connection went to; None when the stream cannot say (it may
    be shut already: a receiver that answered ``Connection: close``)."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        addr = stream.get_extra_info("server_addr")
        return ipaddress.ip_address(str(addr[0]).split("%", 1)[0]) if addr else None
    except (OSError, ValueError, TypeError, IndexError):
        return None


# --- recording ------------------------------------------------------------------------


def record(
    factory: sessionmaker[Session],
    item: Claimed,
    outcome: Outcome,
    now: datetime,
    settings: Settings,
) -> bool:
    """The attempt, and what it means for its delivery and endpoint; False when the
    lease it was sent under is no longer this worker's (it ran out and another worker
    claimed the delivery, or it was purged): then only the attempt is kept."""
    retry_for = timedelta(hours=settings.webhook_retry_hours)
    with transaction(factory) as session:
        delivery = session.get(WebhookDelivery, item.delivery_id, with_for_update=True)
        if delivery is None:  # purged meanwhile
            return False
        session.add(
            WebhookAttempt(
                id=new_id("att"),
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
            )
        )
        if delivery.leased_until != item.leased_until:
            log.warning("webhook_lease_lost", delivery_id=delivery.id)
            return False
        delivery.leased_until = None
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_duration_ms = outcome.duration_ms
        delivery.last_error = outcome.error
        endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
        if outcome.ok:
            delivery.status = "succeeded"
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            endpoint.failing_since = None
            return True
        if now - delivery.created_at >= retry_for:
            delivery.status = "failed"
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        elif endpoint.enabled and now - endpoint.failing_since >= retry_for:
            endpoint.enabled = False
            endpoint.disabled_reason = (
                f"every attempt failed for {settings.webhook_retry_hours:g} hours"
            )
            endpoint.updated_at = now
            session.flush()
            events.emit(
                session,
                "webhook_endpoint.disabled",
                {"object": endpoint_out(endpoint).model_dump(mode="json")},
                account_ids=[endpoint.account_id],
                at=now,
            )
        return True


# --- one pass -------------------------------------------------------------------------


def _attempt(
    factory: sessionmaker[Session],
    client: httpx.Client,
    item: Claimed,
    settings: Settings,
    clock: Clock,
) -> None:
    with factory() as session:
        event = events.get_event(session, item.event_id)
        payload = None if event is None else events.event_object(event)
    if payload is None:
        outcome = Outcome(None, 0, "the event was purged")
    else:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = signed_headers(item.event_id, body, item.secrets, datetime.now(UTC))
        outcome = send(client, item.url, headers, body, settings)
    record(factory, item, outcome, clock(), settings)


def make_client(settings: Settings) -> httpx.Client:
    """No proxies from the environment (they would bypass the address check), no
    redirects, no kept-alive connections (a connection is to one checked address)."""
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        timeout=settings.webhook_timeout_seconds,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _any_endpoint(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        engine = session.get_bind()
    if not isinstance(engine, Engine):
        engine = engine.engine
    with factory(bind=read_only(engine)) as session:
        found = session.execute(
            select(WebhookEndpoint.id)
            .where(WebhookEndpoint.enabled.is_(True), WebhookEndpoint.deleted_at.is_(None))
            .limit(1)
        ).first()
    return found is not None


def deliver_due(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    clock: Clock = utcnow,
    http: httpx.Client | None = None,
) -> int:
    """Number pending events, fan them out, and send every due delivery once; returns
    how many attempts were made. Without any enabled endpoint it only reads (on SQLite
    it then takes no write lock)."""
    if not _any_endpoint(factory):
        return 0
    events.sequence_pending(factory)
    fan_out(factory, clock())
    lease = timedelta(seconds=settings.webhook_timeout_seconds) + LEASE_EXTRA
    client = http or make_client(settings)
    attempts = 0
    pool = ThreadPoolExecutor(max_workers=CLAIM_BATCH, thread_name_prefix="webhook-send")
    try:
        while True:
            claimed = claim(factory, clock(), lease, CLAIM_BATCH)
            if not claimed:
                break
            sends = [
                pool.submit(_attempt, factory, client, item, settings, clock) for item in claimed
            ]
            # Each send ends by its deadline; should one still hang (the database, say),
            # the pass ends at the lease rather than wait: the lease guards the rest.
            _done, hanging = wait(sends, timeout=lease.total_seconds())
            for future in sends:
                if future in hanging:
                    continue
                if (error := future.exception()) is not None:
                    log.error("webhook_attempt_failed", error=repr(error))
            attempts += len(claimed)
            if hanging:
                log.warning("webhook_sends_hanging", count=len(hanging))
                break
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if http is None:
            client.close()
    return attempts


def purge(factory: sessionmaker[Session], before: datetime) -> int:
    """Delete deliveries (and attempts) created before ``before``, in batches."""
    total = 0
    while True:
        with transaction(factory) as session:
            count = repository.purge_deliveries(session, before, PURGE_BATCH)
        total += count
        if count < PURGE_BATCH:
            return total


class BackgroundDeliverer:
    """Runs :func:`deliver_due` about every ``webhook_interval_seconds`` in a daemon thread."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self._factory = factory
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="voucherledger-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._settings.webhook_timeout_seconds + 5)

    def run(self) -> None:
        """Until stopped (also the body of ``voucherledger deliver``). About once an
        hour it also purges deliveries older than ``events_retention_days`` (harmless
        when several workers do it at once)."""
        next_purge = time.monotonic()
        while not self._stop.is_set():
            try:
                deliver_due(self._factory, self._settings)
                if time.monotonic() >= next_purge:
                    retention = timedelta(days=self._settings.events_retention_days)
                    purge(self._factory, utcnow() - retention)
                    next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            except Exception:  # keep delivering after a transient database error
                log.exception("webhook_delivery_failed")
            self._stop.wait(self._settings.webhook_interval_seconds)

    def request_stop(self) -> None:
        self._stop.set()
