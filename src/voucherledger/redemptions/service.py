"""Claims: a supplier claims against a voucher code; the group confirms or rejects;
the supplier may cancel or refund; holds time out.

Every outcome is one ledger transaction:

- claim, with group confirmation: ``hold``   voucher -> voucher:held
- claim, without it:               ``capture`` voucher -> supplier payable
- confirm:                          ``capture`` voucher:held -> supplier payable
- reject, cancel, hold timeout:     ``void``   voucher:held -> voucher
- refund:                           ``refund`` supplier payable -> voucher

A claim may name evidence files (``evidence_ids``): the supplier's own uploads, not
yet used; the claim points them at itself in the same transaction, and its journal
transaction records each file's SHA-256, size and type (``metadata.evidence``), so
the sealed chain proves which document backed which payment.

``validate`` answers what a claim could take, before claiming: the same look-up,
refusals and failed-code count as a claim, and it writes nothing else.

Value coming back to a voucher that has ended (expired or revoked) goes to the
programme's unissued budget instead: an ended voucher can never be spent.

Concurrency: the claim itself takes no lock of its own; the ledger's guarded
update of ``voucher:{id}`` is what makes two claims unable to spend one value
twice. Decisions lock the claim row first; refunds lock the supplier's payable
account first (the order settlements use), so the two cannot deadlock. A claim
whose guarded update is refused because a revoke or an expiry emptied the voucher
after the claim read it answers ``voucher_revoked`` / ``voucher_expired``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from voucherledger import chart, ledger
from voucherledger.core import events
from voucherledger.core.auth import Principal
from voucherledger.core.db import utcnow
from voucherledger.core.errors import (
    AlreadySettled,
    CategoryNotAllowed,
    InsufficientFunds,
    InvalidState,
    NotFound,
    RateLimited,
    SettlementPending,
    SupplierNotAccredited,
    ValidationFailed,
    VoucherExhausted,
    VoucherExpired,
    VoucherRevoked,
)
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import NO_FILTERS, ListFilters, split_page
from voucherledger.core.rawsql import Pipeline
from voucherledger.evidence import service as evidence
from voucherledger.evidence.schemas import EvidenceFileRef
from voucherledger.programmes import service as programmes
from voucherledger.redemptions import repository
from voucherledger.redemptions.limiter import FailureLimiter
from voucherledger.redemptions.models import Feedback, Redemption
from voucherledger.redemptions.repository import ClaimContext, ClaimVoucher
from voucherledger.redemptions.schemas import (
    EvidenceOut,
    FeedbackCreate,
    FeedbackOut,
    RedemptionCreate,
    RedemptionList,
    RedemptionOut,
    VoucherValidation,
)
from voucherledger.vouchers import codes
from voucherledger.vouchers.service import budget_legs, lock_voucher

MANAGERS = frozenset({"funder", "manager"})


def to_out(
    redemption: Redemption,
    paid: Collection[str] = (),
    *,
    files: Sequence[EvidenceFileRef] = (),
) -> RedemptionOut:
    """``paid``: the settlements among the claim's that are settled (a claim covered by
    a proposed settlement is not paid yet); ``files``: its evidence files."""
    return RedemptionOut(
        id=redemption.id,
        voucher_id=redemption.voucher_id,
        programme_id=redemption.programme_id,
        supplier_id=redemption.supplier_id,
        group_id=redemption.group_id,
        amount=redemption.amount,
        refunded_amount=redemption.refunded_amount,
        currency=redemption.currency,
        service_category=redemption.service_category,
        description=redemption.description,
        delivered_on=redemption.delivered_on,
        evidence=[EvidenceOut(**item) for item in redemption.evidence],
        evidence_files=list(files),
        status=redemption.status,
        settled=redemption.settlement_id is not None and redemption.settlement_id in paid,
        created_at=redemption.created_at,
        created_by=redemption.created_by,
        hold_expires_at=redemption.hold_expires_at,
        decided_by=redemption.decided_by,
        metadata=dict(redemption.meta or {}),
    )


def _code_failure(
    session: Session, limiter: FailureLimiter, supplier_id: str, error: Exception
) -> Exception:
    limiter.fail(session, supplier_id)
    return error


def _rate_limited(limiter: FailureLimiter) -> RateLimited:
    return RateLimited(
        "Too many failed voucher codes; try again in a minute.",
        headers={"Retry-After": str(int(limiter.window))},
    )


def _look_up(
    session: Session,
    supplier_id: str,
    voucher_code: str,
    limiter: FailureLimiter,
    now: datetime,
) -> ClaimContext:
    """The voucher a supplier names by its code, as a claim and a validation find it:
    429 while the supplier is blocked; a mistyped (422) or unknown (404) code counts a
    failure; then the voucher's end and the supplier's accreditation are checked. A
    well-formed code's voucher and the failure count come in one read."""
    code = codes.normalise(voucher_code)
    if code is None:
        if limiter.blocked(session, supplier_id):
            raise _rate_limited(limiter)
        raise _code_failure(
            session,
            limiter,
            supplier_id,
            ValidationFailed(
                "voucher_code is not a valid voucher code (its check character does not match)",
                [
                    {
                        "loc": ["body", "voucher_code"],
                        "msg": "not a valid voucher code",
                        "type": "voucher_code",
                    }
                ],
            ),
        )
    failures, context = repository.claim_context(
        session, code, supplier_id, failures_since=limiter.since(), cap=limiter.limit
    )
    if limiter.over(failures):
        raise _rate_limited(limiter)
    if context is None or context.accreditation_status is None:
        # An unknown code and a voucher of a programme the supplier has nothing to do
        # with look the same: a wrong code reveals nothing.
        raise _code_failure(
            session,
            limiter,
            supplier_id,
            NotFound("No voucher with this code can be claimed by you."),
        )
    voucher = context.voucher
    if voucher.status == "revoked":
        raise VoucherRevoked(f"Voucher {voucher.id} was revoked.")
    if voucher.status == "expired" or voucher.expires_at <= now:
        raise VoucherExpired(f"Voucher {voucher.id} expired at {voucher.expires_at}.")
    if context.accreditation_status != "active":
        raise SupplierNotAccredited("Your accreditation for this programme is suspended.")
    return context


