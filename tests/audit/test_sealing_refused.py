"""A server whose signing key is not the chain's current one (a lost development key
file) seals nothing: the checkpoint and export, which seal first, answer a
problem with a stable code instead of a 500, and nothing is sealed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.ledger import open_chart, transfer
from voucherledger.core.settings import Settings
from voucherledger.ledger.models import SealBlock
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.signing import Signer

ANOTHER = Signer.from_seed(b"\x55" * 32)


@pytest.mark.parametrize("path", ["/v1/audit/checkpoint", "/v1/audit/export"])
def test_a_server_with_another_key_answers_sealing_refused(
    settings: Settings, session_factory: sessionmaker[Session], path: str
) -> None:
    open_chart(session_factory, ["programme:p1:unissued"])
    transfer(session_factory, "funder:f1", "programme:p1:unissued", 10, kind="deposit")
    seal_pending(session_factory, ANOTHER)  # the chain's key is not the server's
    transfer(session_factory, "funder:f1", "programme:p1:unissued", 10, kind="deposit")
    with client_for(settings) as client:
        funder = make_party(client, admin_headers(client), "funder")
        response = client.get(path, headers=funder.headers)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "sealing_refused"
    assert ANOTHER.public_key_hex in body["detail"]
    with session_factory() as session:
        assert session.execute(select(func.count()).select_from(SealBlock)).scalar_one() == 1
