"""Settings, read from the environment with the prefix ``VOUCHERLEDGER_``.

The server, the CLI and the tests all build their settings here, so one
``VOUCHERLEDGER_DATABASE_URL`` points every entry point at the same database.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
        description="Largest body of POST /v1/programmes/{id}/vouchers/batch (10,000 "
        "vouchers with every field take about 1.9 MiB, 3.3 MiB indented by four).",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        gt=0,
        description="Largest total size of a request's header names and values; above "
        "it 431 headers_too_large. `voucherledger serve` also passes it to uvicorn.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
