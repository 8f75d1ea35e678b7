"""Programmes: creation, access, funding, accreditation, closing and balances.

Access: a programme's parties are its funder and the managers and auditors the
funder named. Every other caller gets 404 for it, whatever the endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from voucherledger import chart, ledger
from voucherledger.accounts import repository as accounts_repo
from voucherledger.core import corrections, events
from voucherledger.core.auth import Principal
from voucherledger.core.corrections import ChangeOut, apply_fields, record_fields
from voucherledger.core.db import utcnow
from voucherledger.core.errors import (
    CategoryNotAllowed,
    Forbidden,
    NotFound,
    ProgrammeClosed,
    ValidationFailed,
)
from voucherledger.core.events import emit
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import Page, make_page
from voucherledger.core.schemas import Schema
from voucherledger.programmes import repository
from voucherledger.programmes.models import Accreditation, Programme, ProgrammeParty
from voucherledger.programmes.schemas import (
    AccreditationCreate,
    AccreditationOut,
    Balances,
    DepositCreate,
    DepositOut,
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammeUpdate,
    RulesOut,
)


@dataclass(frozen=True, slots=True)
class Access:
    programme: Programme
    role: str  # funder | manager | auditor


def access(
    session: Session,
    principal: Principal,
    programme_id: str,
    *,
    roles: frozenset[str] = frozenset({"funder", "manager", "auditor"}),
    for_update: bool = False,
) -> Access:
    """The programme as the caller may use it: 404 unless a party, 403 for a wrong role."""
    programme = repository.get(session, programme_id, for_update=for_update)
    if programme is None:
        raise NotFound(f"No programme {programme_id}.")
    role: str | None = None
    if principal.kind == "funder" and programme.funder_id == principal.account_id:
        role = "funder"
    elif principal.kind in ("manager", "auditor"):
        granted = repository.party_role(session, programme_id, principal.account_id)
        role = granted if granted == principal.kind else None
    if role is None:
        raise NotFound(f"No programme {programme_id}.")
    if role not in roles:
        raise Forbidden(f"A programme's {role} may not do this.")
    return Access(programme, role)


def programme_readers(session: Session, programme_id: str) -> list[str]:
    """Who reads the programme's events: its funder, managers and auditors."""
    return repository.programme_readers(session, programme_id)


def emit_event(
    session: Session,
    type_: str,
    obj: Schema,
    programme_id: str,
    *,
    readers: Iterable[str] | None = None,
    also: Iterable[str | None] = (),
) -> str:
    """Emit an event of the programme in the caller's transaction: ``obj`` is the API
    object; readers are the programme's parties (``readers`` if the caller has them)
    and ``also`` (the group or supplier concerned)."""
    parties = programme_readers(session, programme_id) if readers is None else list(readers)
    return events.emit(
        session,
        type_,
        {"object": obj.model_dump(mode="json")},
        programme_id=programme_id,
        account_ids=[*parties, *(a for a in also if a)],
    )


def get(session: Session, principal: Principal, programme_id: str) -> ProgrammeOut:
    """A programme, for its parties."""
    return to_out(session, access(session, principal, programme_id).programme)


def balances(session: Session, programme_id: str) -> Balances:
    sums = repository.ledger_sums(session, programme_id)

    def total(account_class: str, kind: str | None = None) -> int:
        return sum(
            v for (k, c), v in sums.items() if c == account_class and (kind is None or k == kind)
        )

    return Balances(
        deposited=total("unissued", "deposit") + total("reserve", "deposit"),
        unissued=total("unissued"),
        unissued_women_led_reserve=total("reserve"),
        outstanding=total("voucher"),
        held=total("held"),
        payable=total("payable"),
        settled=total("paid"),
        # Deposits take from the funder; everything else on the funder's account
        # (the close, and value coming back after it) is returned to it.
        returned_to_funder=total("funder") - total("funder", "deposit"),
    )


