"""Accounts and keys: who may see whom, and key issuance and revocation; a
supplier's contact and payout details, and who may see the payout ones.

``created_by`` / ``revoked_by`` are who asked (``Principal.actor_ref``); the CLI,
the demo and other callers with no request behind them record ``"system"``.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session

from voucherledger.accounts import repository
from voucherledger.accounts.models import Account, ApiKey
from voucherledger.accounts.schemas import (
    PAYOUT_FIELDS,
    AccountCreate,
    AccountOut,
    AccountUpdate,
    GroupProfileOut,
    KeyCreated,
    KeyOut,
    SupplierProfileOut,
    SupplierProfileUpdate,
)
from voucherledger.core import corrections
from voucherledger.core.auth import Principal, generate_key
from voucherledger.core.corrections import ChangeOut, apply_fields, record_fields
from voucherledger.core.db import utcnow
from voucherledger.core.errors import Forbidden, NotFound, ValidationFailed
from voucherledger.core.events import emit
from voucherledger.core.ids import new_id
from voucherledger.core.pagination import Page, make_page
from voucherledger.ledger import SYSTEM

# What each role may see of the directory besides itself.
_VISIBLE_KINDS: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "funder", "manager", "group", "supplier", "auditor"}),
    "funder": frozenset({"group", "supplier"}),
    "manager": frozenset({"group", "supplier"}),
}


# What each role may create besides the admin, who creates every kind.
_CREATABLE_KINDS: dict[str, frozenset[str]] = {
    "funder": frozenset({"group", "supplier"}),
    "manager": frozenset({"group", "supplier"}),
}


def may_create(principal: Principal, kind: str) -> None:
    """403 unless the caller may create an account of ``kind``."""
    if principal.kind == "admin" or kind in _CREATABLE_KINDS.get(principal.kind, frozenset()):
        return
    raise Forbidden(f"A {principal.kind} account may not create {kind} accounts.")


def payout_visible(
    session: Session, principal: Principal, accounts: Collection[Account]
) -> set[str]:
    """The suppliers among ``accounts`` whose payout details the caller may see: the
    admin sees every one's, a supplier its own, a funder or manager those accredited
    (active or suspended) in programmes it funds or manages; groups, auditors and other
    suppliers none."""
    suppliers = {a.id for a in accounts if a.kind == "supplier"}
    if principal.kind == "admin":
        return suppliers
    if principal.kind == "supplier":
        return suppliers & {principal.account_id}
    return repository.accredited_by(session, principal.kind, principal.account_id, suppliers)


def to_out(account: Account, *, payout: bool = False) -> AccountOut:
    """``payout``: whether the caller may see a supplier's payout details (else null)."""
    group = None
    if account.kind == "group":
        group = GroupProfileOut(
            group_type=account.group_type or "",
            origin_country=account.origin_country or "",
            residence_country=account.residence_country or "",
            women_led=bool(account.women_led),
        )
    supplier = None
    if account.kind == "supplier":
        supplier = SupplierProfileOut(
            service_categories=list(account.service_categories or []),
            contact_email=account.contact_email,
            contact_phone=account.contact_phone,
        )
        if payout:
            supplier.payout_iban = account.payout_iban
            supplier.payout_bic = account.payout_bic
            supplier.payout_account_holder = account.payout_account_holder
            supplier.payout_updated_at = account.payout_updated_at
            supplier.payout_updated_by = account.payout_updated_by
    return AccountOut(
        id=account.id,
        kind=account.kind,
        name=account.name,
        country=account.country,
        group=group,
        supplier=supplier,
        created_at=account.created_at,
        require_totp=bool(account.require_totp),
        created_by=account.created_by,
        metadata=dict(account.meta or {}),
    )