def validate(
    session: Session, principal: Principal, voucher_code: str, *, limiter: FailureLimiter
) -> VoucherValidation:
    """What a claim against the code could take now: the voucher's spendable balance
    and the categories of it that the supplier's active accreditation covers. Refused
    as a claim would be; a voucher with none of the supplier's categories is 403
    ``supplier_not_accredited``, one with nothing left 409 ``voucher_exhausted``."""
    context = _look_up(session, principal.account_id, voucher_code, limiter, utcnow())
    voucher = context.voucher
    accredited = set(context.accredited_categories or [])
    categories = [c for c in voucher.service_categories if c in accredited]
    if not categories:
        raise SupplierNotAccredited(
            "Your accreditation in this programme covers none of this voucher's categories."
        )
    balance = ledger.balance(session, chart.voucher(voucher.id))
    if balance == 0:
        raise VoucherExhausted(f"Voucher {voucher.id} has nothing left to spend.")
    return VoucherValidation(
        voucher_id=voucher.id,
        programme_id=voucher.programme_id,
        programme_name=context.programme_name,
        currency=voucher.currency,
        claimable_balance=balance,
        categories=categories,
        expires_at=voucher.expires_at,
    )


def claim(
    session: Session,
    principal: Principal,
    body: RedemptionCreate,
    *,
    limiter: FailureLimiter,
    ledger_key: str | None,
) -> RedemptionOut:
    supplier_id = principal.account_id
    now = utcnow()
    context = _look_up(session, supplier_id, body.voucher_code, limiter, now)
    voucher = context.voucher
    if body.service_category not in (context.accredited_categories or []):
        raise SupplierNotAccredited(
            f"You are not accredited for {body.service_category} in this programme."
        )
    if body.service_category not in voucher.service_categories:
        raise CategoryNotAllowed(f"This voucher does not cover {body.service_category}.")
    delivered_on = body.delivered_on or now.date()
    _check_delivery(delivered_on, voucher, now)

    files = evidence.for_claim(session, supplier_id, body.evidence_ids) if body.evidence_ids else []

    confirm = bool(context.rules.get("requires_group_confirmation", True))
    target = chart.held(voucher.id) if confirm else chart.payable(supplier_id, voucher.programme_id)
    redemption_id = new_id("red")
    metadata: dict[str, Any] = {"voucher_id": voucher.id, "redemption_id": redemption_id}
    if files:
        metadata["evidence"] = evidence.ledger_entries(files)
    try:
        posted = ledger.post(
            session,
            kind="hold" if confirm else "capture",
            legs=[
                ledger.Leg(chart.voucher(voucher.id), -body.amount, voucher.currency),
                ledger.Leg(target, body.amount, voucher.currency),
            ],
            programme_id=voucher.programme_id,
            actor=supplier_id,
            idempotency_key=ledger_key,
            memo=body.description[:200],
            metadata=metadata,
            created_by=principal.actor_ref,
            now=now,
        )
    except ledger.InsufficientFunds as exc:
        _lost_to_an_end(session, voucher.id)
        if exc.balance == 0:
            raise VoucherExhausted(f"Voucher {voucher.id} has nothing left to spend.") from None
        raise InsufficientFunds(
            f"Voucher {voucher.id} has {exc.balance} left; the claim is for {body.amount}."
        ) from None
    if posted.balances.get(chart.voucher(voucher.id)) == 0 and voucher.status == "active":
        repository.set_voucher_status(session, voucher.id, "exhausted")
    hold_days = int(context.rules.get("hold_days", 14))
    # The claim row goes in by one Core INSERT (no unit of work on the hot path); the
    # object handed back is built from the same values and is not in the session.
    values: dict[str, Any] = {
        "id": redemption_id,
        "voucher_id": voucher.id,
        "programme_id": voucher.programme_id,
        "supplier_id": supplier_id,
        "group_id": voucher.group_id,
        "amount": body.amount,
        "refunded_amount": 0,
        "currency": voucher.currency,
        "service_category": body.service_category,
        "description": body.description,
        "delivered_on": delivered_on,
        "evidence": [item.model_dump() for item in body.evidence],
        "status": "pending" if confirm else "captured",
        "created_at": now,
        "hold_expires_at": now + timedelta(days=hold_days) if confirm else None,
        "decided_at": None if confirm else now,
        "void_reason": None,
        "settlement_id": None,
        "created_by": principal.actor_ref,
        "decided_by": None if confirm else principal.actor_ref,
        "meta": dict(body.metadata),
    }
    out = to_out(Redemption(**values), files=evidence.refs(files))
    data = {"object": out.model_dump(mode="json")}
    kinds = ["redemption.created"] if confirm else ["redemption.created", "redemption.captured"]
    # The claim row and its events need no answer: one round trip for all three.
    with Pipeline(session) as db:
        repository.insert_claim(session, values, db)
        events.emit_many(
            session,
            [(kind, data) for kind in kinds],
            programme_id=voucher.programme_id,
            account_ids=[*context.programme_readers, voucher.group_id, supplier_id],
            db=db,
        )
    evidence.attach(session, supplier_id, files, redemption_id)
    return out