def to_out(session: Session, programme: Programme) -> ProgrammeOut:
    parties = repository.parties(session, programme.id)
    return ProgrammeOut(
        id=programme.id,
        funder_id=programme.funder_id,
        name=programme.name,
        currency=programme.currency,
        service_categories=list(programme.service_categories),
        rules=RulesOut(**programme.rules),
        manager_ids=[p.account_id for p in parties if p.role == "manager"],
        auditor_ids=[p.account_id for p in parties if p.role == "auditor"],
        ends_at=programme.ends_at,
        status=programme.status,
        created_at=programme.created_at,
        created_by=programme.created_by,
        closed_at=programme.closed_at,
        closed_by=programme.closed_by,
        balances=balances(session, programme.id),
        metadata=dict(programme.meta or {}),
    )


def create(session: Session, principal: Principal, body: ProgrammeCreate) -> ProgrammeOut:
    now = utcnow()
    if body.ends_at is not None and body.ends_at <= now:
        raise ValidationFailed(
            "ends_at must be in the future",
            [{"loc": ["body", "ends_at"], "msg": "must be in the future", "type": "value_error"}],
        )
    wanted = _checked_parties(session, body.manager_ids, body.auditor_ids)
    programme = Programme(
        id=new_id("prg"),
        funder_id=principal.account_id,
        name=body.name,
        currency=body.currency,
        service_categories=list(body.service_categories),
        rules=body.rules.model_dump(mode="json"),
        ends_at=body.ends_at,
        status="open",
        created_at=now,
        created_by=principal.actor_ref,
        closed_at=None,
        closed_by=None,
        meta=dict(body.metadata),
    )
    repository.add(
        session,
        programme,
        [
            ProgrammeParty(programme_id=programme.id, account_id=account_id, role=role)
            for account_id, role in wanted.items()
        ],
    )
    ledger.open_accounts(
        session,
        [
            (chart.funder(principal.account_id, body.currency), body.currency, True),
            (chart.unissued(programme.id), body.currency, False),
            (chart.women_led_reserve(programme.id), body.currency, False),
        ],
    )
    out = to_out(session, programme)
    emit_event(
        session, "programme.created", out, programme.id, readers=[programme.funder_id, *wanted]
    )
    return out


def list_visible(
    session: Session, principal: Principal, after: str | None, limit: int
) -> Page[ProgrammeOut]:
    rows = repository.list_for(
        session, principal.account_id, principal.kind, after=after, limit=limit + 1
    )
    return make_page([to_out(session, p) for p in rows], limit)


def ensure_open(programme: Programme) -> None:
    if programme.status != "open":
        raise ProgrammeClosed(f"Programme {programme.id} is closed.")


def deposit(
    session: Session,
    principal: Principal,
    programme_id: str,
    body: DepositCreate,
    ledger_key: str | None,
) -> DepositOut:
    """Money in from the funder; the women-led share goes to the reserve (rounded down)."""
    programme = access(
        session, principal, programme_id, roles=frozenset({"funder"}), for_update=True
    ).programme
    ensure_open(programme)
    if body.currency is not None and body.currency != programme.currency:
        raise ValidationFailed(
            f"this programme holds {programme.currency}",
            [
                {
                    "loc": ["body", "currency"],
                    "msg": f"must be {programme.currency}",
                    "type": "value_error",
                }
            ],
        )
    reserve = body.amount * int(programme.rules["women_led_reserve_pct"]) // 100
    cur = programme.currency
    legs = [ledger.Leg(chart.funder(programme.funder_id, cur), -body.amount, cur)]
    if body.amount - reserve:
        legs.append(ledger.Leg(chart.unissued(programme.id), body.amount - reserve, cur))
    if reserve:
        legs.append(ledger.Leg(chart.women_led_reserve(programme.id), reserve, cur))
    posted = ledger.post(
        session,
        kind="deposit",
        legs=legs,
        programme_id=programme.id,
        actor=principal.account_id,
        idempotency_key=ledger_key,
        memo=body.reference,
        metadata={"reference": body.reference},
        created_by=principal.actor_ref,
    )
    out = DepositOut(
        transaction_id=posted.transaction_id,
        programme_id=programme.id,
        amount=body.amount,
        currency=cur,
        reference=body.reference,
        women_led_reserve_amount=reserve,
        created_at=posted.created_at,
        created_by=principal.actor_ref,
    )
    emit_event(session, "programme.funded", out, programme.id)
    return out


