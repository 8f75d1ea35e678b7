"""A voucher past ``expires_at`` reads as expired before any sweep has run: to the
group, to the issuers, in listings and their status filters. The sweep then moves its
value back to the budget; the voucher reads the same before and after, but for the
balance the ledger still holds until then."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories.app import client_for
from tests.factories.programmes import issue
from tests.factories.redemptions import (
    claim_programme,
    get_voucher,
    issue_expiring,
    make_cast,
    moved_clock,
    sweep,
)
from voucherledger.core.settings import Settings


def test_a_voucher_past_its_expiry_reads_as_expired_before_the_sweep(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_for(settings) as client, moved_clock(monkeypatch) as clock:
        c = make_cast(client)
        pid = claim_programme(client, c)["id"]
        soon = issue_expiring(client, c, pid, 5_000, after=timedelta(hours=1))
        later = issue(client, c.manager, pid, c.group.id, 3_000)
        clock.advance(timedelta(hours=2))

        def listed(status: str | None = None) -> dict[str, str]:
            params = {"programme_id": pid, **({"status": status} if status else {})}
            response = client.get("/v1/vouchers", headers=c.group.headers, params=params)
            assert response.status_code == 200, response.text
            return {v["id"]: v["status"] for v in response.json()["data"]}

        for party in (c.group, c.manager, c.funder):
            assert get_voucher(client, party, soon["id"])["status"] == "expired"
        assert get_voucher(client, c.group, later["id"])["status"] == "active"
        assert listed() == {soon["id"]: "expired", later["id"]: "active"}
        assert listed("active") == {later["id"]: "active"}
        assert listed("expired") == {soon["id"]: "expired"}

        unswept = get_voucher(client, c.group, soon["id"])
        assert unswept["balance"] == 5_000  # still on the ledger until the sweep
        assert sweep(client, c.manager, pid).json()["expired_vouchers"] == 1
        swept = get_voucher(client, c.group, soon["id"])
        assert swept["status"] == "expired"
        assert swept["balance"] == 0
        assert listed("expired") == {soon["id"]: "expired"}
