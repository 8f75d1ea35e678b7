"""Settings, read from the environment with the prefix ``VOUCHERLEDGER_``.

The server, the CLI and the tests all build their settings here, so one
``VOUCHERLEDGER_DATABASE_URL`` points every entry point at the same database.
"""

from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOUCHERLEDGER_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./voucherledger.db",
        description="sqlite:///path/to/file.db or postgresql://user@host:5432/db",
    )
    signing_key: str | None = Field(
        default=None,
        description="Ed25519 private key (32 bytes, hex or base64) that signs seal blocks. "
        "When unset, a development key is generated once and stored in signing_key_file.",
    )
    signing_key_file: Path = Field(
        default=Path("./.voucherledger-signing-key"),
        description="Where the generated development signing key is kept.",
    )
    seal_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the background sealer runs in the server."
    )
    seal_batch_size: int = Field(default=5000, gt=0, le=100_000)
    sealer_enabled: bool = Field(default=True, description="Run the sealer inside the server.")
    pool_size: int = Field(default=20, gt=0, description="PostgreSQL connections per process.")
    worker_threads: int = Field(
        default=40,
        gt=0,
        le=1000,
        description="Requests a process works on at once (its worker threads; AnyIO's "
        "default is 40). The rest wait their turn, first come first served; "
        "docs/operations.md says when fewer help.",
    )
    iati_reporting_org_ref: str = Field(
        default="XX-VOUCHERLEDGER",
        description="IATI organisation identifier of the publisher of IATI exports "
        "({registration agency}-{id}, e.g. GB-CHC-1234567); activity identifiers are "
        "{this}-{programme id}. The default is a placeholder for development.",
    )
    iati_reporting_org_name: str = Field(
        default="voucherledger (development)",
        description="Name of the publisher of IATI exports (reporting-org narrative).",
    )
    iati_reporting_org_type: str = Field(
        default="90",
        pattern=r"^[0-9]{2}$",
        description="IATI OrganisationType code of the publisher (e.g. 21 international "
        "NGO, 60 foundation, 90 other).",
    )
    giving360_prefix: str = Field(
        default="voucherledger",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The publisher's 360Giving prefix, without '360G-': grants are "
        "360G-{prefix}-{voucher id}, parties 360G-{prefix}-{account id}.",
    )
    log_level: str = "INFO"
    log_json: bool = False
    # --- issue 9, section 1: input that must never give a 500 -------------------------
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body, in bytes; above it 413 payload_too_large.",
    )
    max_batch_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Largest body of POST /v1/programmes/{id}/vouchers/batch and of its "
        "dry run .../batch/check (10,000 "
        "vouchers with every field take about 1.9 MiB, 3.3 MiB indented by four).",
    )
    evidence_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest evidence file (POST /v1/evidence), in bytes; above it 413 "
        "evidence_too_large. The request's body may pass it by 64 KiB (the multipart "
        "framing); a body above that is 413 payload_too_large.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        gt=0,
        description="Largest total size of a request's header names and values; above "
        "it 431 headers_too_large. `voucherledger serve` also passes it to uvicorn.",
    )

    # --- Issue 9, section 3: database faults (connection use stays bounded) ---
    max_overflow: int | None = Field(
        default=None,
        ge=0,
        description="PostgreSQL connections a process may open above pool_size under "
        "load (default: as many as pool_size). A process uses at most pool_size + "
        "max_overflow connections; N processes N times that (docs/operations.md).",
    )
    pool_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a request waits for a free pooled connection before it "
        "answers 503 database_unavailable.",
    )

    # --- Hardening 4: time that passes by itself (the background sweep) ---
    sweep_enabled: bool = Field(
        default=True,
        description="Run the sweep (expiry, timed-out holds, purges) inside the server; "
        "one process among all processes and nodes does it at a time, under a lease.",
    )
    sweep_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often the background sweep runs in the server."
    )
    idempotency_retention_hours: int = Field(
        default=24,
        ge=24,
        description="Idempotency-Key records are kept at least this long (at least 24 h), "
        "then purged by the background sweep.",
    )

    # --- Issue 9, section 7: headers and operator-facing output ---
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="When set, /metrics answers only 'Authorization: Bearer <this token>' "
        "(else 401). Unset, /metrics is open: keep it off the public network.",
    )

    # --- Issue 10: people ---
    password_time_cost: int = Field(
        default=3, ge=1, le=20, description="Argon2id passes over memory for a password hash."
    )
    password_memory_kib: int = Field(
        default=65536,
        ge=8,
        le=4_194_304,
        description="Argon2id memory per password hash, KiB (65536: RFC 9106's second choice).",
    )
    password_parallelism: int = Field(default=4, ge=1, le=64, description="Argon2id lanes.")
    invite_ttl_hours: int = Field(
        default=168,
        ge=1,
        le=24 * 90,
        description="How long an invitation's token may be used to accept it (168: 7 days).",
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="A browser session ends after this many minutes without a request.",
    )
    session_absolute_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description="A browser session ends this many hours after sign-in, however used.",
    )
    session_cookie_secure: bool = Field(
        default=True,
        description="Mark the vl_session cookie Secure (sent over HTTPS only). Turn it off "
        "only for development over plain http (`make run` does).",
    )
    signin_failure_limit: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed sign-ins allowed per email, and per client address, within "
        "signin_failure_window_minutes; further attempts answer 429 rate_limited.",
    )
    signin_failure_window_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="The sliding window of signin_failure_limit, in minutes.",
    )

    # --- Issue 13: events and webhooks ---
    events_retention_days: int = Field(
        default=30,
        ge=30,
        description="Events (GET /v1/events, webhooks) are kept at least this many days "
        "(at least 30), then purged by the background sweep. The ledger is never purged.",
    )
    webhook_delivery_enabled: bool = Field(
        default=True,
        description="Deliver webhooks from a background worker inside the server; turn it "
        "off to run `voucherledger deliver` as a separate worker instead.",
    )
    webhook_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the webhook worker looks for due deliveries."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Timeout of one webhook delivery attempt."
    )
    webhook_retry_hours: float = Field(
        default=72.0,
        gt=0,
        description="A delivery is retried (exponential backoff with jitter) for this long; "
        "an endpoint whose every attempt failed for this long is disabled.",
    )
    webhook_allow_insecure_urls: bool = Field(
        default=False,
        description="Allow webhook URLs over plain http and to private, loopback and "
        "link-local addresses. For development and tests only: in production a webhook "
        "URL must be https and resolve to a public address.",
    )
    webhook_max_response_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="At most this much of a receiver's answer is read (the rest is cut).",
    )

    # --- Issue 14: a read replica for exports, reports and journal queries ---
    read_database_url: str | None = Field(
        default=None,
        description="postgresql://user@replica:5432/db: a streaming replica of "
        "database_url that answers the audit exports, the reports and the journal "
        "list and trial balance (docs/operations.md), in read-only transactions; its "
        "answers may lag the primary. Unset: everything reads from database_url. "
        "PostgreSQL only: refused with a SQLite database_url or a SQLite URL here.",
    )

    @model_validator(mode="after")
    def _read_replica_is_postgresql(self) -> Self:
        if self.read_database_url is None:
            return self
        # The URLs may carry passwords: the message names neither.
        for name, url in (("", self.database_url), ("READ_", self.read_database_url)):
            if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
                raise ValueError(
                    "VOUCHERLEDGER_READ_DATABASE_URL needs a PostgreSQL primary and a "
                    f"PostgreSQL replica (postgresql://...); VOUCHERLEDGER_{name}DATABASE_URL "
                    "is not one. A SQLite database has no replicas: unset "
                    "VOUCHERLEDGER_READ_DATABASE_URL."
                )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
