"""Settlement: the funder pays a supplier what its captured claims earned in a
programme as one ``settle`` transaction (payable -> paid), and the claims it pays are
marked with the settlement.

A settlement records the supplier's payout IBAN as it was when proposed
(``payout_iban``), and its ``settle`` transaction carries it in its metadata, so the
ledger says where each payout went.

A settlement covers every captured claim of the supplier that no other settlement
covers; its amount is their net. With the programme rule ``settlement_approval:
single`` it is paid at once. With ``two_person`` it is first ``proposed``: the claims
are marked (so they can be neither refunded nor proposed again) and no money moves;
a second person of the funder — a member with the approver or owner role, with a
confirmed second factor, who is not the proposer — approves it (the ``settle``
transaction is posted then) or someone rejects it (the claims are free again).

Locks: every step locks the supplier's payable account row first, then the
settlement (refunds lock the payable, then the claim), so a claim being captured or
refunded at the same time either commits before or waits and follows, and a
concurrent approval and rejection of one settlement are taken one after the other:
the second finds it no longer ``proposed``.

The payable holds exactly the net of the supplier's captured claims not yet paid:
those covered by proposed settlements and the free ones. A proposal checks that the
free ones it marks add up to the payable less what proposed settlements await; an
approval checks that the claims it pays still add up to the amount proposed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from voucherledger import chart, ledger
from voucherledger.accounts import repository as accounts
from voucherledger.core import events
from voucherledger.core.auth import Principal
from voucherledger.core.db import utcnow
from voucherledger.core.errors import (
    Forbidden,
    InvalidState,
    NotFound,
    NothingToSettle,
    SecondPersonRequired,
    TotpSetupRequired,
    ValidationFailed,
)
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import NO_FILTERS, ListFilters, split_page
from voucherledger.people.totp import has_confirmed_totp
from voucherledger.programmes import service as programmes
from voucherledger.programmes.models import Programme
from voucherledger.settlements import repository
from voucherledger.settlements.models import Settlement
from voucherledger.settlements.schemas import (
    SettlementCreate,
    SettlementList,
    SettlementOut,
    SettlementReject,
)


def to_out(settlement: Settlement, *, payout: bool = True) -> SettlementOut:
    """``payout``: whether the caller sees the payout IBAN (not an auditor)."""
    return SettlementOut(
        id=settlement.id,
        programme_id=settlement.programme_id,
        supplier_id=settlement.supplier_id,
        amount=settlement.amount,
        currency=settlement.currency,
        payout_reference=settlement.payout_reference,
        payout_iban=settlement.payout_iban if payout else None,
        status=settlement.status,
        redemption_ids=list(settlement.redemption_ids),
        transaction_id=settlement.transaction_id,
        proposed_by=settlement.proposed_by,
        proposed_at=settlement.created_at,
        approved_by=settlement.approved_by,
        approved_at=settlement.approved_at,
        rejected_by=settlement.rejected_by,
        rejected_at=settlement.rejected_at,
        rejection_reason=settlement.rejection_reason,
        created_by=settlement.proposed_by,
        created_at=settlement.created_at,
        metadata=dict(settlement.meta or {}),
    )


def _emit(session: Session, settlement: Settlement, *types: str) -> None:
    """Emit the settlement's events (its state now) in the caller's transaction, for the
    programme's parties and the supplier. The object leaves the payout IBAN out: the
    programme's auditors read these events too, and they never see it."""
    readers = [
        *programmes.programme_readers(session, settlement.programme_id),
        settlement.supplier_id,
    ]
    data = {"object": to_out(settlement, payout=False).model_dump(mode="json")}
    for type_ in types:
        events.emit(session, type_, data, programme_id=settlement.programme_id, account_ids=readers)


def _payout_iban(session: Session, supplier_id: str) -> str | None:
    supplier = accounts.get(session, supplier_id)
    return None if supplier is None else supplier.payout_iban


def approval_rule(programme: Programme) -> str:
    return str(programme.rules.get("settlement_approval", "single"))


def settle(
    session: Session,
    principal: Principal,
    programme_id: str,
    body: SettlementCreate,
    ledger_key: str | None,
) -> SettlementOut:
    """Cover the supplier's free captured claims: paid at once under ``single``
    approval, proposed under ``two_person``."""
    programme = programmes.access(
        session, principal, programme_id, roles=frozenset({"funder"})
    ).programme
    payable = chart.payable(body.supplier_id, programme.id)
    try:
        balance = ledger.balance(session, payable, for_update=True)
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
    awaiting = repository.proposed_total(session, programme.id, body.supplier_id)
    amount = balance - awaiting
    if amount < 0:
        raise RuntimeError(
            f"payable {balance} of {body.supplier_id} is below its proposed settlements"
        )
    if amount == 0:
        raise NothingToSettle(f"Nothing captured and unsettled for {body.supplier_id}.")
    now = utcnow()
    settlement = Settlement(
        id=new_id("stl"),
        programme_id=programme.id,
        supplier_id=body.supplier_id,
        amount=amount,
        currency=programme.currency,
        payout_reference=body.payout_reference,
        payout_iban=_payout_iban(session, body.supplier_id),
        status="proposed",
        redemption_ids=[],
        transaction_id=None,
        proposed_by=principal.actor_ref,
        created_at=now,
        meta=dict(body.metadata),
    )
    repository.add(session, settlement)
    covered = repository.cover_free_captured(session, settlement.id, programme.id, body.supplier_id)
    if sum(net for _, net in covered) != amount:
        raise RuntimeError(
            f"payable {balance} of {body.supplier_id} does not match its captured claims"
        )
    settlement.redemption_ids = [redemption_id for redemption_id, _ in covered]
    _emit(session, settlement, "settlement.proposed")
    if approval_rule(programme) == "single":
        _pay(session, settlement, principal, ledger_key, now)
    session.flush()
    return to_out(settlement)


