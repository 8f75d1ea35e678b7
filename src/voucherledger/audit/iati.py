"""The IATI Activity Standard 2.03 export: one ``iati-activity`` per programme.

``iati_export(session, programme_ids, *, reporting_org_ref, reporting_org_name,
since, until, reporting_org_type="90", tally=None)`` returns an iterator of
UTF-8 ``bytes`` chunks that together are one ``iati-activities`` document valid
against ``iati-activities-schema.xsd``. It checks its arguments before returning
(``ValueError`` for no or repeated ids, ``LookupError`` for an unknown id), so a
caller can turn those into errors before it starts a response. Memory stays flat
whatever the size of the journal: each programme's postings come from one
server-side cursor (``yield_per``) and leave as XML in chunks of about 64 KiB.

What is mapped to what (``docs/exports.md`` has the whole table):

- ``iati-identifier`` is ``{reporting_org_ref}-{programme id}``; the funder is the
  ``participating-org`` of role 1 (Funding), each manager of the programme one of
  role 3 (Extending); ``activity-status`` 2 (Implementation), or 4
  (Post-completion) once the programme is closed; ``activity-date`` 2 (actual
  start) is the programme's creation, 3 (planned end) its ``ends_at``, 4 (actual
  end) its closing.
- ``sector`` (DAC 5-digit, vocabulary 1): :data:`SECTORS` maps each of the
  programme's service categories to a code; each code's percentage is its share
  of the categories, in whole percent summing to exactly 100.
- A gender-equality ``policy-marker`` (vocabulary 1, code 1): significance 2
  (principal) when the programme ring-fences a women-led reserve, else 1.
- ``default-finance-type`` 110 (standard grant); ``default-aid-type`` code 2 of
  vocabulary 4 (Cash and voucher modalities: Voucher).
- ``transaction``s, from the journal within ``[since, until)``:

  ============================  =====  ===============================================
  journal                       type   value
  ============================  =====  ===============================================
  ``deposit``                   1      what the funder put in (provider = the funder)
  ``issue``                     2      one per voucher posting: its face value
                                       (receiver = the group; aid-type 4/2)
  ``revoke``, ``expire``        2      minus what went back to the budget or funder
  ``close``                     2      minus the budget returned to the funder
  ``void``, ``refund``          2      minus what went back to the budget or funder
                                       (only when the voucher had ended; otherwise
                                       the value returns to the voucher: no row)
  ``settle``                    4      the payout (receiver = the supplier)
  ============================  =====  ===============================================

  ``hold`` and ``capture`` move value inside a commitment and are not reported.
  Values are exact major-unit decimals (``to_major``); the ``transaction/@ref``
  is the journal transaction id (``{txn id}/{voucher id}`` for issues), so each
  row traces back to the journal.

Stored text (names, the reporting organisation) goes through
:func:`~voucherledger.core.exporttext.xml_text` and ``xml_attr``: whatever a
string holds, the document is well-formed XML 1.0, each character XML cannot
carry written as U+FFFD (docs/exports.md#text-in-exports).

The ``tally`` (an :class:`~voucherledger.audit.standards.ExportTally`), when
given, counts ``transaction`` elements in ``rows`` and sums their signed values
in ``totals[currency][type code]`` as minor units; it is ``complete`` once the
iterator is exhausted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from voucherledger.audit import repository
from voucherledger.audit.standards import ExportTally, load_programmes
from voucherledger.core.exporttext import xml_attr, xml_text
from voucherledger.core.money import to_major
from voucherledger.programmes.models import Programme

IATI_VERSION = "2.03"

# Service category -> OECD DAC 5-digit purpose code (IATI Sector vocabulary 1).
#   15150 Democratic participation and civil society: strengthening the groups as
#         organisations (leadership, governance, management, fundraising, ...).
#   15170 Women's rights organisations and movements.
#   25030 Business development services: enterprise, markets, marketing.
#   43081 Multisector education/training: skills courses for members.
SECTORS: dict[str, str] = {
    "leadership": "15150",
    "management": "15150",
    "fundraising": "15150",
    "financial_literacy": "43081",
    "financial_management": "15150",
    "governance": "15150",
    "advocacy": "15150",
    "enterprise_development": "25030",
    "export_markets": "25030",
    "marketing": "25030",
    "legal_registration": "15150",
    "digital_skills": "43081",
    "monitoring_evaluation": "15150",
    "volunteering": "15150",
    "networking": "15150",
    "gender_mainstreaming": "15170",
}
SECTOR_NAMES: dict[str, str] = {
    "15150": "Democratic participation and civil society",
    "15170": "Women's rights organisations and movements, and government institutions",
    "25030": "Business development services",
    "43081": "Multisector education/training",
}

INCOMING_FUNDS = "1"
OUTGOING_COMMITMENT = "2"
EXPENDITURE = "4"
# Kinds whose value going back to a programme's budget or its funder is a de-commitment.
DECOMMITMENT_KINDS = ("revoke", "expire", "close", "void", "refund")
REPORTED_KINDS = ("deposit", "issue", "settle", *DECOMMITMENT_KINDS)

_CHUNK = 64 * 1024
_YIELD_PER = 1000


def sector_shares(categories: list[str]) -> list[tuple[str, int]]:
    """(DAC code, percentage) of a programme's categories, by code; whole percents that
    sum to exactly 100 (largest remainder), each code weighted by its categories."""
    weights: dict[str, int] = {}
    for category in categories:
        code = SECTORS[category]
        weights[code] = weights.get(code, 0) + 1
    total = sum(weights.values())
    if total == 0:
        return []
    floors = {code: weight * 100 // total for code, weight in weights.items()}
    left = 100 - sum(floors.values())
    by_remainder = sorted(weights, key=lambda code: (-(weights[code] * 100 % total), code))
    for code in by_remainder[:left]:
        floors[code] += 1
    return sorted(floors.items())


@dataclass(frozen=True)
class _Parties:
    funder: str
    managers: list[str]


def iati_export(
    session: Session,
    programme_ids: list[str],
    *,
    reporting_org_ref: str,
    reporting_org_name: str,
    since: datetime | None,
    until: datetime | None,
    reporting_org_type: str = "90",
    tally: ExportTally | None = None,
) -> Iterator[bytes]:
    """The programmes as one IATI 2.03 ``iati-activities`` document, in chunks.

    ``since`` is inclusive and ``until`` exclusive; both filter the journal only —
    every programme asked for gets its activity, with or without transactions.
    """
    programmes = load_programmes(session, programme_ids)
    parties = {programme.id: _parties(session, programme) for programme in programmes}
    if tally is not None:
        tally.since, tally.until = since, until
    return _stream(
        session,
        programmes,
        parties,
        reporting_org=(reporting_org_ref, reporting_org_type, reporting_org_name),
        since=since,
        until=until,
        tally=tally,
    )


def _parties(session: Session, programme: Programme) -> _Parties:
    return _Parties(
        repository.account_name(session, programme.funder_id),
        repository.manager_names(session, programme.id),
    )


class _Writer:
    """Collects XML text and hands it out in chunks of about ``_CHUNK`` bytes."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)

    def ready(self) -> bool:
        return self._size >= _CHUNK

    def take(self) -> bytes:
        out = "".join(self._parts).encode("utf-8")
        self._parts.clear()
        self._size = 0
        return out


