"""The IATI 2.03 export of a full story validates against the official schema, maps
the programme as the issue asks, and its transactions add up to the journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import text

from tests.factories.exports import IATI_SCHEMA, MAIN_CATEGORIES, Story, story_on
from tests.factories.programmes import session_factory
from voucherledger.audit import iati
from voucherledger.audit.iati import SECTORS, iati_export, sector_shares
from voucherledger.audit.standards import ExportTally
from voucherledger.reference import SERVICE_CATEGORIES

REF = "XM-DAC-99999"
NAME = "Transparency & Co"
BULK = 400  # enough vouchers for the document to leave in several chunks


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(IATI_SCHEMA)))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    with story_on(str(request.param), request, tmp_path_factory.mktemp("iati"), bulk=BULK) as told:
        yield told


def export(
    story: Story,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tally: ExportTally | None = None,
) -> list[bytes]:
    with session_factory(story.client)() as session:
        return list(
            iati_export(
                session,
                [story.main, story.side],
                reporting_org_ref=REF,
                reporting_org_name=NAME,
                since=since,
                until=until,
                tally=tally,
            )
        )


def parse(chunks: list[bytes], schema: etree.XMLSchema) -> etree._Element:
    document = etree.fromstring(b"".join(chunks))
    if not schema.validate(document):
        pytest.fail(f"not valid IATI 2.03: {schema.error_log}")
    return document


def child(element: etree._Element, path: str) -> etree._Element:
    """``element.find(path)``, which must be there."""
    found = element.find(path)
    assert found is not None, path
    return found


def xpath(element: etree._Element, query: str) -> list[Any]:
    """The nodes or strings a node-set ``query`` selects."""
    found = element.xpath(query)
    assert isinstance(found, list), query
    return found


def activity(document: etree._Element, programme_id: str) -> etree._Element:
    (found,) = xpath(document, f"iati-activity[iati-identifier='{REF}-{programme_id}']")
    assert isinstance(found, etree._Element)
    return found


def transactions(element: etree._Element, type_code: str) -> dict[str, Decimal]:
    """``transaction/@ref`` -> value, of one transaction type."""
    out: dict[str, Decimal] = {}
    for txn in element.iterfind("transaction"):
        if child(txn, "transaction-type").get("code") == type_code:
            ref, value = txn.get("ref"), txn.findtext("value")
            assert ref is not None
            assert value is not None
            assert ref not in out
            out[ref] = Decimal(value)
    return out


def receivers(element: etree._Element, type_code: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for txn in element.iterfind("transaction"):
        if child(txn, "transaction-type").get("code") == type_code:
            ref = txn.get("ref")
            assert ref is not None
            out[ref] = txn.findtext("receiver-org/narrative")
    return out


def major(amount: int, exponent: int = 2) -> Decimal:
    return Decimal(amount).scaleb(-exponent)


# --- the whole export -------------------------------------------------------------------


def test_the_export_is_valid_iati_and_streams_in_chunks(
    story: Story, schema: etree.XMLSchema
) -> None:
    chunks = export(story)
    assert len(chunks) > 2
    assert all(isinstance(chunk, bytes) and chunk for chunk in chunks)
    assert max(len(chunk) for chunk in chunks[:-1]) < 2 * 64 * 1024
    document = parse(chunks, schema)
    assert document.get("version") == "2.03"
    identifiers = xpath(document, "iati-activity/iati-identifier/text()")
    assert identifiers == [f"{REF}-{story.main}", f"{REF}-{story.side}"]


def test_the_activity_describes_the_programme(story: Story, schema: etree.XMLSchema) -> None:
    document = parse(export(story), schema)
    main = activity(document, story.main)
    assert main.get("default-currency") == "EUR"
    assert child(main, "reporting-org").get("ref") == REF
    assert main.findtext("reporting-org/narrative") == NAME
    assert main.findtext("title/narrative") == "Diaspora capacity 2026"
    orgs = [(o.get("role"), o.findtext("narrative")) for o in main.iterfind("participating-org")]
    assert orgs == [
        ("1", "Fondation Diaspora & Développement"),
        ("3", "Umbrella <Network>"),
    ]
    assert child(main, "activity-status").get("code") == "4"  # closed
    dates = {d.get("type"): d.get("iso-date") for d in main.iterfind("activity-date")}
    assert set(dates) == {"2", "3", "4"}
    assert story.closed_at is not None
    assert dates["4"] == story.closed_at.date().isoformat()
    sectors = {s.get("code"): s.get("percentage") for s in main.iterfind("sector")}
    assert sectors == {"15150": "60", "25030": "20", "15170": "20"}
    assert [s.get("vocabulary") for s in main.iterfind("sector")] == ["1"] * 3
    marker = child(main, "policy-marker")
    assert (marker.get("vocabulary"), marker.get("code"), marker.get("significance")) == (
        "1",
        "1",
        "2",  # a women-led reserve is ring-fenced
    )
    assert child(main, "default-finance-type").get("code") == "110"
    aid = child(main, "default-aid-type")
    assert (aid.get("vocabulary"), aid.get("code")) == ("4", "2")

    side = activity(document, story.side)
    assert side.get("default-currency") == "JPY"
    assert [o.get("role") for o in side.iterfind("participating-org")] == ["1"]
    assert child(side, "activity-status").get("code") == "2"
    assert {d.get("type") for d in side.iterfind("activity-date")} == {"2"}
    assert child(side, "policy-marker").get("significance") == "1"
    assert [(s.get("code"), s.get("percentage")) for s in side.iterfind("sector")] == [
        ("15150", "100")
    ]


def test_transactions_follow_the_story(story: Story, schema: etree.XMLSchema) -> None:
    document = parse(export(story), schema)
    main = activity(document, story.main)
    assert sorted(transactions(main, "1").values()) == sorted(
        major(a) for a in story.deposits[story.main]
    )
    # One commitment per voucher, at its face value, to its group, as a voucher.
    commitments = {
        ref.split("/")[1]: value for ref, value in transactions(main, "2").items() if value > 0
    }
    assert commitments == {
        vid: major(story.vouchers[vid]["amount"]) for vid in story.voucher_ids(story.main)
    }
    for ref, name in receivers(main, "2").items():
        if "/" in ref:
            group_id = story.vouchers[ref.split("/")[1]]["group_id"]
            assert name == story.names[group_id]
    issued = [t for t in main.iterfind("transaction") if "/" in (t.get("ref") or "")]
    assert all(child(t, "aid-type").get("code") == "2" for t in issued)
    # De-commitments: revocations, the void of a claim held on a revoked voucher, the
    # expiry and the close, each at minus what went back.
    decommitments = {ref: value for ref, value in transactions(main, "2").items() if value < 0}
    assert decommitments == {ref: -major(amount) for ref, amount in story.decommitted.items()}
    # Expenditure: each settlement, to its supplier.
    assert transactions(main, "4") == {
        s["transaction_id"]: major(s["amount"]) for s in story.settlements.values()
    }
    assert receivers(main, "4") == {
        s["transaction_id"]: story.names[s["supplier_id"]] for s in story.settlements.values()
    }
    assert {child(t, "transaction-type").get("code") for t in main.iterfind("transaction")} == {
        "1",
        "2",
        "4",
    }

    side = activity(document, story.side)
    values = xpath(side, "transaction/value/text()")
    assert "500000" in values  # JPY has no minor unit: no decimal point
    assert all("." not in value for value in values)
    assert set(xpath(side, "transaction/value/@currency")) == {"JPY"}
    assert len(transactions(side, "2")) == 1 + BULK


def _journal_sums(story: Story, programme_id: str) -> dict[str, int]:
    """Per IATI type, the journal's own sum, read with plain SQL."""
    with session_factory(story.client)() as session:

        def total(sql: str) -> int:
            found = session.execute(text(sql), {"p": programme_id}).scalar_one()
            return int(found or 0)

        base = (
            "FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
            "WHERE t.programme_id = :p "
        )
        incoming = total(
            f"SELECT -sum(p.amount) {base} AND t.kind = 'deposit' "
            "AND p.account_code LIKE 'funder:%'"
        )
        issued = total(
            f"SELECT sum(p.amount) {base} AND t.kind = 'issue' AND p.account_code LIKE 'voucher:%'"
        )
        returned = total(
            f"SELECT sum(p.amount) {base} AND p.amount > 0 "
            "AND t.kind IN ('revoke', 'expire', 'close', 'void', 'refund') "
            "AND (p.account_code LIKE 'programme:%' OR p.account_code LIKE 'funder:%')"
        )
        spent = total(
            f"SELECT sum(p.amount) {base} AND t.kind = 'settle' AND p.account_code LIKE '%:paid:%'"
        )
    return {"1": incoming, "2": issued - returned, "4": spent}


