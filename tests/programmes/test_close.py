"""After a programme closes, value that comes back from its vouchers goes to the funder:
a closed budget can issue nothing, so nothing may be stranded in it."""

from __future__ import annotations

from tests.factories.accounts import make_party
from tests.factories.app import admin_headers, client_for
from tests.factories.programmes import balances, funded_programme, issue, ledger_problems
from voucherledger.core.settings import Settings


def test_value_revoked_after_close_returns_to_the_funder(settings: Settings) -> None:
    with client_for(settings) as client:
        admin = admin_headers(client)
        funder = make_party(client, admin, "funder")
        group = make_party(client, admin, "group", group={"women_led": True})
        programme = funded_programme(client, funder, 10_000, rules={"women_led_reserve_pct": 50})[
            "id"
        ]
        voucher = issue(client, funder, programme, group.id, 3_000)["id"]
        closed = client.post(f"/v1/programmes/{programme}/close", headers=funder.headers)
        assert closed.status_code == 200, closed.text
        assert closed.json()["balances"]["returned_to_funder"] == 7_000

        revoked = client.post(
            f"/v1/vouchers/{voucher}/revoke", headers=funder.headers, json={"reason": "ended"}
        )
        assert revoked.status_code == 200, revoked.text
        after = balances(client, funder, programme)
        assert after["unissued"] == 0
        assert after["unissued_women_led_reserve"] == 0
        assert after["outstanding"] == 0
        assert after["returned_to_funder"] == 10_000
        assert after["deposited"] == 10_000
        assert ledger_problems(client) == []