def _narrative(text: str) -> str:
    return f"<narrative>{xml_text(text)}</narrative>"


def _date(value: datetime) -> str:
    return value.astimezone(UTC).date().isoformat()


def _stream(
    session: Session,
    programmes: list[Programme],
    parties: dict[str, _Parties],
    *,
    reporting_org: tuple[str, str, str],
    since: datetime | None,
    until: datetime | None,
    tally: ExportTally | None,
) -> Iterator[bytes]:
    out = _Writer()
    generated = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<iati-activities version="{IATI_VERSION}" generated-datetime="{generated}">\n'
    )
    for programme in programmes:
        out.write(_activity_head(programme, parties[programme.id], reporting_org))
        for element in _transactions(
            session, programme, parties[programme.id], since, until, tally
        ):
            out.write(element)
            if out.ready():
                yield out.take()
        out.write("</iati-activity>\n")
        if tally is not None:
            tally.programmes += 1
    out.write("</iati-activities>\n")
    yield out.take()
    if tally is not None:
        tally.complete = True


def _activity_head(
    programme: Programme, parties: _Parties, reporting_org: tuple[str, str, str]
) -> str:
    ref, org_type, org_name = reporting_org
    closed = programme.status == "closed"
    categories = ", ".join(c.replace("_", " ") for c in programme.service_categories)
    reserve = int(programme.rules.get("women_led_reserve_pct", 0))
    description = (
        f"Capacity-building vouchers for diaspora and migrant organisations, spent with "
        f"accredited suppliers on: {categories}."
    )
    if reserve:
        description += f" {reserve}% of the budget is ring-fenced for women-led groups."
    lines = [
        f'<iati-activity xml:lang="en" default-currency={xml_attr(programme.currency)}>',
        f"<iati-identifier>{xml_text(f'{ref}-{programme.id}')}</iati-identifier>",
        f"<reporting-org ref={xml_attr(ref)} type={xml_attr(org_type)}>"
        f"{_narrative(org_name)}</reporting-org>",
        f"<title>{_narrative(programme.name)}</title>",
        f'<description type="1">{_narrative(description)}</description>',
        f'<participating-org role="1">{_narrative(parties.funder)}</participating-org>',
        *(
            f'<participating-org role="3">{_narrative(name)}</participating-org>'
            for name in parties.managers
        ),
        f'<activity-status code="{4 if closed else 2}"/>',
        f'<activity-date type="2" iso-date="{_date(programme.created_at)}"/>',
    ]
    if programme.ends_at is not None:
        lines.append(f'<activity-date type="3" iso-date="{_date(programme.ends_at)}"/>')
    if closed and programme.closed_at is not None:
        lines.append(f'<activity-date type="4" iso-date="{_date(programme.closed_at)}"/>')
    for code, percentage in sector_shares(programme.service_categories):
        lines.append(
            f'<sector vocabulary="1" code="{code}" percentage="{percentage}">'
            f"{_narrative(SECTOR_NAMES[code])}</sector>"
        )
    lines += [
        f'<policy-marker vocabulary="1" code="1" significance="{2 if reserve > 0 else 1}"/>',
        '<default-finance-type code="110"/>',
        '<default-aid-type code="2" vocabulary="4"/>',
    ]
    return "\n".join(lines) + "\n"