def close(
    session: Session, principal: Principal, programme_id: str, ledger_key: str | None
) -> ProgrammeOut:
    """No more issuance; the unissued budget, reserve included, returns to the funder."""
    programme = access(
        session, principal, programme_id, roles=frozenset({"funder"}), for_update=True
    ).programme
    ensure_open(programme)
    cur = programme.currency
    left = ledger.balances(
        session, [chart.unissued(programme.id), chart.women_led_reserve(programme.id)]
    )
    legs = [ledger.Leg(code, -amount, cur) for code, amount in left.items() if amount]
    if legs:
        legs.append(ledger.Leg(chart.funder(programme.funder_id, cur), sum(left.values()), cur))
        ledger.post(
            session,
            kind="close",
            legs=legs,
            programme_id=programme.id,
            actor=principal.account_id,
            idempotency_key=ledger_key,
            memo="programme closed: unissued budget returned",
            created_by=principal.actor_ref,
        )
    programme.status = "closed"
    programme.closed_at = utcnow()
    programme.closed_by = principal.actor_ref
    session.flush()
    out = to_out(session, programme)
    emit_event(session, "programme.closed", out, programme.id)
    return out


def accredit(
    session: Session, principal: Principal, programme_id: str, body: AccreditationCreate
) -> AccreditationOut:
    programme = access(
        session, principal, programme_id, roles=frozenset({"funder", "manager"})
    ).programme
    supplier = accounts_repo.accounts_by_id(session, [body.supplier_id]).get(body.supplier_id)
    if supplier is None or supplier.kind != "supplier":
        raise ValidationFailed(
            "supplier_id is not a supplier account",
            [
                {
                    "loc": ["body", "supplier_id"],
                    "msg": "not a supplier account",
                    "type": "value_error",
                }
            ],
        )
    outside_programme = set(body.service_categories) - set(programme.service_categories)
    if outside_programme:
        raise CategoryNotAllowed(
            f"The programme does not fund {', '.join(sorted(outside_programme))}."
        )
    not_offered = set(body.service_categories) - set(supplier.service_categories or [])
    if not_offered:
        raise CategoryNotAllowed(f"The supplier does not offer {', '.join(sorted(not_offered))}.")
    now = utcnow()
    ledger.open_account(session, chart.payable(supplier.id, programme.id), programme.currency)
    existing = repository.get_accreditation(session, programme.id, supplier.id)
    if existing is not None:
        existing.service_categories = list(body.service_categories)
        existing.status = "active"
        existing.updated_at = now
        existing.updated_by = principal.actor_ref
        session.flush()
        renewed = accreditation_out(existing)
        emit_event(session, "accreditation.created", renewed, programme.id, also=[supplier.id])
        return renewed
    accreditation = Accreditation(
        programme_id=programme.id,
        supplier_id=supplier.id,
        service_categories=list(body.service_categories),
        status="active",
        created_at=now,
        updated_at=now,
        created_by=principal.actor_ref,
        updated_by=principal.actor_ref,
    )
    repository.add_accreditation(session, accreditation)
    out = accreditation_out(accreditation)
    emit_event(session, "accreditation.created", out, programme.id, also=[supplier.id])
    return out


def suspend(session: Session, principal: Principal, programme_id: str, supplier_id: str) -> None:
    programme = access(
        session, principal, programme_id, roles=frozenset({"funder", "manager"})
    ).programme
    accreditation = repository.get_accreditation(session, programme.id, supplier_id)
    if accreditation is None:
        raise NotFound(f"Supplier {supplier_id} is not accredited for this programme.")
    if accreditation.status != "suspended":
        accreditation.status = "suspended"
        accreditation.updated_at = utcnow()
        accreditation.updated_by = principal.actor_ref
        session.flush()
        emit_event(
            session,
            "accreditation.suspended",
            accreditation_out(accreditation),
            programme.id,
            also=[supplier_id],
        )