def _emit(
    session: Session,
    type_: str,
    out: RedemptionOut | FeedbackOut,
    about: RedemptionOut | Redemption,
    readers: list[str] | None = None,
) -> None:
    """Emit an event of the claim ``about`` (``out`` is the claim, or its feedback) in
    the caller's transaction, for ``readers``, else the programme's parties and the
    claim's group and supplier."""
    if readers is None:
        readers = [
            *programmes.programme_readers(session, about.programme_id),
            about.group_id,
            about.supplier_id,
        ]
    events.emit(
        session,
        type_,
        {"object": out.model_dump(mode="json")},
        programme_id=about.programme_id,
        account_ids=readers,
    )


def _lost_to_an_end(session: Session, voucher_id: str) -> None:
    """The claim read the voucher as live, then its guarded update found too little:
    if a revoke or an expiry took the value meanwhile, say that, not "exhausted"."""
    status = repository.voucher_status(session, voucher_id)
    if status == "revoked":
        raise VoucherRevoked(f"Voucher {voucher_id} was revoked.")
    if status == "expired":
        raise VoucherExpired(f"Voucher {voucher_id} has expired.")


def _check_delivery(delivered_on: date, voucher: ClaimVoucher, now: datetime) -> None:
    if delivered_on > now.date():
        raise ValidationFailed(
            "delivered_on is in the future",
            [{"loc": ["body", "delivered_on"], "msg": "in the future", "type": "value_error"}],
        )
    if delivered_on < voucher.created_at.date():
        raise ValidationFailed(
            "delivered_on is before the voucher was issued",
            [
                {
                    "loc": ["body", "delivered_on"],
                    "msg": "before the voucher was issued",
                    "type": "value_error",
                }
            ],
        )


