"""The faster export writes what the export wrote before, byte for byte.

- Each transaction line is the sealer's record of the stored transaction (built from
  ORM objects, ``sealer.record_of``), however the export now reads it (one query with
  the postings aggregated as JSON, a thread reading ahead); redacted, block and
  manifest lines are as before; the file is what ``json.dumps`` wrote line by line.
- The pieces: metadata and legs parsed by orjson only where that is ``json.loads``'s
  value (:func:`_json_value`); ``created_at`` by ``isoformat`` only where that is
  :func:`format_timestamp`'s text; the read-ahead thread stops when the stream is
  closed early and hands its errors on."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, open_chart
from tests.ledger.test_canonical_orjson import old_jsonl
from tests.ledger.test_verify_parallel import lines as json_texts
from tests.ledger.test_verify_parallel import typed
from voucherledger import ledger
from voucherledger.core.db import transaction
from voucherledger.ledger.canonical import format_timestamp, json_plain, parse_timestamp
from voucherledger.ledger.export import (
    Scope,
    _json_value,
    _legs_value,
    _read_ahead,
    _utc_text,
    chain_jsonl,
    chain_lines,
    chained_record,
    jsonl_bytes,
)
from voucherledger.ledger.models import JournalTransaction, Seal
from voucherledger.ledger.sealer import postings_by_transaction, record_of, seal_pending
from voucherledger.ledger.verify import verify_lines

METADATA: list[dict[str, Any]] = [
    {"note": 'Réf. 😀 \u2028\u2029\x85 \x1f\x7f "q" \\', "n": 2**53 - 1, "neg": -(2**53 - 1)},
    {"nested": {"b": [1, {"c": None, "a": True}], "a": ""}, "\U0010ffff": "last"},
    {},
    {"list": [[], {}, [[["deep"]]]], "zero": 0, "false": False},
]


@pytest.fixture
def journal(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Transactions in two programmes and none, three legs some of them, odd metadata."""
    accounts = ["programme:p1:unissued", "programme:p2:unissued", "supplier:s1:payable"]
    open_chart(session_factory, accounts)
    programmes = ["prg_1", "prg_2", None]
    for index in range(14):
        legs = [
            ledger.Leg("funder:f1", -(index + 3), "EUR"),
            ledger.Leg(accounts[index % 3], index + 1, "EUR"),
            ledger.Leg(accounts[(index + 1) % 3], 2, "EUR"),
        ]
        if index % 2:
            legs = [ledger.Leg("funder:f1", -(index + 1), "EUR"), legs[1]]
        with transaction(session_factory) as session:
            ledger.post(
                session,
                kind="deposit",
                legs=legs,
                programme_id=programmes[index % 3],
                memo=None if index % 4 else f"memo\u2028{index}",
                metadata=METADATA[index % len(METADATA)],
                idempotency_key=f"key-{index}" if index % 5 else None,
            )
    seal_pending(session_factory, SIGNER, batch_size=4)
    return session_factory


