"""Settlement: the funder pays a supplier everything captured and unsettled in a
programme — the supplier's payable balance — as one ``settle`` transaction
(payable -> paid), and the claims it pays are marked with the settlement.

The payable account row is locked first, so the amount paid is exactly what the
claims marked add up to: a claim being confirmed or refunded at the same time
either commits before (and is paid) or waits and follows (and is not).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from voucherledger import chart, ledger
from voucherledger.core.auth import Principal
from voucherledger.core.db import utcnow
from voucherledger.core.errors import NothingToSettle, ValidationFailed
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import split_page
from voucherledger.programmes import service as programmes
from voucherledger.settlements import repository
from voucherledger.settlements.models import Settlement
from voucherledger.settlements.schemas import SettlementCreate, SettlementList, SettlementOut


def to_out(settlement: Settlement, redemption_ids: list[str]) -> SettlementOut:
    return SettlementOut(
        id=settlement.id,
        programme_id=settlement.programme_id,
        supplier_id=settlement.supplier_id,
        amount=settlement.amount,
        currency=settlement.currency,
        payout_reference=settlement.payout_reference,
        redemption_ids=redemption_ids,
        transaction_id=settlement.transaction_id,
        created_at=settlement.created_at,
    )


def settle(
    session: Session,
    principal: Principal,
    programme_id: str,
    body: SettlementCreate,
    ledger_key: str | None,
) -> SettlementOut:
    programme = programmes.access(
        session, principal, programme_id, roles=frozenset({"funder"})
    ).programme
    payable = chart.payable(body.supplier_id, programme.id)
    try:
        amount = ledger.balance(session, payable, for_update=True)
    except ledger.UnknownAccount:
        raise ValidationFailed(
            "the supplier was never accredited for this programme",
            [
                {
                    "loc": ["body", "supplier_id"],
                    "msg": "not a supplier of this programme",
                    "type": "value_error",
                }
            ],
        ) from None
    if amount == 0:
        raise NothingToSettle(f"Nothing captured and unsettled for {body.supplier_id}.")
    cur = programme.currency
    paid = chart.paid(body.supplier_id, cur)
    ledger.open_account(session, paid, cur)
    now = utcnow()
    settlement_id = new_id("stl")
    posted = ledger.post(
        session,
        kind="settle",
        legs=[ledger.Leg(payable, -amount, cur), ledger.Leg(paid, amount, cur)],
        programme_id=programme.id,
        actor=principal.account_id,
        idempotency_key=ledger_key,
        memo=body.payout_reference,
        metadata={"settlement_id": settlement_id, "payout_reference": body.payout_reference},
        now=now,
    )
    settlement = Settlement(
        id=settlement_id,
        programme_id=programme.id,
        supplier_id=body.supplier_id,
        amount=amount,
        currency=cur,
        payout_reference=body.payout_reference,
        transaction_id=posted.transaction_id,
        created_at=now,
    )
    repository.add(session, settlement)
    paid_claims = repository.settle_captured(session, settlement_id, programme.id, body.supplier_id)
    if sum(net for _, net in paid_claims) != amount:
        raise RuntimeError(
            f"payable {amount} of {body.supplier_id} does not match its captured claims"
        )
    return to_out(settlement, [redemption_id for redemption_id, _ in paid_claims])


def list_visible(
    session: Session,
    principal: Principal,
    *,
    programme_id: str | None,
    supplier_id: str | None,
    after: str | None,
    limit: int,
) -> SettlementList:
    rows = repository.list_visible(
        session,
        principal.account_id,
        principal.kind,
        programme_id=programme_id,
        supplier_id=supplier_id,
        after=after,
        limit=limit + 1,
    )
    page, cursor = split_page(rows, limit)
    ids = repository.redemption_ids(session, [s.id for s in page])
    return SettlementList(data=[to_out(s, ids[s.id]) for s in page], next_cursor=cursor)