def _visible(
    session: Session, principal: Principal, redemption_id: str, *, for_update: bool = False
) -> Redemption:
    redemption = repository.get(session, redemption_id, for_update=for_update)
    if redemption is None:
        raise NotFound(f"No claim {redemption_id}.")
    if principal.kind == "supplier":
        owner = redemption.supplier_id
    elif principal.kind == "group":
        owner = redemption.group_id
    else:
        try:
            programmes.access(session, principal, redemption.programme_id)
        except NotFound:
            raise NotFound(f"No claim {redemption_id}.") from None
        return redemption
    if owner != principal.account_id:
        raise NotFound(f"No claim {redemption_id}.")
    return redemption


def readable(session: Session, principal: Principal, redemption_id: str) -> bool:
    """Whether the principal may read the claim (the rule of ``GET /v1/redemptions/{id}``:
    its supplier, its group, its programme's funder, managers and auditors); the
    evidence files backing it are read by the same rule."""
    if principal.kind not in ("supplier", "group", "funder", "manager", "auditor"):
        return False
    try:
        _visible(session, principal, redemption_id)
    except NotFound:
        return False
    return True


def _out(session: Session, redemption: Redemption, paid: Collection[str] = ()) -> RedemptionOut:
    """The claim as shown, with its evidence files read."""
    files = evidence.refs_of(session, [redemption.id]).get(redemption.id, [])
    return to_out(redemption, paid, files=files)


def _paid(session: Session, redemptions: Iterable[Redemption]) -> set[str]:
    statuses = repository.settlement_statuses(
        session, [r.settlement_id for r in redemptions if r.settlement_id is not None]
    )
    return {sid for sid, status in statuses.items() if status == "settled"}


def get(session: Session, principal: Principal, redemption_id: str) -> RedemptionOut:
    redemption = _visible(session, principal, redemption_id)
    return _out(session, redemption, _paid(session, [redemption]))


def list_visible(
    session: Session,
    principal: Principal,
    *,
    filters: dict[str, str | None],
    after: str | None,
    limit: int,
    narrowed: ListFilters = NO_FILTERS,
) -> RedemptionList:
    rows = repository.list_visible(
        session,
        principal.account_id,
        principal.kind,
        filters=filters,
        after=after,
        limit=limit + 1,
        narrowed=narrowed,
    )
    page, cursor = split_page(rows, limit)
    paid = _paid(session, page)
    files = evidence.refs_of(session, [r.id for r in page])
    return RedemptionList(
        data=[to_out(r, paid, files=files.get(r.id, [])) for r in page], next_cursor=cursor
    )


def _return_legs(session: Session, voucher_id: str, amount: int, now: datetime) -> list[ledger.Leg]:
    """The receiving legs for value coming back to a voucher: the voucher itself while
    it is live (an exhausted one becomes active again); once it has ended, its
    programme's budget — the reserve share first — or the funder if the programme is
    closed (``vouchers.service.budget_legs``).

    Locks the voucher's ledger account, then its row: the order a claim takes them in."""
    voucher, _balance = lock_voucher(session, voucher_id)
    if voucher.status in ("expired", "revoked") or voucher.expires_at <= now:
        return budget_legs(session, voucher, amount)
    if voucher.status == "exhausted":
        repository.set_voucher_status(session, voucher.id, "active")
    return [ledger.Leg(chart.voucher(voucher.id), amount, voucher.currency)]