def _pay(
    session: Session,
    settlement: Settlement,
    principal: Principal,
    ledger_key: str | None,
    now: datetime,
) -> None:
    """Post the payout of a proposed settlement (its payable row already locked)."""
    if repository.covered_net(session, settlement.id) != settlement.amount:
        raise RuntimeError(
            f"the claims of settlement {settlement.id} no longer add up to its amount"
        )
    if settlement.proposed_by is None:
        raise RuntimeError(f"settlement {settlement.id} has no proposer")
    approver = principal.actor_ref
    cur = settlement.currency
    payable = chart.payable(settlement.supplier_id, settlement.programme_id)
    paid = chart.paid(settlement.supplier_id, cur)
    ledger.open_account(session, paid, cur)
    posted = ledger.post(
        session,
        kind="settle",
        legs=[
            ledger.Leg(payable, -settlement.amount, cur),
            ledger.Leg(paid, settlement.amount, cur),
        ],
        programme_id=settlement.programme_id,
        actor=principal.account_id,
        idempotency_key=ledger_key,
        memo=settlement.payout_reference,
        metadata={
            "settlement_id": settlement.id,
            "payout_reference": settlement.payout_reference,
            "payout_iban": settlement.payout_iban,
            "proposed_by": settlement.proposed_by,
            "approved_by": approver,
        },
        created_by=approver,
        now=now,
    )
    settlement.status = "settled"
    settlement.transaction_id = posted.transaction_id
    settlement.approved_by = approver
    settlement.approved_at = now
    # Approving is paying: the two happen in this one step.
    _emit(session, settlement, "settlement.approved", "settlement.settled")


def _locked_proposal(session: Session, principal: Principal, settlement_id: str) -> Settlement:
    """The settlement, locked after its payable row (the lock order of settling), if
    the caller funds its programme and it is still proposed."""
    peek = _visible(session, principal, settlement_id)
    ledger.balance(session, chart.payable(peek.supplier_id, peek.programme_id), for_update=True)
    settlement = repository.get(session, settlement_id, for_update=True)
    if settlement is None:
        raise NotFound(f"No settlement {settlement_id}.")
    if settlement.status != "proposed":
        raise InvalidState(
            f"Settlement {settlement.id} is {settlement.status}; only a proposed one can be "
            "approved or rejected."
        )
    return settlement


def approve(
    session: Session, principal: Principal, settlement_id: str, ledger_key: str | None
) -> SettlementOut:
    _visible(session, principal, settlement_id)
    if principal.member_id is None:
        raise SecondPersonRequired(
            "An account key acts for no person: a member with the approver or owner role "
            "approves a payout."
        )
    if not principal.has_member_role("approver"):
        raise Forbidden("Only a member with the approver or owner role approves a payout.")
    if not has_confirmed_totp(session, principal.member_id):
        raise TotpSetupRequired("Confirm a TOTP second factor (POST /v1/me/totp) before approving.")
    settlement = _locked_proposal(session, principal, settlement_id)
    if settlement.proposed_by == principal.actor_ref:
        raise SecondPersonRequired(
            f"Settlement {settlement.id} was proposed by you; another person approves it."
        )
    _pay(session, settlement, principal, ledger_key, utcnow())
    session.flush()
    return to_out(settlement)


def reject(
    session: Session, principal: Principal, settlement_id: str, body: SettlementReject
) -> SettlementOut:
    """Refuse a proposal: nothing is paid, its claims are free again. Approvers and
    owners may (a proposer with that role withdraws its own), and the account's own
    key; an operator may not, not even its own proposal. No second factor is needed,
    as no money moves."""
    _visible(session, principal, settlement_id)
    if principal.member_id is not None and not principal.has_member_role("approver"):
        raise Forbidden("Only a member with the approver or owner role rejects a payout.")
    settlement = _locked_proposal(session, principal, settlement_id)
    repository.free_claims(session, settlement.id)
    settlement.status = "rejected"
    settlement.rejected_by = principal.actor_ref
    settlement.rejected_at = utcnow()
    settlement.rejection_reason = body.reason
    session.flush()
    _emit(session, settlement, "settlement.rejected")
    return to_out(settlement)


def _visible(session: Session, principal: Principal, settlement_id: str) -> Settlement:
    settlement = repository.get_visible(
        session, settlement_id, principal.account_id, principal.kind
    )
    if settlement is None:
        raise NotFound(f"No settlement {settlement_id}.")
    return settlement


def get(session: Session, principal: Principal, settlement_id: str) -> SettlementOut:
    return to_out(_visible(session, principal, settlement_id), payout=principal.kind != "auditor")


def list_visible(
    session: Session,
    principal: Principal,
    *,
    programme_id: str | None,
    supplier_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
    filters: ListFilters = NO_FILTERS,
) -> SettlementList:
    rows = repository.list_visible(
        session,
        principal.account_id,
        principal.kind,
        programme_id=programme_id,
        supplier_id=supplier_id,
        status=status,
        after=after,
        limit=limit + 1,
        filters=filters,
    )
    page, cursor = split_page(rows, limit)
    payout = principal.kind != "auditor"
    return SettlementList(data=[to_out(s, payout=payout) for s in page], next_cursor=cursor)
