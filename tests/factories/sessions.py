"""Signing members in through the API, and a clock for sessions, codes and limits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.factories.people import PASSWORD, Person, add_member, set_password
from tests.factories.redemptions import Clock
from voucherledger.app import create_app
from voucherledger.core.auth import MemberRole
from voucherledger.core.settings import Settings

# Every module whose utcnow decides something about a session, a code or a failure.
SESSION_CLOCKED_MODULES = (
    "voucherledger.core.auth",
    "voucherledger.people.sessions",
    "voucherledger.people.totp",
    "voucherledger.people.limiter",
)


@contextmanager
def session_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock()
    with monkeypatch.context() as patched:
        for module in SESSION_CLOCKED_MODULES:
            patched.setattr(f"{module}.utcnow", clock)
        yield clock


@contextmanager
def https_client(settings: Settings, address: str = "203.0.113.7") -> Iterator[TestClient]:
    """A client over https (so the Secure cookie comes back), from ``address``."""
    app = create_app(settings)
    with TestClient(
        app, base_url="https://testserver", raise_server_exceptions=False, client=(address, 50000)
    ) as client:
        yield client


@dataclass(frozen=True)
class Human:
    person: Person
    email: str


def add_human(
    client: TestClient,
    account_id: str,
    role: MemberRole,
    *,
    email: str | None = None,
    password: str = PASSWORD,
) -> Human:
    """An active member with a real password (and a personal key)."""
    person = add_member(client, account_id, role, email=email)
    set_password(client, person.id, password)
    address = email or f"{person.id.lower()}@example.org"
    return Human(person, address)


def code_at(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)
