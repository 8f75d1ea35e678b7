"""A deposit is in the programme's currency; naming another is refused and writes nothing."""

from __future__ import annotations

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import assert_problem, balances, create_programme, snapshot
from voucherledger.core.settings import Settings


def test_a_deposit_in_another_currency_is_refused(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        programme = create_programme(client, funder)["id"]
        before = snapshot(client)
        refused = client.post(
            f"/v1/programmes/{programme}/deposits",
            headers=funder.headers,
            json={"amount": 500, "reference": "wire 7", "currency": "USD"},
        )
        assert_problem(refused, 422, "validation_error")
        assert snapshot(client) == before
        same = client.post(
            f"/v1/programmes/{programme}/deposits",
            headers=funder.headers,
            json={"amount": 500, "reference": "wire 7", "currency": "EUR"},
        )
        assert same.status_code == 201, same.text
        assert balances(client, funder, programme)["deposited"] == 500
