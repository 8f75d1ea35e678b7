"""Every export stays well-formed and inert whatever text the database holds.

The names and the memo below are written straight into the database, past the API's
input checks, as data stored before those checks existed would be. The IATI document
must still parse and validate, the CSV cells must not run as formulas in a
spreadsheet, the jsonl must keep one record per line for a reader that splits lines
on every Unicode line boundary (as ``str.splitlines`` does) and still verify, and the
360Giving package must be JSON with one grant per line. The representations are
described in docs/exports.md#text-in-exports.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select, update

from tests.factories.app import client_for
from tests.factories.exports import IATI_SCHEMA, giving360_validator
from tests.factories.programmes import issue, session_factory
from tests.factories.redemptions import Cast, claim, claim_programme, decide, make_cast, settle
from voucherledger import chart, ledger
from voucherledger.accounts.models import Account
from voucherledger.core.db import transaction
from voucherledger.core.settings import Settings
from voucherledger.ledger.canonical import canonical_json, chain_hash
from voucherledger.ledger.export import chained_record
from voucherledger.ledger.models import Seal
from voucherledger.ledger.verify import verify_lines
from voucherledger.programmes.models import Programme

CLI = Path(sys.executable).parent / "voucherledger"

# Characters XML 1.0 cannot carry (C0 controls other than tab, LF and CR, and the
# non-characters U+FFFE and U+FFFF), line boundaries other than LF, and a start that
# a spreadsheet runs as a formula. No NUL: PostgreSQL's text cannot hold one.
NAMES = {
    "programme": "\tProgramme\x08 of\r\nrecord\ufffe",
    "funder": '=HYPERLINK("http://evil.example","Fund")\x01',
    "manager": "+Umbrella\x0b\x0c\uffff",
    "group": "-Group\u2028line\u2029para\x85next\x1c\x1d\x1e",
    "supplier": "@Supplier\x1f\x7f",
}
MEMO = "=SUM(A1:A9)\u2028\u2029\x85 and a\rcarriage\nreturn\x1f"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Python's own list of line boundaries: str.splitlines splits on each of them.
LINE_BOUNDARIES = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def as_xml(text: str) -> str:
    """What an XML parser reads back for a stored string (docs/exports.md)."""
    return "".join(
        c if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD else "\ufffd"
        for c in text
    )


@dataclass
class Hostile:
    client: TestClient
    cast: Cast
    programme_id: str
    memo_txn: str


@pytest.fixture
def hostile(settings: Settings) -> Iterator[Hostile]:
    with client_for(settings) as client:
        cast = make_cast(client)
        programme_id = claim_programme(client, cast, 50_000, accredit_for=(cast.supplier,))["id"]
        voucher = issue(client, cast.funder, programme_id, cast.group.id, 5_000)
        made = claim(client, cast.supplier, voucher["code"], 1_200)
        assert decide(client, cast.group, made["id"], "confirm").status_code == 200
        assert settle(client, cast.funder, programme_id, cast.supplier.id).status_code == 201
        with transaction(session_factory(client)) as session:
            session.execute(
                update(Programme)
                .where(Programme.id == programme_id)
                .values(name=NAMES["programme"])
            )
            for role in ("funder", "manager", "group", "supplier"):
                party = getattr(cast, role)
                session.execute(
                    update(Account).where(Account.id == party.id).values(name=NAMES[role])
                )
            posted = ledger.post(
                session,
                kind="transfer",
                programme_id=programme_id,
                memo=MEMO,
                metadata={"note": MEMO},
                legs=[
                    ledger.Leg(chart.funder(cast.funder.id, "EUR"), -1, "EUR"),
                    ledger.Leg(chart.unissued(programme_id), 1, "EUR"),
                ],
            )
        yield Hostile(client, cast, programme_id, posted.transaction_id)


def _export(hostile: Hostile, export_format: str) -> str:
    response = hostile.client.get(
        "/v1/audit/export",
        headers=hostile.cast.auditor.headers,
        params={"format": export_format, "programme_id": hostile.programme_id},
    )
    assert response.status_code == 200, response.text
    text: str = response.text
    return text


# --- IATI ------------------------------------------------------------------------------


def test_iati_parses_and_validates_whatever_the_names_hold(hostile: Hostile) -> None:
    raw = _export(hostile, "iati").encode("utf-8")
    document = etree.fromstring(raw)  # raises on a document that is not well-formed
    schema = etree.XMLSchema(etree.parse(str(IATI_SCHEMA)))
    assert schema.validate(document), schema.error_log
    (activity,) = document.iterfind("iati-activity")
    assert activity.findtext("title/narrative") == as_xml(NAMES["programme"])
    orgs = [o.findtext("narrative") for o in activity.iterfind("participating-org")]
    assert orgs == [as_xml(NAMES["funder"]), as_xml(NAMES["manager"])]
    receivers = {t.findtext("receiver-org/narrative") for t in activity.iterfind("transaction")}
    assert {as_xml(NAMES["group"]), as_xml(NAMES["supplier"])} <= receivers
    # A carriage return survives (as &#13;), where a parser would turn a raw one into LF.
    assert "\r\n" in as_xml(NAMES["programme"])


# --- CSV -------------------------------------------------------------------------------


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_journal_csv_cells_cannot_run_as_formulas(hostile: Hostile) -> None:
    rows = _rows(_export(hostile, "csv"))
    header = rows[0]
    amount = header.index("amount")
    memo = header.index("memo")
    postings = [row for row in rows[1:] if row and row[0] == hostile.memo_txn]
    assert len(postings) == 2
    assert {row[memo] for row in postings} == {"'" + MEMO}
    # Amounts are numbers: a negative one stays a number, not text.
    assert sorted(row[amount] for row in postings) == ["-1", "1"]
    for row in rows[1:]:
        for index, cell in enumerate(row):
            if index != amount:
                assert not cell.startswith(FORMULA_STARTS), (header[index], cell)


def test_report_csv_cells_cannot_run_as_formulas(hostile: Hostile) -> None:
    response = hostile.client.get(
        f"/v1/programmes/{hostile.programme_id}/report",
        headers=hostile.cast.funder.headers,
        params={"format": "csv"},
    )
    assert response.status_code == 200, response.text
    rows = _rows(response.text)
    label = rows[0].index("label")
    (supplier,) = [row for row in rows[1:] if row[:2] == ["supplier", hostile.cast.supplier.id]]
    assert supplier[label] == "'" + NAMES["supplier"]
    for row in rows[1:]:
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row


# --- jsonl -----------------------------------------------------------------------------


def _split_everywhere(text: str) -> list[str]:
    """The lines a reader gets that breaks lines at every Unicode line boundary."""
    lines = text.splitlines()
    assert not any(c in line for line in lines for c in LINE_BOUNDARIES)
    return lines


def test_jsonl_keeps_one_record_per_line_and_verifies(hostile: Hostile, tmp_path: Path) -> None:
    text = _export(hostile, "jsonl")
    lines = _split_everywhere(text)
    assert lines == text.split("\n")[:-1]  # the same lines as a reader splitting on LF
    records = [json.loads(line) for line in lines]
    (hostile_line,) = [r for r in records if r.get("id") == hostile.memo_txn]
    assert hostile_line["memo"] == MEMO
    assert hostile_line["metadata"] == {"note": MEMO}
    result = verify_lines(iter(lines))
    assert result.ok, result.error

    path = tmp_path / "journal.jsonl"
    path.write_text(text, encoding="utf-8")
    ok = subprocess.run(  # noqa: S603 - our own console script
        [str(CLI), "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK ")


def test_the_escaping_leaves_the_chained_bytes_and_hashes_unchanged(hostile: Hostile) -> None:
    """The chain is over the canonical bytes, which write U+2028 etc. as themselves;
    the line's escapes parse back to the same string, so the same hash."""
    text = _export(hostile, "jsonl")
    (line,) = [json.loads(x) for x in text.split("\n") if hostile.memo_txn in x]
    canonical = canonical_json(chained_record(line))
    assert "\u2028\u2029\x85".encode() in canonical
    assert chain_hash(line["prev_hash"], canonical) == line["hash"]
    with session_factory(hostile.client)() as session:
        sealed = session.execute(
            select(Seal.hash).where(Seal.transaction_id == hostile.memo_txn)
        ).scalar_one()
    assert sealed == line["hash"]


