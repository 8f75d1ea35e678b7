"""The HTTP app under test and keys to call it with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter
from fastapi.testclient import TestClient

from voucherledger.accounts.service import create_admin
from voucherledger.app import create_app
from voucherledger.core.db import transaction
from voucherledger.core.routing import CommittingRoute
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


def flaky_client(settings: Settings, failures: list[Exception]) -> tuple[TestClient, list[int]]:
    """A client of the app with ``GET /flaky`` added, a CommittingRoute that raises
    ``failures`` one per call before it answers; and the list its calls go into."""
    calls: list[int] = []
    router = APIRouter(route_class=CommittingRoute)

    @router.get("/flaky")
    def flaky() -> dict[str, int]:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return {"calls": len(calls)}

    app = create_app(settings)
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False), calls