def _pending(redemption: Redemption, action: str) -> None:
    if redemption.status != "pending":
        raise InvalidState(f"Claim {redemption.id} is {redemption.status}; cannot {action}.")


def confirm(
    session: Session, principal: Principal, redemption_id: str, ledger_key: str | None
) -> RedemptionOut:
    """The group accepts the claim: the held value becomes the supplier's payable."""
    redemption = _visible(session, principal, redemption_id, for_update=True)
    _pending(redemption, "confirm")
    now = utcnow()
    if redemption.hold_expires_at is not None and redemption.hold_expires_at <= now:
        raise InvalidState(f"The hold of claim {redemption.id} has expired.")
    ledger.post(
        session,
        kind="capture",
        legs=[
            ledger.Leg(chart.held(redemption.voucher_id), -redemption.amount, redemption.currency),
            ledger.Leg(
                chart.payable(redemption.supplier_id, redemption.programme_id),
                redemption.amount,
                redemption.currency,
            ),
        ],
        programme_id=redemption.programme_id,
        actor=principal.account_id,
        idempotency_key=ledger_key,
        metadata={"redemption_id": redemption.id},
        created_by=principal.actor_ref,
        now=now,
    )
    redemption.status = "captured"
    redemption.decided_at = now
    redemption.decided_by = principal.actor_ref
    session.flush()
    out = _out(session, redemption)
    _emit(session, "redemption.captured", out, out)
    return out


def void(
    session: Session,
    redemption: Redemption,
    *,
    actor: str | None,
    created_by: str,
    reason: str,
    ledger_key: str | None,
    now: datetime,
) -> None:
    """Release a pending claim's hold (reject, cancel or timeout); ``actor`` is the
    account and ``created_by`` the person, key or ``"system"`` that decided it."""
    ledger.post(
        session,
        kind="void",
        legs=[
            ledger.Leg(chart.held(redemption.voucher_id), -redemption.amount, redemption.currency),
            *_return_legs(session, redemption.voucher_id, redemption.amount, now),
        ],
        programme_id=redemption.programme_id,
        actor=actor,
        idempotency_key=ledger_key,
        memo=reason[:200],
        metadata={"redemption_id": redemption.id},
        created_by=created_by,
        now=now,
    )
    redemption.status = "voided"
    redemption.decided_at = now
    redemption.decided_by = created_by
    redemption.void_reason = reason
    session.flush()


def reject(
    session: Session, principal: Principal, redemption_id: str, reason: str, ledger_key: str | None
) -> RedemptionOut:
    redemption = _visible(session, principal, redemption_id, for_update=True)
    _pending(redemption, "reject")
    void(
        session,
        redemption,
        actor=principal.account_id,
        created_by=principal.actor_ref,
        reason=f"rejected: {reason}",
        ledger_key=ledger_key,
        now=utcnow(),
    )
    out = _out(session, redemption)
    _emit(session, "redemption.voided", out, out)
    return out


def cancel(
    session: Session, principal: Principal, redemption_id: str, ledger_key: str | None
) -> RedemptionOut:
    redemption = _visible(session, principal, redemption_id, for_update=True)
    _pending(redemption, "cancel")
    void(
        session,
        redemption,
        actor=principal.account_id,
        created_by=principal.actor_ref,
        reason="cancelled by the supplier",
        ledger_key=ledger_key,
        now=utcnow(),
    )
    out = _out(session, redemption)
    _emit(session, "redemption.voided", out, out)
    return out