def test_an_export_with_raw_line_separators_still_verifies(
    hostile: Hostile, tmp_path: Path
) -> None:
    """Files written before the escaping carry U+2028 etc. raw; the offline verifier
    reads lines at LF only, so they still verify."""
    text = _export(hostile, "jsonl")
    raw = text.replace("\\u2028", "\u2028").replace("\\u2029", "\u2029").replace("\\u0085", "\x85")
    assert "\u2028" in raw
    path = tmp_path / "old.jsonl"
    path.write_text(raw, encoding="utf-8")
    ok = subprocess.run(  # noqa: S603 - our own console script
        [str(CLI), "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


# --- 360Giving -------------------------------------------------------------------------


def test_giving360_is_valid_json_with_one_grant_per_line(hostile: Hostile) -> None:
    text = _export(hostile, "360giving")
    lines = _split_everywhere(text)
    assert lines == text.split("\n")[:-1]
    package: dict[str, Any] = json.loads(text)
    (grant,) = package["grants"]
    assert grant["recipientOrganization"][0]["name"] == NAMES["group"]
    assert grant["fundingOrganization"][0]["name"] == NAMES["funder"]
    assert grant["grantProgramme"][0]["title"] == NAMES["programme"]
    package.pop("voucherledger_manifest")
    errors = [e.message for e in giving360_validator().iter_errors(package)]
    assert not errors, errors
