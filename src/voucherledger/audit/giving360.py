"""The 360Giving Data Standard export: a JSON package ``{"grants": [...]}``, one grant
per voucher.

``giving360_export(session, programme_ids, *, prefix, since, until, tally=None)``
returns an iterator of UTF-8 ``bytes`` chunks that together are one package valid
against ``360-giving-package-schema.json`` (schema 1.4) — provided it holds at
least one grant: the standard wants ``minItems: 1``, so an export of programmes
with no voucher in the period is ``{"grants": []}``, well-formed but not a valid
package. Arguments are checked before the iterator is returned (``ValueError``
for no or repeated ids, ``LookupError`` for an unknown id). Memory stays flat:
vouchers are read in keyset chunks of :data:`_CHUNK_VOUCHERS`, with their
disbursements fetched per chunk.

Mapping (``docs/exports.md`` has the whole table):

- ``id`` ``360G-{prefix}-{voucher id}``; ``amountAwarded`` the face value in major
  units, written as the exact decimal text of ``to_major`` (never via a float);
  ``awardDate`` the issue time; ``plannedDates`` issue to expiry.
- Organisation ids: parties have no registered number here, so — as the
  360Giving identifier guidance asks for organisations without one — they get
  ``360G-{prefix}-{account id}``; account ids start ``acc_``, so they never clash
  with grant ids (``vch_``).
- ``recipientOrganization`` the group (``addressCountry`` its country of
  residence, by name); ``beneficiaryLocation`` its country of origin;
  ``fundingOrganization`` the funder; ``grantProgramme`` the programme (code = its id).
- ``disbursementTransaction``: one per settlement that paid claims on the voucher,
  valued at the claims' net amounts (claimed minus refunded), recipient = the
  supplier paid; ``amountDisbursed`` their sum.
- ``additional_data.metadata``: the voucher's ``metadata`` (the standard has no field
  for it, and allows extra properties), present when it has any.

Period: a grant is in the export when its voucher was issued in ``[since,
until)``; its disbursements are those settled before ``until`` (whenever after
the award), so ``amountDisbursed`` is what had been paid by the end of the period.

Text: every stored string is written by ``json.dumps`` (valid JSON for any string);
each grant is one line, with U+0085, U+2028 and U+2029 written as ``\\u`` escapes
(:func:`~voucherledger.core.exporttext.json_line`) so no reader splits a grant.

The ``tally``, when given, counts grants in ``rows`` and sums minor units in
``totals[currency]["awarded"]`` and ``["disbursed"]``; it is ``complete`` once
the iterator is exhausted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pycountry
from sqlalchemy.orm import Session

from voucherledger.accounts.models import Account
from voucherledger.audit import repository
from voucherledger.audit.standards import ExportTally, load_programmes, rfc3339
from voucherledger.core.exporttext import json_line
from voucherledger.core.money import to_major
from voucherledger.programmes.models import Programme
from voucherledger.vouchers.models import Voucher

_CHUNK_VOUCHERS = 500
_CHUNK_BYTES = 64 * 1024


class Major(str):
    """An exact decimal amount written into JSON as a number, digit for digit."""

    __slots__ = ()


def org_id(prefix: str, account_id: str) -> str:
    return f"360G-{prefix}-{account_id}"


def grant_id(prefix: str, voucher_id: str) -> str:
    return f"360G-{prefix}-{voucher_id}"


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return code if country is None else str(country.name)


def dumps(value: Any) -> str:
    """JSON like ``json.dumps`` (UTF-8 text, no spaces), with :class:`Major` as numbers."""
    if isinstance(value, Major):
        return str.__str__(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(key)}:{dumps(item)}" for key, item in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class _Funder:
    id: str
    name: str


def giving360_export(
    session: Session,
    programme_ids: list[str],
    *,
    prefix: str,
    since: datetime | None,
    until: datetime | None,
    tally: ExportTally | None = None,
) -> Iterator[bytes]:
    """The programmes' vouchers as one 360Giving package, in chunks."""
    if not prefix:
        raise ValueError("a 360Giving prefix is required")
    programmes = load_programmes(session, programme_ids)
    funders = {
        account.id: _Funder(account.id, account.name)
        for account in repository.list_accounts(session, {p.funder_id for p in programmes})
    }
    if tally is not None:
        tally.since, tally.until = since, until
    return _stream(session, programmes, funders, prefix, since, until, tally)