def create(session: Session, data: AccountCreate, *, created_by: str = SYSTEM) -> AccountOut:
    account = Account(
        id=new_id("acc"),
        kind=data.kind,
        name=data.name,
        country=data.country,
        created_at=utcnow(),
        created_by=created_by,
        meta=dict(data.metadata),
    )
    if data.group is not None:
        account.group_type = data.group.group_type
        account.origin_country = data.group.origin_country
        account.residence_country = data.group.residence_country
        account.women_led = data.group.women_led
    if data.supplier is not None:
        account.service_categories = list(data.supplier.service_categories)
    repository.add(session, account)
    return to_out(account)


def get(session: Session, principal: Principal, account_id: str) -> AccountOut:
    """The account if the caller may see it; 404 otherwise (never 403)."""
    account = repository.get(session, account_id)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    if account.id == principal.account_id or account.kind in _VISIBLE_KINDS.get(
        principal.kind, frozenset()
    ):
        return to_out(account, payout=bool(payout_visible(session, principal, [account])))
    raise NotFound(f"No account {account_id}.")


def directory(
    session: Session,
    principal: Principal,
    kind: str | None,
    after: str | None,
    limit: int,
    *,
    q: str | None = None,
) -> Page[AccountOut]:
    kinds = _VISIBLE_KINDS[principal.kind]
    if kind is not None:
        kinds = kinds & {kind}
    rows = repository.list_by_kinds(session, kinds, after=after, limit=limit + 1, name_part=q)
    payout = payout_visible(session, principal, rows[:limit])
    return make_page([to_out(a, payout=a.id in payout) for a in rows], limit)


def update_supplier_profile(
    session: Session, principal: Principal, account_id: str, body: SupplierProfileUpdate
) -> AccountOut:
    """Change the fields sent. The supplier's owners (and its own key) and the admin
    may; another supplier gets 404, as for an account it cannot see. A change to a
    payout field records when and by whom (``payout_updated_at`` / ``_by``)."""
    if principal.kind != "admin" and principal.account_id != account_id:
        raise NotFound(f"No account {account_id}.")
    account = repository.get(session, account_id, for_update=True)
    if account is None or account.kind != "supplier":
        raise NotFound(f"No supplier account {account_id}.")
    before: dict[str, object] = {f: getattr(account, f) for f in sorted(body.model_fields_set)}
    changed_payout = False
    for field in sorted(body.model_fields_set):
        value = getattr(body, field)
        if getattr(account, field) != value:
            setattr(account, field, value)
            changed_payout = changed_payout or field in PAYOUT_FIELDS
    if changed_payout:
        account.payout_updated_at = utcnow()
        account.payout_updated_by = principal.actor_ref
    session.flush()
    record_profile_update(session, principal, account, before)
    return to_out(account, payout=True)


def issue_key(
    session: Session, account_id: str, *, created_by: str, member_id: str | None = None
) -> tuple[ApiKey, str]:
    """A new key of the account (a member's personal key with ``member_id``): the row,
    and the key in plain text, which only the response that makes it shows."""
    new = generate_key()
    key = ApiKey(
        id=new.id,
        account_id=account_id,
        member_id=member_id,
        secret_hash=new.secret_hash,
        created_at=utcnow(),
        created_by=created_by,
    )
    repository.add_key(session, key)
    return key, new.plaintext


def create_key(session: Session, account_id: str, *, created_by: str = SYSTEM) -> KeyCreated:
    if repository.get(session, account_id) is None:
        raise NotFound(f"No account {account_id}.")
    key, plaintext = issue_key(session, account_id, created_by=created_by)
    return KeyCreated(
        id=key.id,
        account_id=account_id,
        key=plaintext,
        created_at=key.created_at,
        created_by=key.created_by,
    )


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut.model_validate(key)


def revoke_key(session: Session, principal: Principal, key_id: str) -> None:
    """Revoke at once; revoking a revoked key again changes nothing (nor who did it)."""
    key = repository.get_key(session, key_id)
    if key is None or not (principal.is_admin or key.account_id == principal.account_id):
        raise NotFound(f"No API key {key_id}.")
    own = key.member_id is not None and key.member_id == principal.member_id
    if not (principal.is_admin or own or principal.has_member_role("owner")):
        raise Forbidden("An account's owners revoke its keys; a member revokes its own.")
    repository.revoke_key(session, key_id, utcnow(), principal.actor_ref)


