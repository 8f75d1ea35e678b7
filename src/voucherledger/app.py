"""The application factory."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from anyio import to_thread
from fastapi import FastAPI

from voucherledger import __version__, ledger
from voucherledger.accounts.router import router as accounts_router
from voucherledger.apidocs import install_docs
from voucherledger.audit.router import router as audit_router
from voucherledger.console import install_console
from voucherledger.console.supplier import claim_form_max_bytes
from voucherledger.core.db import (
    create_db_engine,
    create_read_engine,
    create_session_factory,
    read_only,
)
from voucherledger.core.http import BodyLimit, RequestGuard
from voucherledger.core.observability import RequestContextMiddleware, configure_logging
from voucherledger.core.settings import Settings, get_settings
from voucherledger.events.router import router as events_router
from voucherledger.evidence.router import router as evidence_router
from voucherledger.evidence.storage import DatabaseStore
from voucherledger.health import router as health_router
from voucherledger.ledger.sealer import BackgroundSealer
from voucherledger.ledger.signing import load_signer
from voucherledger.people.limiter import SigninLimiter
from voucherledger.people.router import public as people_public_router
from voucherledger.people.router import router as people_router
from voucherledger.people.session_router import public as signin_router
from voucherledger.people.session_router import router as session_router
from voucherledger.problems import install_error_handlers
from voucherledger.programmes.router import router as programmes_router
from voucherledger.redemptions import service as redemptions
from voucherledger.redemptions.limiter import FailureLimiter
from voucherledger.redemptions.router import router as redemptions_router
from voucherledger.redemptions.router import validation as validation_router
from voucherledger.reporting.router import router as reporting_router
from voucherledger.settlements.router import router as settlements_router
from voucherledger.sweep.background import BackgroundSweeper
from voucherledger.sweep.router import router as sweep_router
from voucherledger.vouchers.router import issuance as issuance_router
from voucherledger.vouchers.router import issuance_check as issuance_check_router
from voucherledger.vouchers.router import router as vouchers_router
from voucherledger.webhooks.deliver import BackgroundDeliverer
from voucherledger.webhooks.router import router as webhooks_router

DESCRIPTION = """\
Voucher-based funding schemes over an append-only double-entry ledger.

Authenticate with `Authorization: Bearer <api key>`. Money is an integer of minor units
next to an ISO 4217 currency. Errors are RFC 9457 `application/problem+json` with a
stable `code`. Every POST accepts an `Idempotency-Key`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    engine = create_db_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
    )
    session_factory = create_session_factory(engine)
    # The read replica, when set (settings refuse it for SQLite): see core.session.
    replica_engine = None
    if settings.read_database_url is not None:
        replica_engine = create_read_engine(
            settings.read_database_url,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
        )
    signer = load_signer(settings.signing_key, settings.signing_key_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every sync endpoint, dependency and streamed chunk runs in this event loop's
        # worker threads: bound how many requests contend for the GIL and the database.
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        sealer = None
        if settings.sealer_enabled:
            sealer = BackgroundSealer(
                session_factory,
                signer,
                interval=settings.seal_interval_seconds,
                batch_size=settings.seal_batch_size,
            )
            sealer.start()
        sweeper = None
        if settings.sweep_enabled:
            sweeper = BackgroundSweeper(
                session_factory,
                interval=settings.sweep_interval_seconds,
                idempotency_retention_hours=settings.idempotency_retention_hours,
                events_retention_days=settings.events_retention_days,
            )
            sweeper.start()
        app.state.sweeper = sweeper
        deliverer = None
        if settings.webhook_delivery_enabled:
            deliverer = BackgroundDeliverer(session_factory, settings)
            deliverer.start()
        try:
            yield
        finally:
            if deliverer is not None:
                deliverer.stop()
            if sweeper is not None:
                sweeper.stop()
            if sealer is not None:
                sealer.stop()
            engine.dispose()
            if replica_engine is not None:
                replica_engine.dispose()

    app = FastAPI(
        title="voucherledger",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs, not from a CDN
        redoc_url=None,
        openapi_url=None,  # served by install_docs, under its own route name
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_only(engine)
    app.state.session_factory = session_factory
    app.state.replica_session_factory = (
        create_session_factory(replica_engine) if replica_engine is not None else None
    )
    app.state.signer = signer
    # A fresh Idempotency-Key must not be one the journal already holds (its record
    # purged after the retention): core.idempotency asks the ledger through this.
    app.state.ledger_key_used = ledger.key_used
    app.state.code_limiter = FailureLimiter(limit=10, window=60.0)
    # Evidence bytes live behind a small interface (evidence.storage); the database
    # keeps them by default. Who may read a file follows who may read its claim, a
    # rule of redemptions, which sits above evidence: handed down here.
    app.state.evidence_store = DatabaseStore()
    app.state.claim_readable = redemptions.readable
    app.state.signin_limiter = SigninLimiter(
        limit=settings.signin_failure_limit,
        window=timedelta(minutes=settings.signin_failure_window_minutes),
    )
    install_error_handlers(app)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        body_limits=[
            BodyLimit(
                "POST",
                re.compile(r"/v1/programmes/[^/]+/vouchers/batch(/check)?"),
                settings.max_batch_body_bytes,
            ),
            # One file and its multipart framing.
            BodyLimit("POST", re.compile(r"/v1/evidence"), settings.evidence_max_bytes + 64 * 1024),
            # The console's claim form: a few files at the largest and the form's fields
            # (the console sends each file on to POST /v1/evidence, under the limit above).
            BodyLimit(
                "POST",
                re.compile(r"/console/redeem/claim"),
                claim_form_max_bytes(settings.evidence_max_bytes),
            ),
        ],
    )
    app.add_middleware(RequestContextMiddleware)  # outermost: the guard's problems get an id
    app.include_router(health_router)
    install_docs(app)
    app.include_router(accounts_router)
    app.include_router(people_router)
    app.include_router(people_public_router)
    app.include_router(signin_router)
    app.include_router(session_router)
    app.include_router(programmes_router)
    app.include_router(reporting_router)
    app.include_router(sweep_router)
    app.include_router(issuance_router)
    app.include_router(issuance_check_router)
    app.include_router(validation_router)  # before /v1/vouchers/{voucher_id}
    app.include_router(vouchers_router)
    app.include_router(redemptions_router)
    app.include_router(evidence_router)
    app.include_router(settlements_router)
    app.include_router(audit_router)
    app.include_router(events_router)
    app.include_router(webhooks_router)
    install_console(app)
    return app
