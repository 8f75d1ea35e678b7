"""A key whose record was purged (after ``idempotency_retention_hours``) is not free
for a new request: the journal still holds the transaction made under it. Running
the request again would write the claim, refund or settlement rows a second time
while the ledger replays the old transaction, so the value would be counted twice
and moved once. The key is refused with 409 ``idempotency_key_reused`` instead, and
nothing is written."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.factories.app import client_for
from tests.factories.programmes import issue, session_factory
from tests.factories.redemptions import claim_body, claim_programme, make_cast
from voucherledger.core.idempotency import IdempotencyRecord
from voucherledger.core.settings import Settings
from voucherledger.ledger.models import JournalTransaction
from voucherledger.redemptions.models import Redemption


def test_a_key_whose_record_was_purged_is_refused_not_run_again(settings: Settings) -> None:
    with client_for(settings) as client:
        cast = make_cast(client)
        programme = claim_programme(client, cast, accredit_for=(cast.supplier,))["id"]
        voucher = issue(client, cast.manager, programme, cast.group.id, 10_000)
        body = claim_body(voucher["code"], 2_500)
        headers = {**cast.supplier.headers, "Idempotency-Key": "claim-1"}
        first = client.post("/v1/redemptions", headers=headers, json=body)
        assert first.status_code == 201, first.text
        factory = session_factory(client)
        with factory() as session:  # what the background purge does after the retention
            session.query(IdempotencyRecord).delete()
            session.commit()
            claims = session.scalar(select(func.count()).select_from(Redemption))
            journal = session.scalar(select(func.count()).select_from(JournalTransaction))

        again = client.post("/v1/redemptions", headers=headers, json=body)

        assert again.status_code == 409, again.text
        assert again.json()["code"] == "idempotency_key_reused"
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(Redemption)) == claims
            assert session.scalar(select(func.count()).select_from(JournalTransaction)) == journal
            assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
        # A new key is a new request, as ever.
        fresh = client.post(
            "/v1/redemptions",
            headers={**cast.supplier.headers, "Idempotency-Key": "claim-2"},
            json=body,
        )
        assert fresh.status_code == 201, fresh.text
