"""Value that a women-led voucher drew from the reserve goes back to the reserve, whichever
way it comes back: revoke, a released hold, or a refund after the voucher ended."""

from __future__ import annotations

from tests.factories.accounts import make_party
from tests.factories.app import client_for
from tests.factories.programmes import balances, issue, ledger_problems
from tests.factories.redemptions import claim, claim_programme, decide, make_cast, refund
from voucherledger.core.settings import Settings


def test_the_reserve_share_returns_to_the_reserve(settings: Settings) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        women_led = make_party(client, cast.admin, "group", group={"women_led": True})
        programme = claim_programme(
            client,
            cast,
            10_000,
            accredit_for=(cast.supplier,),
            rules={"women_led_reserve_pct": 50},
        )["id"]
        voucher = issue(client, cast.funder, programme, women_led.id, 1_000)
        assert balances(client, cast.funder, programme)["unissued_women_led_reserve"] == 4_000

        held = claim(client, cast.supplier, voucher["code"], 400)
        captured = claim(client, cast.supplier, voucher["code"], 100)
        assert decide(client, women_led, captured["id"], "confirm").status_code == 200
        revoked = client.post(
            f"/v1/vouchers/{voucher['id']}/revoke",
            headers=cast.funder.headers,
            json={"reason": "group dissolved"},
        )
        assert revoked.status_code == 200, revoked.text
        after_revoke = balances(client, cast.funder, programme)
        assert after_revoke["unissued_women_led_reserve"] == 4_000 + 500
        assert after_revoke["held"] == 400

        assert decide(client, women_led, held["id"], "reject").status_code == 200
        assert refund(client, cast.supplier, captured["id"], 60).status_code == 201
        final = balances(client, cast.funder, programme)
        # 500 + 400 + 60 of the 1,000 the voucher drew from the reserve are back in it.
        assert final["unissued_women_led_reserve"] == 4_000 + 960
        assert final["unissued"] == 5_000
        assert final["payable"] == 40
        assert ledger_problems(client) == []