def reference(factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Every chained record, in order, as the sealer builds it from ORM objects."""
    with factory() as session:
        rows = session.execute(
            select(Seal.sequence, JournalTransaction)
            .join(JournalTransaction, JournalTransaction.id == Seal.transaction_id)
            .order_by(Seal.sequence)
        ).all()
        legs = postings_by_transaction(session, [txn.id for _, txn in rows])
        return [record_of(txn, sequence, legs[txn.id]) for sequence, txn in rows]


SINCE = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "scope",
    [
        Scope(None),
        Scope(frozenset({"prg_1"})),
        Scope(frozenset({"prg_2", "prg_1"})),
        Scope(frozenset()),
        Scope(frozenset({"prg_1"}), since=SINCE, until=datetime(2100, 1, 1, tzinfo=UTC)),
        Scope(None, until=SINCE),
    ],
)
def test_lines_are_the_sealed_records(journal: sessionmaker[Session], scope: Scope) -> None:
    records = reference(journal)
    lines = list(chain_lines(journal, scope, SIGNER, chunk=3))
    shown = [line for line in lines if line["type"] == "transaction"]
    redacted = [line for line in lines if line["type"] == "redacted"]
    assert len(shown) + len(redacted) == len(records) == 14
    by_sequence = {record["sequence"]: record for record in records}
    for line in shown:
        assert chained_record(line) == by_sequence[line["sequence"]]
        assert typed(chained_record(line)) == typed(by_sequence[line["sequence"]])
    expected = {
        record["sequence"]
        for record in records
        if scope.covers(record["programme_id"], parse_timestamp(record["created_at"]))
    }
    assert {line["sequence"] for line in shown} == expected
    data = b"".join(jsonl_bytes(iter(lines), flush_at=500))
    assert data == old_jsonl(lines)
    streamed = b"".join(chain_jsonl(journal, scope, SIGNER, chunk=3, flush_at=500))
    stamp = slice(data.rindex(b"\n", 0, -1) + 1, None)  # the manifest: exported_at differs
    assert streamed[: stamp.start] == data[: stamp.start]
    assert verify_lines(data.decode().splitlines(keepends=True)).ok


def test_chunks_do_not_change_the_lines(journal: sessionmaker[Session]) -> None:
    def without_stamp(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in line.items() if k not in ("exported_at", "signature")}
            for line in lines
        ]

    one = without_stamp(list(chain_lines(journal, Scope(None), SIGNER, chunk=1)))
    many = without_stamp(list(chain_lines(journal, Scope(None), SIGNER)))
    assert one == many


def test_closing_the_stream_early_stops_the_reader(journal: sessionmaker[Session]) -> None:
    lines = chain_lines(journal, Scope(None), SIGNER, chunk=2)
    assert next(lines)["type"] == "transaction"
    lines.close()
    assert not [t for t in threading.enumerate() if t.name == "export-read-ahead"]


def test_a_reading_error_reaches_the_stream() -> None:
    calls: list[int] = []

    def read(after: int) -> list[tuple[Any, ...]]:
        calls.append(after)
        if after:
            raise RuntimeError("the database went away")
        return [(5,)]

    chunks = _read_ahead(read)
    assert next(chunks) == [(5,)]
    with pytest.raises(RuntimeError, match="went away"):
        next(chunks)
    assert calls == [0, 5]


@given(json_texts())
def test_json_value_is_json_loads(text: str) -> None:
    def outcome(parse: Any) -> Any:
        try:
            return ("value", typed(parse(text)))
        except (ValueError, RecursionError) as exc:
            return ("error", type(exc).__name__)

    assert outcome(lambda t: _json_value(t)[0]) == outcome(json.loads)
    value, plain = _json_value(text) if outcome(json.loads)[0] == "value" else (None, False)
    if plain:
        assert json_plain(value)


@given(st.datetimes())
def test_utc_text_is_format_timestamp(moment: datetime) -> None:
    """Of a naive UTC timestamp, as the column holds it (years before 1000 too)."""
    assert _utc_text(moment) == format_timestamp(moment.replace(tzinfo=UTC))


@given(st.text(max_size=30))
def test_legs_value_is_json_loads_too(text: str) -> None:
    def outcome(parse: Any) -> Any:
        try:
            return ("value", typed(parse(text)))
        except (ValueError, RecursionError) as exc:
            return ("error", type(exc).__name__)

    assert outcome(lambda t: _legs_value(t)[0]) == outcome(json.loads)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ('[["a",1,"EUR"],["b",-1,"EUR"]]', True),
        ('[["a",1.5,"EUR"]]', False),
        ('[["a",18446744073709551616,"EUR"]]', False),
        ('[["a",9223372036854775807,"EUR"]]', True),
        ('[["a",true,"EUR"]]', True),  # not the legs' shape: json_plain decides
        ('[["a",1]]', True),
        ("[]", True),
    ],
)
def test_legs_plain(text: str, plain: bool) -> None:
    value, is_plain = _legs_value(text)
    assert is_plain is plain is json_plain(value)
    assert typed(value) == typed(json.loads(text))
