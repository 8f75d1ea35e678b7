"""Vouchers: issuance (single and batch, all or nothing), reading, revocation, expiry,
and the statement of a voucher's movements (read from its ledger postings).

Issuance locks the programme row, so issuers of one programme queue behind each
other: the per-group cap and the reserve-first rule are checked against a
stable picture, and the ledger's guarded updates make over-committing the
budget impossible even if a check were wrong. A whole batch is one journal
transaction: the budget accounts once, each new voucher account once.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import segno
from sqlalchemy.orm import Session

from voucherledger import chart, ledger
from voucherledger.accounts import repository as accounts_repo
from voucherledger.accounts.models import Account
from voucherledger.core import corrections, events
from voucherledger.core.auth import Principal
from voucherledger.core.corrections import ChangeOut, apply_fields
from voucherledger.core.db import utcnow
from voucherledger.core.errors import (
    AppError,
    BatchRejected,
    CategoryNotAllowed,
    ExpiryNotExtended,
    GroupNotEligible,
    InsufficientFunds,
    InvalidState,
    LimitExceeded,
    NotFound,
    ProgrammeClosed,
    ValidationFailed,
    VoucherExhausted,
    VoucherExpired,
    VoucherRevoked,
)
from voucherledger.core.events import emit
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import NO_FILTERS, ListFilters, Page, split_page
from voucherledger.core.rawsql import Raw
from voucherledger.ledger.models import TransactionKind
from voucherledger.programmes import repository as programmes_repo
from voucherledger.programmes import service as programmes
from voucherledger.programmes.models import Programme
from voucherledger.vouchers import codes, repository
from voucherledger.vouchers.models import Voucher
from voucherledger.vouchers.schemas import (
    BatchCheck,
    BatchCheckError,
    BatchOut,
    StatementLine,
    VoucherBatch,
    VoucherCreate,
    VoucherList,
    VoucherOut,
    VoucherStatement,
    VoucherUpdate,
)

__all__ = ["BatchOut", "VoucherBatch", "VoucherCreate", "VoucherOut"]

ISSUERS = frozenset({"funder", "manager"})


@dataclass(slots=True)
class _Budget:
    unissued: int
    reserve: int


@dataclass(frozen=True, slots=True)
class _Planned:
    item: VoucherCreate
    categories: list[str]
    expires_at: datetime
    from_reserve: int


def shown_status(status: str, expires_at: datetime, now: datetime) -> str:
    """The status a reader sees: a voucher past ``expires_at`` is ``expired`` at once,
    before the sweep has moved its value back to the budget (claims refuse it as
    ``voucher_expired`` all the same)."""
    if status in ("active", "exhausted") and expires_at <= now:
        return "expired"
    return status


def to_out(
    voucher: Voucher, balances: dict[str, int], *, show_code: bool, now: datetime | None = None
) -> VoucherOut:
    return VoucherOut(
        id=voucher.id,
        code=voucher.code if show_code else None,
        programme_id=voucher.programme_id,
        group_id=voucher.group_id,
        currency=voucher.currency,
        amount=voucher.amount,
        balance=balances.get(chart.voucher(voucher.id), 0),
        held=balances.get(chart.held(voucher.id), 0),
        service_categories=list(voucher.service_categories),
        status=shown_status(voucher.status, voucher.expires_at, now or utcnow()),
        expires_at=voucher.expires_at,
        created_at=voucher.created_at,
        created_by=voucher.created_by,
        revoked_by=voucher.revoked_by,
        metadata=dict(voucher.meta or {}),
    )


def _check_item(
    programme: Programme,
    item: VoucherCreate,
    group: Account | None,
    issued_to_group: int,
    now: datetime,
    budget: _Budget,
) -> _Planned:
    """Every rule for one voucher; raises the error of the first rule it breaks."""
    rules = programme.rules
    if group is None or group.kind != "group":
        raise ValidationFailed(
            "group_id is not a group account",
            [{"loc": ["body", "group_id"], "msg": "not a group account", "type": "value_error"}],
        )
    types = rules.get("eligible_group_types")
    if types is not None and group.group_type not in types:
        raise GroupNotEligible(f"Groups of type {group.group_type} are not eligible.")
    countries = rules.get("eligible_origin_countries")
    if countries is not None and group.origin_country not in countries:
        raise GroupNotEligible(f"Groups from {group.origin_country} are not eligible.")
    max_amount = rules.get("max_voucher_amount")
    if max_amount is not None and item.amount > max_amount:
        raise LimitExceeded(f"The most one voucher may hold is {max_amount}.")
    cap = rules.get("max_total_per_group")
    if cap is not None and issued_to_group + item.amount > cap:
        raise LimitExceeded(
            f"The group already has {issued_to_group} of at most {cap} in this programme."
        )
    categories = list(item.service_categories or programme.service_categories)
    outside = set(categories) - set(programme.service_categories)
    if outside:
        raise CategoryNotAllowed(f"The programme does not fund {', '.join(sorted(outside))}.")
    validity = timedelta(days=int(rules["voucher_validity_days"]))
    if item.expires_at is None:
        expires_at = now + validity
        if programme.ends_at is not None and expires_at > programme.ends_at:
            expires_at = programme.ends_at
    else:
        expires_at = item.expires_at
        if expires_at <= now:
            raise ValidationFailed(
                "expires_at must be in the future",
                [{"loc": ["body", "expires_at"], "msg": "in the past", "type": "value_error"}],
            )
        if programme.ends_at is not None and expires_at > programme.ends_at:
            raise ValidationFailed(
                "expires_at may not pass the programme's ends_at",
                [
                    {
                        "loc": ["body", "expires_at"],
                        "msg": "after the programme ends",
                        "type": "value_error",
                    }
                ],
            )
    from_reserve = min(item.amount, budget.reserve) if group.women_led else 0
    if item.amount - from_reserve > budget.unissued:
        raise InsufficientFunds(
            f"The programme has {budget.unissued} unissued"
            + (f" and {budget.reserve} in the women-led reserve" if group.women_led else "")
            + f"; this voucher needs {item.amount}."
        )
    return _Planned(item, categories, expires_at, from_reserve)


@dataclass(frozen=True, slots=True)
class _Plan:
    programme: Programme
    now: datetime
    planned: list[_Planned]
    failures: list[tuple[int, AppError]]


def _plan(
    session: Session,
    principal: Principal,
    programme_id: str,
    items: list[VoucherCreate],
    *,
    for_update: bool,
    stop_at_first: bool,
) -> _Plan:
    """Every rule for every item, in order, against the programme's budget and the
    groups' totals as the items before it would leave them: the one set of checks
    behind issuing (which locks the programme first) and the batch check (which
    writes nothing). A programme closed or past its end refuses the whole request."""
    programme = programmes.access(
        session, principal, programme_id, roles=ISSUERS, for_update=for_update
    ).programme
    programmes.ensure_open(programme)
    now = utcnow()
    if programme.ends_at is not None and programme.ends_at <= now:
        raise ProgrammeClosed(f"Programme {programme.id} ended at {programme.ends_at}.")
    group_ids = {item.group_id for item in items}
    groups = accounts_repo.accounts_by_id(session, group_ids)
    issued = repository.group_totals(session, programme.id, group_ids)
    left = ledger.balances(
        session, [chart.unissued(programme.id), chart.women_led_reserve(programme.id)]
    )
    budget = _Budget(
        left[chart.unissued(programme.id)], left[chart.women_led_reserve(programme.id)]
    )
    planned: list[_Planned] = []
    failures: list[tuple[int, AppError]] = []
    for index, item in enumerate(items):
        try:
            plan = _check_item(
                programme,
                item,
                groups.get(item.group_id),
                issued.get(item.group_id, 0),
                now,
                budget,
            )
        except AppError as exc:
            if stop_at_first:
                raise
            failures.append((index, exc))
            continue
        planned.append(plan)
        issued[item.group_id] = issued.get(item.group_id, 0) + item.amount
        budget.reserve -= plan.from_reserve
        budget.unissued -= item.amount - plan.from_reserve
    return _Plan(programme, now, planned, failures)


def check(
    session: Session, principal: Principal, programme_id: str, items: list[VoucherCreate]
) -> BatchCheck:
    """What issuing ``items`` as one batch would do, writing nothing: the same checks
    in the same order, so ``errors`` are exactly those the batch would be refused
    with. Nothing is locked: a batch issued later is checked again."""
    checked = _plan(session, principal, programme_id, items, for_update=False, stop_at_first=False)
    return BatchCheck(
        valid=not checked.failures,
        count=len(items),
        total_amount=sum(item.amount for item in items),
        errors=[
            BatchCheckError(index=index, code=err.code, detail=err.detail)
            for index, err in checked.failures
        ],
    )


def issue(
    session: Session,
    principal: Principal,
    programme_id: str,
    items: list[VoucherCreate],
    *,
    ledger_key: str | None,
    batch: bool,
) -> list[VoucherOut]:
    """Issue vouchers all or nothing, as one journal transaction."""
    checked = _plan(
        session, principal, programme_id, items, for_update=True, stop_at_first=not batch
    )
    if checked.failures:
        raise BatchRejected(checked.failures)
    programme, now, planned = checked.programme, checked.now, checked.planned

    cur = programme.currency
    rows: list[dict[str, Any]] = []
    voucher_ids: list[str] = []
    legs: list[ledger.Leg] = []
    txn_id_placeholder = ""
    for plan in planned:
        voucher_id = new_id("vch")
        voucher_ids.append(voucher_id)
        rows.append(
            {
                "id": voucher_id,
                "programme_id": programme.id,
                "group_id": plan.item.group_id,
                "code": codes.generate(),
                "currency": cur,
                "amount": plan.item.amount,
                "reserve_amount": plan.from_reserve,
                "service_categories": plan.categories,
                "status": "active",
                "expires_at": plan.expires_at,
                "created_at": now,
                "issue_transaction_id": txn_id_placeholder,
                "revoked_at": None,
                "revoke_reason": None,
                "ended_transaction_id": None,
                "created_by": principal.actor_ref,
                "revoked_by": None,
                "metadata": dict(plan.item.metadata),
            }
        )
        legs.append(ledger.Leg(chart.voucher(voucher_id), plan.item.amount, cur))
    from_reserve = sum(plan.from_reserve for plan in planned)
    from_unissued = sum(plan.item.amount for plan in planned) - from_reserve
    if from_unissued:
        legs.append(ledger.Leg(chart.unissued(programme.id), -from_unissued, cur))
    if from_reserve:
        legs.append(ledger.Leg(chart.women_led_reserve(programme.id), -from_reserve, cur))
    ledger.open_accounts(
        session,
        [
            (code, cur, False)
            for voucher_id in voucher_ids
            for code in (chart.voucher(voucher_id), chart.held(voucher_id))
        ],
        new=True,
    )
    posted = ledger.post(
        session,
        kind="issue",
        legs=legs,
        programme_id=programme.id,
        actor=principal.account_id,
        idempotency_key=ledger_key,
        memo=f"{len(rows)} voucher(s) issued",
        metadata={"vouchers": len(rows)},
        created_by=principal.actor_ref,
        now=now,
    )
    for row in rows:
        row["issue_transaction_id"] = posted.transaction_id
    repository.insert_many(session, rows)
    # Built from values checked above: model_construct skips re-validating up to
    # 10,000 items (a batch's largest cost in Python after the SQL).
    issued = [
        VoucherOut.model_construct(
            id=row["id"],
            code=row["code"],
            programme_id=programme.id,
            group_id=row["group_id"],
            currency=cur,
            amount=row["amount"],
            balance=row["amount"],
            held=0,
            service_categories=row["service_categories"],
            status="active",
            expires_at=row["expires_at"],
            created_at=now,
            created_by=principal.actor_ref,
            revoked_by=None,
            metadata=row["metadata"],
        )
        for row in rows
    ]
    _emit_issued(session, programme.id, issued, now)
    return issued


def _event_object(out: VoucherOut) -> dict[str, Any]:
    """A voucher as its events show it: without its code, which only issuers and the
    group read (an event is read by the programme's auditors too)."""
    obj = out.model_dump(mode="json")
    obj["code"] = None
    return {"object": obj}


def _emit_issued(
    session: Session, programme_id: str, issued: list[VoucherOut], now: datetime
) -> None:
    """One ``voucher.issued`` per voucher, in the issuing transaction, in one bulk
    insert (a batch holds up to 10,000 vouchers)."""
    parties = programmes.programme_readers(session, programme_id)
    with Raw(session) as db:
        events.insert_events(
            db,
            [
                {
                    "id": new_id("evt"),
                    "type": "voucher.issued",
                    "created_at": now,
                    "programme_id": programme_id,
                    "account_ids": sorted({*parties, out.group_id}),
                    "data": _event_object(out),
                }
                for out in issued
            ],
        )


def _emit(session: Session, type_: str, out: VoucherOut, readers: list[str] | None = None) -> None:
    parties = (
        programmes.programme_readers(session, out.programme_id) if readers is None else readers
    )
    events.emit(
        session,
        type_,
        _event_object(out),
        programme_id=out.programme_id,
        account_ids=[*parties, out.group_id],
    )


@dataclass(frozen=True, slots=True)
class _Seen:
    voucher: Voucher
    show_code: bool


def _visible(
    session: Session, principal: Principal, voucher_id: str, *, for_update: bool = False
) -> _Seen:
    voucher = repository.get(session, voucher_id, for_update=for_update)
    if voucher is None:
        raise NotFound(f"No voucher {voucher_id}.")
    if principal.kind == "group":
        if voucher.group_id != principal.account_id:
            raise NotFound(f"No voucher {voucher_id}.")
        return _Seen(voucher, True)
    try:
        role = programmes.access(session, principal, voucher.programme_id).role
    except NotFound:
        raise NotFound(f"No voucher {voucher_id}.") from None
    return _Seen(voucher, role in ISSUERS)


def get(session: Session, principal: Principal, voucher_id: str) -> VoucherOut:
    seen = _visible(session, principal, voucher_id)
    balances = repository.balances_of(session, [chart.voucher(voucher_id), chart.held(voucher_id)])
    return to_out(seen.voucher, balances, show_code=seen.show_code)


def list_visible(
    session: Session,
    principal: Principal,
    *,
    programme_id: str | None,
    group_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
    filters: ListFilters = NO_FILTERS,
) -> VoucherList:
    now = utcnow()
    rows = repository.list_visible(
        session,
        principal.account_id,
        principal.kind,
        programme_id=programme_id,
        group_id=group_id,
        status=status,
        now=now,
        after=after,
        limit=limit + 1,
        filters=filters,
    )
    page, cursor = split_page(rows, limit)
    balances = repository.balances_of(
        session, [code for v in page for code in (chart.voucher(v.id), chart.held(v.id))]
    )
    issuer_programmes: set[str] = set()
    if principal.kind in ISSUERS:
        issuer_programmes = {v.programme_id for v in page}
    show = principal.kind == "group" or principal.kind in ISSUERS
    data = [
        to_out(
            v,
            balances,
            show_code=show and (principal.kind == "group" or v.programme_id in issuer_programmes),
            now=now,
        )
        for v in page
    ]
    return VoucherList(data=data, next_cursor=cursor)


def qr_svg(session: Session, principal: Principal, voucher_id: str) -> str:
    seen = _visible(session, principal, voucher_id)
    if not seen.show_code:
        raise NotFound(f"No voucher {voucher_id}.")
    buffer = io.BytesIO()
    segno.make(seen.voucher.code, error="m").save(
        buffer, kind="svg", scale=4, border=2, xmldecl=True, title=seen.voucher.code
    )
    return buffer.getvalue().decode("utf-8")


# What a line says when its transaction has no memo of its own to show.
_DESCRIPTIONS: dict[str, str] = {
    "issue": "Issued",
    "hold": "Claimed, held until the group confirms",
    "capture": "Claim confirmed",
    "void": "Claim released",
    "refund": "Refunded",
    "revoke": "Revoked",
    "expire": "Expired",
}


def statement(
    session: Session, principal: Principal, voucher_id: str, *, after: str | None, limit: int
) -> VoucherStatement:
    """Every journal transaction that moved the voucher's value (its account and its
    held account), oldest first, ``limit`` a page. ``amount`` is the change of the
    spendable balance, ``held_delta`` of what pending claims hold, ``balance_after``
    the spendable balance after it (the running sum in this order). For whoever may
    read the voucher."""
    seen = _visible(session, principal, voucher_id)
    accounts = (chart.voucher(voucher_id), chart.held(voucher_id))
    start: tuple[datetime, str] | None = None
    if after is not None:
        start = repository.statement_position(session, after)
        if start is None:
            raise ValidationFailed(
                "cursor is not valid",
                [
                    {
                        "loc": ["query", "cursor"],
                        "msg": "not a cursor of this list",
                        "type": "cursor",
                    }
                ],
            )
    txns = repository.statement_transactions(session, accounts, start, limit + 1)
    page, cursor = split_page(txns, limit)
    moves: dict[str, dict[str, int]] = {}
    for txn_id, code, amount in repository.postings_of(session, accounts, [t.id for t in page]):
        per = moves.setdefault(txn_id, {})
        per[code] = per.get(code, 0) + amount
    balance = 0 if start is None else repository.balance_through(session, accounts[0], start)
    lines: list[StatementLine] = []
    for txn in page:
        per = moves.get(txn.id, {})
        amount = per.get(accounts[0], 0)
        balance += amount
        redemption_id = txn.meta.get("redemption_id")
        lines.append(
            StatementLine(
                transaction_id=txn.id,
                kind=txn.kind,
                occurred_at=txn.created_at,
                amount=amount,
                held_delta=per.get(accounts[1]),
                balance_after=balance,
                redemption_id=redemption_id if isinstance(redemption_id, str) else None,
                description=(txn.memo if txn.memo and txn.kind != "issue" else None)
                or _DESCRIPTIONS.get(txn.kind, txn.kind),
            )
        )
    return VoucherStatement(
        voucher_id=voucher_id,
        currency=seen.voucher.currency,
        data=lines,
        next_cursor=cursor,
    )


def closed_programme_funder(session: Session, programme_id: str) -> str | None:
    """The funder of a closed programme, to whom returning value goes; None while open.

    A closed programme issues nothing more, so value coming back to its budget would
    be stranded there: it goes back to the funder, as the unissued budget did at close.
    """
    programme = programmes_repo.get(session, programme_id)
    if programme is None or programme.status != "closed":
        return None
    return programme.funder_id


def lock_voucher(session: Session, voucher_id: str) -> tuple[Voucher, int]:
    """Lock a voucher for a change of its value: its ledger account first, then its
    row — the order a claim takes them in (guarded update, then status), so the two
    never wait on each other in a circle. Returns the row and its spendable balance."""
    balance = ledger.balance(session, chart.voucher(voucher_id), for_update=True)
    voucher = repository.get(session, voucher_id, for_update=True)
    if voucher is None:
        raise NotFound(f"No voucher {voucher_id}.")
    return voucher, balance


def budget_legs(session: Session, voucher: Voucher, amount: int) -> list[ledger.Leg]:
    """The receiving legs for ``amount`` going back from this voucher to its programme:
    to the women-led reserve while the voucher has not yet returned all it drew from
    it, the rest to the unissued budget — or all to the funder once the programme is
    closed. The caller holds the voucher row locked; this records what went back to
    the reserve on it."""
    cur = voucher.currency
    funder = closed_programme_funder(session, voucher.programme_id)
    if funder is not None:
        return [ledger.Leg(chart.funder(funder, cur), amount, cur)]
    to_reserve = min(amount, voucher.reserve_amount - voucher.reserve_returned)
    legs = []
    if amount - to_reserve:
        legs.append(ledger.Leg(chart.unissued(voucher.programme_id), amount - to_reserve, cur))
    if to_reserve:
        legs.append(ledger.Leg(chart.women_led_reserve(voucher.programme_id), to_reserve, cur))
        voucher.reserve_returned += to_reserve
    return legs


def _return_to_budget(
    session: Session,
    voucher: Voucher,
    remaining: int,
    *,
    kind: TransactionKind,
    actor: str | None,
    created_by: str,
    ledger_key: str | None,
    memo: str,
) -> str | None:
    """Move the voucher's remaining (unheld) value back to its programme's budget:
    to the women-led reserve up to what the voucher drew from it, the rest to the
    unissued budget — or, once the programme is closed, straight back to the funder.
    Returns the journal transaction id, or None if nothing was left. The caller holds
    the voucher locked (``lock_voucher``) and passes its balance."""
    if remaining == 0:
        return None
    legs = [
        ledger.Leg(chart.voucher(voucher.id), -remaining, voucher.currency),
        *budget_legs(session, voucher, remaining),
    ]
    posted = ledger.post(
        session,
        kind=kind,
        legs=legs,
        programme_id=voucher.programme_id,
        actor=actor,
        idempotency_key=ledger_key,
        memo=memo,
        metadata={"voucher_id": voucher.id},
        created_by=created_by,
    )
    return posted.transaction_id


def revoke(
    session: Session,
    principal: Principal,
    voucher_id: str,
    reason: str,
    ledger_key: str | None,
) -> VoucherOut:
    seen = _visible(session, principal, voucher_id)
    programmes.access(session, principal, seen.voucher.programme_id, roles=ISSUERS)
    voucher, remaining = lock_voucher(session, voucher_id)
    if voucher.status in ("revoked", "expired"):
        raise InvalidState(f"Voucher {voucher.id} is already {voucher.status}.")
    voucher.ended_transaction_id = _return_to_budget(
        session,
        voucher,
        remaining,
        kind="revoke",
        actor=principal.account_id,
        created_by=principal.actor_ref,
        ledger_key=ledger_key,
        memo=f"voucher revoked: {reason}",
    )
    voucher.status = "revoked"
    voucher.revoked_at = utcnow()
    voucher.revoked_by = principal.actor_ref
    voucher.revoke_reason = reason
    session.flush()
    out = get(session, principal, voucher_id)
    _emit(session, "voucher.revoked", out)
    return out


def due_to_expire(session: Session, programme_id: str, now: datetime) -> list[Voucher]:
    """The programme's live vouchers past ``expires_at`` (not locked), in id order."""
    return repository.vouchers_to_expire(session, programme_id, now)


def expire_due(
    session: Session,
    programme: Programme,
    now: datetime,
    actor: str | None,
    due: list[Voucher] | None = None,
    *,
    created_by: str,
) -> tuple[int, int]:
    """Expire the programme's vouchers past ``expires_at`` (``due``, if the caller has
    found them already); returns (count, amount returned). ``actor`` and
    ``created_by`` are whoever runs the sweep (none and ``"system"`` for the
    background job)."""
    count = returned = 0
    readers: list[str] | None = None
    for due_voucher in (
        repository.vouchers_to_expire(session, programme.id, now) if due is None else due
    ):
        voucher, remaining = lock_voucher(session, due_voucher.id)
        if voucher.status not in ("active", "exhausted") or voucher.expires_at > now:
            continue  # revoked, or its expiry extended (PATCH), since it was found due
        voucher.ended_transaction_id = _return_to_budget(
            session,
            voucher,
            remaining,
            kind="expire",
            actor=actor,
            created_by=created_by,
            ledger_key=None,
            memo="voucher expired",
        )
        voucher.status = "expired"
        count += 1
        returned += remaining
        if readers is None:
            readers = programmes.programme_readers(session, programme.id)
        balances = repository.balances_of(
            session, [chart.voucher(voucher.id), chart.held(voucher.id)]
        )
        _emit(
            session, "voucher.expired", to_out(voucher, balances, show_code=False, now=now), readers
        )
    session.flush()
    return count, returned


# --- Issue 13: corrections (PATCH /v1/vouchers/{id}), recorded and evented ---
_NOT_ACTIVE: dict[str, type[AppError]] = {
    "expired": VoucherExpired,
    "revoked": VoucherRevoked,
    "exhausted": VoucherExhausted,
}


def update(
    session: Session, principal: Principal, voucher_id: str, body: VoucherUpdate
) -> VoucherOut:
    """Extend an active voucher's expiry (not past its programme's ``ends_at``) or
    replace its metadata, for the programme's funder and managers; under the
    voucher's row lock, touching no ledger row. Each change is recorded and one
    ``voucher.updated`` event gives the previous values."""
    seen = _visible(session, principal, voucher_id)
    programme = programmes.access(
        session, principal, seen.voucher.programme_id, roles=ISSUERS
    ).programme
    voucher = repository.get(session, voucher_id, for_update=True)
    if voucher is None:
        raise NotFound(f"No voucher {voucher_id}.")
    sent = body.model_fields_set
    wanted: dict[str, Any] = {}
    if "expires_at" in sent and body.expires_at is not None:
        now = utcnow()
        status = shown_status(voucher.status, voucher.expires_at, now)
        if status != "active":
            raise _NOT_ACTIVE.get(status, InvalidState)(
                f"Voucher {voucher.id} is {status}: only an active voucher's expiry changes."
            )
        if body.expires_at <= voucher.expires_at:
            raise ExpiryNotExtended(
                "expires_at may only be extended",
                [
                    {
                        "loc": ["body", "expires_at"],
                        "msg": "not later than the current expiry",
                        "type": "value_error",
                    }
                ],
            )
        if programme.ends_at is not None and body.expires_at > programme.ends_at:
            raise ValidationFailed(
                "expires_at may not pass the programme's ends_at",
                [
                    {
                        "loc": ["body", "expires_at"],
                        "msg": "after the programme ends",
                        "type": "value_error",
                    }
                ],
            )
        wanted["expires_at"] = body.expires_at
    if "metadata" in sent:
        wanted["metadata"] = dict(body.metadata or {})
    previous = apply_fields(
        session,
        voucher,
        wanted,
        object_type="voucher",
        object_id=voucher.id,
        changed_by=principal.actor_ref,
        programme_id=voucher.programme_id,
        attributes={"metadata": "meta"},
        as_json=_json_value,
    )
    out = get(session, principal, voucher_id)
    if previous:
        event_object = out.model_dump(mode="json")
        event_object["code"] = None  # the event goes to auditors too: never the code
        emit(
            session,
            "voucher.updated",
            {"object": event_object, "previous": previous},
            programme_id=voucher.programme_id,
            account_ids=[*programmes.programme_readers(session, programme.id), voucher.group_id],
        )
    return out


def _json_value(value: Any) -> Any:
    """A recorded value: a timestamp as the API writes it (UTC, ``Z``)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def list_changes(
    session: Session, principal: Principal, voucher_id: str, after: str | None, limit: int
) -> Page[ChangeOut]:
    """The voucher's recorded corrections, for who may read the voucher."""
    _visible(session, principal, voucher_id)
    return corrections.list_changes(session, "voucher", voucher_id, after, limit)
