"""Tables of sign-in: browser sessions and failed sign-ins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from voucherledger.core.db import Base, UTCDateTime


class WebSession(Base):
    """A member signed in from a browser (cookie ``vl_session``).

    Only the SHA-256 of the cookie's token is stored (256 random bits, so a fast
    hash suffices), looked up through its unique index. ``csrf_token`` is stored as
    it is: it is no credential on its own (it is useless without the cookie), and
    keeping it lets ``GET /v1/me`` give it back to a console after a page reload.

    A session ends at ``expires_at`` (absolute: ``session_absolute_hours`` after
    sign-in), after ``session_idle_minutes`` without a request (``last_seen_at``,
    written at most once a minute), at sign-out (``revoked_at``), or as soon as its
    member is no longer active.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class SigninFailure(Base):
    """One failed sign-in: a wrong email, password or TOTP code. The limiter counts
    these in a sliding window per email (folded to lower case) and per client
    address, so every process and node sees one count; the sweep purges old rows."""

    __tablename__ = "signin_failures"
    __table_args__ = (
        Index("ix_signin_failures_email_key_failed_at", "email_key", "failed_at"),
        Index("ix_signin_failures_client_address_failed_at", "client_address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    email_key: Mapped[str] = mapped_column(String(254))
    client_address: Mapped[str | None] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