def _stream(
    session: Session,
    programmes: list[Programme],
    funders: dict[str, _Funder],
    prefix: str,
    since: datetime | None,
    until: datetime | None,
    tally: ExportTally | None,
) -> Iterator[bytes]:
    parts: list[str] = ['{"grants":[']
    size = 0
    first = True
    for programme in programmes:
        funder = funders[programme.funder_id]
        for grant in _grants(session, programme, funder, prefix, since, until, tally):
            text = ("" if first else ",\n") + json_line(dumps(grant))
            first = False
            parts.append(text)
            size += len(text)
            if size >= _CHUNK_BYTES:
                yield "".join(parts).encode("utf-8")
                parts.clear()
                size = 0
        if tally is not None:
            tally.programmes += 1
    parts.append("]}\n")
    yield "".join(parts).encode("utf-8")
    if tally is not None:
        tally.complete = True


@dataclass(frozen=True)
class _Disbursement:
    settlement_id: str
    at: datetime
    supplier_id: str
    supplier_name: str
    amount: int


def _disbursements(
    session: Session, voucher_ids: list[str], until: datetime | None
) -> dict[str, list[_Disbursement]]:
    """Per voucher, each settlement that paid claims on it, with the claims' net total."""
    out: dict[str, list[_Disbursement]] = {}
    for paid in repository.settled_claims(session, voucher_ids, until=until):
        if paid.net_amount:
            out.setdefault(paid.voucher_id, []).append(
                _Disbursement(
                    paid.settlement_id,
                    paid.settled_at,
                    paid.supplier_id,
                    paid.supplier_name,
                    paid.net_amount,
                )
            )
    return out


def _grants(
    session: Session,
    programme: Programme,
    funder: _Funder,
    prefix: str,
    since: datetime | None,
    until: datetime | None,
    tally: ExportTally | None,
) -> Iterator[dict[str, Any]]:
    funding_org = {"id": org_id(prefix, funder.id), "name": funder.name}
    grant_programme = {"code": programme.id, "title": programme.name}
    after: str | None = None
    while True:
        chunk = repository.vouchers_with_groups(
            session, programme.id, after=after, since=since, until=until, limit=_CHUNK_VOUCHERS
        )
        if not chunk:
            return
        after = chunk[-1][0].id
        paid = _disbursements(session, [voucher.id for voucher, _ in chunk], until)
        for voucher, group in chunk:
            grant = _grant(
                voucher, group, paid.get(voucher.id, []), funding_org, grant_programme, prefix
            )
            if tally is not None:
                tally.rows += 1
                tally.seen(voucher.created_at)
                tally.add(voucher.currency, "awarded", voucher.amount)
                tally.add(
                    voucher.currency,
                    "disbursed",
                    sum(d.amount for d in paid.get(voucher.id, [])),
                )
                for disbursement in paid.get(voucher.id, []):
                    tally.seen(disbursement.at)
            yield grant
        if len(chunk) < _CHUNK_VOUCHERS:
            return


def _grant(
    voucher: Voucher,
    group: Account,
    paid: list[_Disbursement],
    funding_org: dict[str, str],
    grant_programme: dict[str, str],
    prefix: str,
) -> dict[str, Any]:
    cur = voucher.currency
    categories = ", ".join(c.replace("_", " ") for c in voucher.service_categories)
    description = (
        f"A voucher worth {to_major(voucher.amount, cur)} {cur} for capacity-building "
        f"services ({categories}) from suppliers accredited by the programme "
        f"{grant_programme['title']}, chosen by the group. Status: {voucher.status}."
    )
    recipient: dict[str, Any] = {
        "id": org_id(prefix, group.id),
        "name": group.name,
    }
    if group.residence_country:
        recipient["addressCountry"] = country_name(group.residence_country)
    grant: dict[str, Any] = {
        "id": grant_id(prefix, voucher.id),
        "title": f"Capacity-building voucher for {group.name}"[:140],
        "description": description,
        "currency": cur,
        "amountAwarded": Major(to_major(voucher.amount, cur)),
        "awardDate": rfc3339(voucher.created_at),
        "plannedDates": [
            {"startDate": rfc3339(voucher.created_at), "endDate": rfc3339(voucher.expires_at)}
        ],
        "recipientOrganization": [recipient],
        "fundingOrganization": [funding_org],
        "grantProgramme": [grant_programme],
    }
    if group.origin_country:
        grant["beneficiaryLocation"] = [
            {"countryCode": group.origin_country, "name": country_name(group.origin_country)}
        ]
    if voucher.meta:
        grant["additional_data"] = {"metadata": dict(voucher.meta)}
    grant["amountDisbursed"] = Major(to_major(sum(d.amount for d in paid), cur))
    if paid:
        grant["disbursementTransaction"] = [
            {
                "id": f"{d.settlement_id}-{voucher.id}",
                "transactionDate": rfc3339(d.at),
                "currency": cur,
                "value": Major(to_major(d.amount, cur)),
                "provider": funding_org["id"],
                "recipient": org_id(prefix, d.supplier_id),
                "description": (
                    f"Settlement {d.settlement_id}: {d.supplier_name} paid for services "
                    f"delivered against this voucher"
                ),
            }
            for d in paid
        ]
    return grant