@dataclass
class _Pending:
    """A de-commitment being summed over the postings of its transaction."""

    txn_id: str
    kind: str
    at: datetime
    currency: str
    amount: int = 0


_DECOMMIT_TEXT = {
    "revoke": "Voucher revoked: remaining value de-committed",
    "expire": "Voucher expired: remaining value de-committed",
    "close": "Programme closed: unissued budget returned to the funder",
    "void": "Claim released after the voucher ended: value de-committed",
    "refund": "Claim refunded after the voucher ended: value de-committed",
}


def _transactions(
    session: Session,
    programme: Programme,
    parties: _Parties,
    since: datetime | None,
    until: datetime | None,
    tally: ExportTally | None,
) -> Iterator[str]:
    def element(
        ref: str,
        type_code: str,
        at: datetime,
        amount: int,
        currency: str,
        description: str,
        *,
        provider: str | None = None,
        receiver: str | None = None,
        voucher_aid: bool = False,
    ) -> str:
        if tally is not None:
            tally.rows += 1
            tally.add(currency, type_code, amount)
            tally.seen(at)
        day = _date(at)
        parts = [
            f"<transaction ref={xml_attr(ref)}>",
            f'<transaction-type code="{type_code}"/>',
            f'<transaction-date iso-date="{day}"/>',
            f'<value currency={xml_attr(currency)} value-date="{day}">'
            f"{to_major(amount, currency)}</value>",
            f"<description>{_narrative(description)}</description>",
        ]
        if provider is not None:
            parts.append(f"<provider-org>{_narrative(provider)}</provider-org>")
        if receiver is not None:
            parts.append(f"<receiver-org>{_narrative(receiver)}</receiver-org>")
        if voucher_aid:
            parts.append('<aid-type code="2" vocabulary="4"/>')
        parts.append("</transaction>\n")
        return "".join(parts)

    def flush(pending: _Pending | None) -> Iterator[str]:
        if pending is not None and pending.amount:
            yield element(
                pending.txn_id,
                OUTGOING_COMMITMENT,
                pending.at,
                -pending.amount,
                pending.currency,
                _DECOMMIT_TEXT[pending.kind],
            )

    pending: _Pending | None = None
    rows = repository.stream_iati_postings(
        session,
        programme.id,
        kinds=REPORTED_KINDS,
        since=since,
        until=until,
        yield_per=_YIELD_PER,
    )
    for txn_id, kind, at, account, amount, currency, voucher_id, group, supplier in rows:
        if pending is not None and pending.txn_id != txn_id:
            yield from flush(pending)
            pending = None
        if kind == "deposit":
            if account.startswith("funder:"):
                yield element(
                    txn_id,
                    INCOMING_FUNDS,
                    at,
                    -amount,
                    currency,
                    "Funds deposited by the funder",
                    provider=parties.funder,
                )
        elif kind == "issue":
            if voucher_id is not None:
                yield element(
                    f"{txn_id}/{voucher_id}",
                    OUTGOING_COMMITMENT,
                    at,
                    amount,
                    currency,
                    f"Voucher {voucher_id} issued",
                    receiver=group,
                    voucher_aid=True,
                )
        elif kind == "settle":
            if amount > 0 and ":paid:" in account:
                yield element(
                    txn_id,
                    EXPENDITURE,
                    at,
                    amount,
                    currency,
                    "Supplier paid for services delivered against vouchers",
                    receiver=supplier,
                )
        elif amount > 0 and account.startswith(("programme:", "funder:")):
            if pending is None:
                pending = _Pending(txn_id, kind, at, currency)
            pending.amount += amount
    yield from flush(pending)