def test_sums_per_type_equal_the_journal_and_the_tally(
    story: Story, schema: etree.XMLSchema
) -> None:
    tally = ExportTally("iati")
    document = parse(export(story, tally=tally), schema)
    assert tally.complete
    assert tally.programmes == 2
    assert tally.rows == len(xpath(document, "//transaction"))
    for programme_id, currency, exponent in ((story.main, "EUR", 2), (story.side, "JPY", 0)):
        element = activity(document, programme_id)
        sums = {code: sum(transactions(element, code).values(), Decimal(0)) for code in "124"}
        journal = _journal_sums(story, programme_id)
        assert sums == {code: major(journal[code], exponent) for code in "124"}
        assert tally.totals[currency] == {code: v for code, v in journal.items() if v}
    manifest = tally.as_dict()
    assert manifest["rows"] == tally.rows
    assert manifest["totals"]["EUR"]["1"] == {"amount": 1_200_000, "major": "12000.00"}


# --- the period -------------------------------------------------------------------------


def test_since_and_until_cut_the_journal_not_the_activities(
    story: Story, schema: etree.XMLSchema
) -> None:
    assert story.closed_at is not None
    close_ref = list(story.decommitted)[-1]  # the close was the story's last step
    before = parse(export(story, until=story.closed_at), schema)
    assert close_ref not in xpath(before, "//transaction/@ref")
    assert len(xpath(before, "iati-activity")) == 2

    tally = ExportTally("iati")
    after = parse(export(story, since=story.closed_at, tally=tally), schema)
    assert xpath(after, "//transaction/@ref") == [close_ref]
    assert activity(after, story.side).find("transaction") is None
    assert tally.rows == 1
    assert tally.first_at == tally.last_at == story.closed_at