def accreditation_out(accreditation: Accreditation) -> AccreditationOut:
    return AccreditationOut(
        programme_id=accreditation.programme_id,
        supplier_id=accreditation.supplier_id,
        service_categories=list(accreditation.service_categories),
        status=accreditation.status,
        created_at=accreditation.created_at,
        created_by=accreditation.created_by,
        updated_at=accreditation.updated_at,
        updated_by=accreditation.updated_by,
    )


# --- Issue 13: corrections (PATCH /v1/programmes/{id}), recorded and evented ---
def _checked_parties(
    session: Session, manager_ids: list[str], auditor_ids: list[str]
) -> dict[str, str]:
    """The parties wanted (account id to role), checked for a new programme and a PATCH:
    no account both, each an account of its role's kind (422 otherwise)."""
    wanted = {**dict.fromkeys(manager_ids, "manager"), **dict.fromkeys(auditor_ids, "auditor")}
    if len(wanted) != len(manager_ids) + len(auditor_ids):
        raise ValidationFailed(
            "an account cannot be both manager and auditor",
            [{"loc": ["body", "auditor_ids"], "msg": "also a manager", "type": "value_error"}],
        )
    found = accounts_repo.accounts_by_id(session, wanted)
    bad = [
        {
            "loc": ["body", f"{role}_ids"],
            "msg": f"{account_id} is not a {role} account",
            "type": "value_error",
        }
        for account_id, role in wanted.items()
        if account_id not in found or found[account_id].kind != role
    ]
    if bad:
        raise ValidationFailed("unknown manager or auditor accounts", bad)
    return wanted


def update(
    session: Session, principal: Principal, programme_id: str, body: ProgrammeUpdate
) -> ProgrammeOut:
    """Correct the fields sent, for the funder, open or closed (a name or the parties
    may need correcting after the close too; no money moves). Each change is
    recorded and one ``programme.updated`` event gives the previous values; removing
    a manager leaves the vouchers it issued as they are (``created_by`` keeps it)."""
    programme = access(
        session, principal, programme_id, roles=frozenset({"funder"}), for_update=True
    ).programme
    sent = body.model_fields_set
    before_readers = programme_readers(session, programme.id)
    old_parties = repository.parties(session, programme.id)
    old = {
        "manager_ids": sorted(p.account_id for p in old_parties if p.role == "manager"),
        "auditor_ids": sorted(p.account_id for p in old_parties if p.role == "auditor"),
    }
    new_lists = {
        "manager_ids": sorted(body.manager_ids)
        if "manager_ids" in sent and body.manager_ids is not None
        else old["manager_ids"],
        "auditor_ids": sorted(body.auditor_ids)
        if "auditor_ids" in sent and body.auditor_ids is not None
        else old["auditor_ids"],
    }
    previous: dict[str, Any] = {}
    if new_lists != old:
        wanted = _checked_parties(session, new_lists["manager_ids"], new_lists["auditor_ids"])
        repository.replace_parties(session, programme.id, wanted)
        changed = {f: v for f, v in old.items() if new_lists[f] != v}
        record_fields(
            session,
            changed,
            new_lists,
            object_type="programme",
            object_id=programme.id,
            changed_by=principal.actor_ref,
            programme_id=programme.id,
        )
        previous.update(changed)
    scalars: dict[str, Any] = {}
    if "name" in sent:
        scalars["name"] = body.name
    if "metadata" in sent:
        scalars["metadata"] = dict(body.metadata or {})
    previous.update(
        apply_fields(
            session,
            programme,
            scalars,
            object_type="programme",
            object_id=programme.id,
            changed_by=principal.actor_ref,
            programme_id=programme.id,
            attributes={"metadata": "meta"},
        )
    )
    out = to_out(session, programme)
    if previous:
        emit(
            session,
            "programme.updated",
            {"object": out.model_dump(mode="json"), "previous": previous},
            programme_id=programme.id,
            account_ids=[*before_readers, *programme_readers(session, programme.id)],
        )
    return out


def list_changes(
    session: Session, principal: Principal, programme_id: str, after: str | None, limit: int
) -> Page[ChangeOut]:
    """The programme's recorded corrections, for its parties."""
    access(session, principal, programme_id)
    return corrections.list_changes(session, "programme", programme_id, after, limit)
