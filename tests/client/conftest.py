"""A real server for the client's tests, and its first admin key (as the CLI makes it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.factories.server import running_server
from voucherledger.accounts.service import create_admin
from voucherledger.core.db import create_db_engine, create_session_factory, transaction
from voucherledger.core.settings import Settings


@dataclass(frozen=True)
class Served:
    url: str
    admin_key: str


def admin_key(settings: Settings, name: str = "Scheme operator") -> str:
    """The first admin's key, made in the database the way ``keys create-admin`` does."""
    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        with transaction(create_session_factory(engine)) as session:
            created = create_admin(session, name)
    finally:
        engine.dispose()
    assert created.key is not None
    return created.key


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    with running_server(settings) as url:
        yield Served(url, admin_key(settings))
