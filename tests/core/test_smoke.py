from fastapi.testclient import TestClient

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from voucherledger.core.settings import Settings


def test_me_returns_the_callers_account(settings: Settings) -> None:
    client: TestClient
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        response = client.get("/v1/me", headers=funder.headers)
        assert response.status_code == 200
        assert response.json()["id"] == funder.id
        assert response.json()["kind"] == "funder"
