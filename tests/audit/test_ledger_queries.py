"""Journal queries: scoped to the caller's programmes; balances at any instant match a
replay of the journal; the trial balance sums to zero per currency at every instant."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.factories.app import client_for
from tests.factories.programmes import issue
from tests.factories.redemptions import Cast, claim, claim_programme, decide, make_cast
from voucherledger import chart
from voucherledger.core.settings import Settings


def _all_transactions(client: TestClient, cast: Cast, programme_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"programme_id": programme_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/ledger/transactions", headers=cast.auditor.headers, params=params)
        assert page.status_code == 200, page.text
        found.extend(page.json()["data"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


def test_as_of_balances_replay_the_journal(settings: Settings) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(client, cast, 9_000, accredit_for=(cast.supplier,))["id"]
        instants: list[datetime] = []
        voucher = issue(client, cast.funder, programme, cast.group.id, 2_000)
        for amount in (300, 450, 125):
            time.sleep(0.002)
            made = claim(client, cast.supplier, voucher["code"], amount)
            instants.append(datetime.fromisoformat(made["created_at"]))
        pending = client.get("/v1/redemptions?status=pending", headers=cast.group.headers)
        first = pending.json()["data"][0]["id"]
        assert decide(client, cast.group, first, "confirm").status_code == 200

        journal = _all_transactions(client, cast, programme)
        assert len(journal) == 1 + 1 + 3 + 1  # deposit, issue, three holds, a capture
        account = chart.voucher(voucher["id"])
        for instant in instants:
            replayed: dict[str, int] = defaultdict(int)
            for txn in journal:
                if datetime.fromisoformat(txn["created_at"]) <= instant:
                    for leg in txn["postings"]:
                        replayed[leg["account"]] += leg["amount"]
            got = client.get(
                f"/v1/ledger/accounts/{account}/balance",
                headers=cast.auditor.headers,
                params={"as_of": instant.isoformat()},
            )
            assert got.status_code == 200, got.text
            assert got.json()["balance"] == replayed[account]
            trial = client.get(
                "/v1/ledger/trial-balance",
                headers=cast.auditor.headers,
                params={"programme_id": programme, "as_of": instant.isoformat()},
            )
            assert trial.json()["totals"] == {"EUR": 0}
            assert {a["account"]: a["balance"] for a in trial.json()["accounts"]} == dict(replayed)
        now = client.get(f"/v1/ledger/accounts/{account}/balance", headers=cast.group.headers)
        assert now.json()["balance"] == 2_000 - 300 - 450 - 125


def test_an_auditor_of_one_programme_gets_404_for_another(settings: Settings) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        mine = claim_programme(client, cast, 1_000)["id"]
        other = claim_programme(client, cast, 1_000, auditor_ids=[])["id"]
        foreign = _all_transactions(client, cast, mine)  # the auditor's own: fine
        assert foreign
        theirs = client.get(
            "/v1/ledger/transactions", headers=cast.funder.headers, params={"programme_id": other}
        ).json()["data"][0]["id"]
        for path, params in [
            ("/v1/ledger/transactions", {"programme_id": other}),
            (f"/v1/ledger/transactions/{theirs}", {}),
            (f"/v1/ledger/accounts/{chart.unissued(other)}/balance", {}),
            ("/v1/ledger/trial-balance", {"programme_id": other}),
            ("/v1/audit/export", {"programme_id": other}),
        ]:
            response = client.get(path, headers=cast.auditor.headers, params=params)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["code"] == "not_found"
        listed = client.get("/v1/ledger/transactions", headers=cast.auditor.headers)
        assert {t["programme_id"] for t in listed.json()["data"]} == {mine}
        # a group reads its own voucher account, not the programme's budget
        assert (
            client.get(
                f"/v1/ledger/accounts/{chart.unissued(mine)}/balance", headers=cast.group.headers
            ).status_code
            == 404
        )
        assert client.get("/v1/ledger/trial-balance", headers=cast.group.headers).status_code == 403
