"""The HTTP app under test and keys to call it with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from voucherledger.accounts.service import create_admin
from voucherledger.app import create_app
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings


@contextmanager
def client_for(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def admin_headers(client: TestClient, name: str = "Operator") -> dict[str, str]:
    """Bootstrap an admin the way the CLI does, and return its auth header."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with transaction(factory) as session:
        created = create_admin(session, name)
    return {"Authorization": f"Bearer {created.key}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