def refund(
    session: Session,
    principal: Principal,
    redemption_id: str,
    amount: int,
    reason: str,
    ledger_key: str | None,
) -> RedemptionOut:
    """Captured, unsettled value back to the voucher (or budget, if the voucher ended)."""
    peek = _visible(session, principal, redemption_id)
    if principal.kind in MANAGERS:
        programmes.access(session, principal, peek.programme_id, roles=MANAGERS)
    # Lock order: the payable account, then the claim (as settlements do).
    payable = chart.payable(peek.supplier_id, peek.programme_id)
    ledger.balance(session, payable, for_update=True)
    redemption = _visible(session, principal, redemption_id, for_update=True)
    if redemption.status != "captured":
        raise InvalidState(
            f"Claim {redemption.id} is {redemption.status}; only captured claims are refunded."
        )
    if redemption.settlement_id is not None:
        if redemption.settlement_id not in _paid(session, [redemption]):
            raise SettlementPending(
                f"Claim {redemption.id} is in settlement {redemption.settlement_id}, awaiting "
                "approval; it can be refunded only if that settlement is rejected."
            )
        raise AlreadySettled(f"Claim {redemption.id} was settled; it can no longer be refunded.")
    refundable = redemption.amount - redemption.refunded_amount
    if amount > refundable:
        raise InsufficientFunds(f"Claim {redemption.id} has {refundable} left to refund.")
    now = utcnow()
    ledger.post(
        session,
        kind="refund",
        legs=[
            ledger.Leg(payable, -amount, redemption.currency),
            *_return_legs(session, redemption.voucher_id, amount, now),
        ],
        programme_id=redemption.programme_id,
        actor=principal.account_id,
        idempotency_key=ledger_key,
        memo=reason,
        metadata={"redemption_id": redemption.id},
        created_by=principal.actor_ref,
        now=now,
    )
    redemption.refunded_amount += amount
    session.flush()
    out = _out(session, redemption)
    _emit(session, "redemption.refunded", out, out)
    return out


def feedback(
    session: Session, principal: Principal, redemption_id: str, body: FeedbackCreate
) -> FeedbackOut:
    redemption = _visible(session, principal, redemption_id, for_update=True)
    if redemption.status != "captured":
        raise InvalidState("Only captured claims take feedback.")
    if repository.get_feedback(session, redemption.id) is not None:
        raise InvalidState(f"Claim {redemption.id} already has its feedback.")
    item = Feedback(
        redemption_id=redemption.id,
        group_id=principal.account_id,
        rating=body.rating,
        outcome=body.outcome,
        outcome_kind=body.outcome_kind,
        created_at=utcnow(),
        created_by=principal.actor_ref,
    )
    repository.add_feedback(session, item)
    out = FeedbackOut(
        redemption_id=item.redemption_id,
        rating=item.rating,
        outcome=item.outcome,
        outcome_kind=item.outcome_kind,
        created_at=item.created_at,
        created_by=item.created_by,
    )
    # The group's rating of a supplier is for the programme's parties, as in the
    # reports; the supplier is not told (no other answer shows it either).
    _emit(
        session,
        "feedback.created",
        out,
        redemption,
        [*programmes.programme_readers(session, redemption.programme_id), redemption.group_id],
    )
    return out


def expired_holds(session: Session, programme_id: str, now: datetime) -> list[Redemption]:
    """The programme's pending claims whose hold has timed out, locked, in id order."""
    return repository.expired_holds(session, programme_id, now)


def release_expired_holds(
    session: Session,
    programme_id: str,
    now: datetime,
    actor: str | None,
    holds: list[Redemption] | None = None,
    *,
    created_by: str,
) -> tuple[int, int]:
    """Void the timed-out holds (``holds`` if the caller has locked them already).
    ``actor`` and ``created_by`` are whoever runs the sweep (none and ``"system"``
    for the background job), and become the claims' ``decided_by``."""
    count = amount = 0
    parties: list[str] | None = None
    for redemption in (
        repository.expired_holds(session, programme_id, now) if holds is None else holds
    ):
        void(
            session,
            redemption,
            actor=actor,
            created_by=created_by,
            reason="hold expired",
            ledger_key=None,
            now=now,
        )
        if parties is None:
            parties = programmes.programme_readers(session, programme_id)
        _emit(
            session,
            "redemption.voided",
            _out(session, redemption),
            redemption,
            [*parties, redemption.group_id, redemption.supplier_id],
        )
        count += 1
        amount += redemption.amount
    return count, amount