# --- arguments and the sector table -----------------------------------------------------


def test_unknown_repeated_or_no_programmes_are_refused(story: Story) -> None:
    with session_factory(story.client)() as session:

        def export(programme_ids: list[str]) -> None:
            iati_export(
                session,
                programme_ids,
                reporting_org_ref=REF,
                reporting_org_name=NAME,
                since=None,
                until=None,
            )

        with pytest.raises(LookupError, match="prg_nope"):
            export([story.main, "prg_nope"])
        with pytest.raises(ValueError, match="repeat"):
            export([story.main, story.main])
        with pytest.raises(ValueError, match="at least one"):
            export([])


def test_every_service_category_has_a_named_dac_code() -> None:
    assert set(SECTORS) == SERVICE_CATEGORIES
    assert all(len(code) == 5 and code.isdigit() for code in SECTORS.values())
    assert set(SECTORS.values()) <= set(iati.SECTOR_NAMES)
    assert SECTORS["gender_mainstreaming"] == "15170"


@pytest.mark.parametrize("size", range(1, len(SERVICE_CATEGORIES) + 1))
def test_sector_percentages_always_sum_to_100(size: int) -> None:
    categories = sorted(SERVICE_CATEGORIES)[:size]
    shares = sector_shares(categories)
    assert sum(p for _, p in shares) == 100
    assert all(p > 0 for _, p in shares)
    assert {code for code, _ in shares} == {SECTORS[c] for c in categories}


def test_main_categories_are_weighted_by_count() -> None:
    assert dict(sector_shares(MAIN_CATEGORIES)) == {"15150": 60, "25030": 20, "15170": 20}