def create_admin(session: Session, name: str) -> KeyCreated:
    """The first admin account and its key, from the CLI: made by ``"system"``."""
    account = create(session, AccountCreate(kind="admin", name=name), created_by=SYSTEM)
    return create_key(session, account.id, created_by=SYSTEM)


# --- Issue 13: corrections (PATCH /v1/accounts/{id}), recorded and evented ---
_GROUP_FIELDS = ("group_type", "origin_country", "residence_country", "women_led")


def _editable(session: Session, principal: Principal, account_id: str) -> Account:
    """The account locked for a correction: the admin's any, else the caller's own
    (another account's is 404, as an account the caller cannot see)."""
    if principal.kind != "admin" and principal.account_id != account_id:
        raise NotFound(f"No account {account_id}.")
    account = repository.get(session, account_id, for_update=True)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    return account


def _emit_updated(
    session: Session, account: Account, previous: dict[str, object], *, payout: bool
) -> None:
    emit(
        session,
        "account.updated",
        {
            "object": to_out(account, payout=payout).model_dump(mode="json"),
            "previous": previous,
        },
        account_ids=[account.id],
    )


def update(
    session: Session, principal: Principal, account_id: str, body: AccountUpdate
) -> AccountOut:
    """Correct the fields sent; each change is recorded and one ``account.updated``
    event says what it was before. Nothing sent that differs: nothing recorded."""
    account = _editable(session, principal, account_id)
    sent = body.model_fields_set
    wanted: dict[str, object] = {f: getattr(body, f) for f in ("name", "country") if f in sent}
    if "metadata" in sent:
        wanted["metadata"] = dict(body.metadata or {})
    if body.group is not None:
        if principal.kind != "admin":
            # The profile decides a group's share of the women-led reserve and where it
            # counts in the disaggregated reports: not the group's own to change.
            raise Forbidden(
                "A group's profile (type, countries, women-led) decides its eligibility and "
                "the reports; only an admin corrects it."
            )
        if account.kind != "group":
            raise ValidationFailed(
                "only a group account has a group profile",
                [{"loc": ["body", "group"], "msg": "not a group account", "type": "value_error"}],
            )
        for field in sorted(body.group.model_fields_set):
            wanted[f"group.{field}"] = getattr(body.group, field)
    previous = apply_fields(
        session,
        account,
        wanted,
        object_type="account",
        object_id=account.id,
        changed_by=principal.actor_ref,
        attributes={"metadata": "meta", **{f"group.{f}": f for f in _GROUP_FIELDS}},
    )
    payout = bool(payout_visible(session, principal, [account]))
    if previous:
        _emit_updated(session, account, previous, payout=True)
    return to_out(account, payout=payout)


def record_profile_update(
    session: Session,
    principal: Principal,
    account: Account,
    before: dict[str, object],
) -> None:
    """Record what ``update_supplier_profile`` changed (``before``: every field it may
    change, as it was) and emit ``account.updated``; nothing when nothing changed."""
    current = {f: getattr(account, f) for f in before}
    previous = {f: v for f, v in before.items() if current[f] != v}
    if not previous:
        return
    record_fields(
        session,
        previous,
        current,
        object_type="account",
        object_id=account.id,
        changed_by=principal.actor_ref,
    )
    _emit_updated(session, account, previous, payout=True)


def list_changes(
    session: Session, principal: Principal, account_id: str, after: str | None, limit: int
) -> Page[ChangeOut]:
    """The account's recorded changes, for who may read it; a payout field's values
    are null for a caller who may not see the payout details."""
    get(session, principal, account_id)  # 404 unless visible
    page = corrections.list_changes(session, "account", account_id, after, limit)
    account = repository.get(session, account_id)
    if account is not None and not payout_visible(session, principal, [account]):
        for change in page.data:
            if change.field in PAYOUT_FIELDS:
                change.old_value = change.new_value = None
    return page
