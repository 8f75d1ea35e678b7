"""A 1,000,000-transaction journal: jsonl export over HTTP, offline verify, balance reads.

For each backend (PostgreSQL by default; ``--backends sqlite,postgresql`` adds SQLite)
two fresh databases are built by the migrations (``vl_bench_export_<pid>_<n>`` on
PostgreSQL, dropped afterwards; a temporary file on SQLite) and filled by a **fast
fixture loader** — not through HTTP, not through ``ledger.post``:

- the parties through the services the API uses: a funder and an auditor (each with
  an API key, ``accounts.service.create_key``), ``--suppliers`` suppliers, and one
  programme of the funder (``programmes.service.create``, 30 % women-led reserve) with
  the auditor named, which opens its funder, unissued and reserve ledger accounts;
- then the journal, generated in this process by a small simulation of the programme
  so that every account stays in bounds: deposits (3 postings: funder, unissued,
  reserve), issues (2, to one of ``--vouchers`` voucher accounts, topped up when
  drained), holds, captures (from a hold or directly), voids, refunds and settlements
  (2 postings each), every one balanced and marked with the programme's id;
- sealed exactly as the sealer seals: each record built by ``canonical.
  transaction_object``, chained with ``canonical_json`` and ``chain_hash``, 5,000
  sequences a block, each block signed over ``canonical.block_object``;
- written with ``COPY ... FROM STDIN`` (psycopg ``cursor.copy``, three connections so
  the transactions, postings and seals stream side by side while Python generates),
  ``session_replication_role = replica`` on those connections so the deferred
  balance trigger and the foreign keys do not fire per row (the loader checks balance
  per transaction itself, and after loading the bench checks every account's balance
  against its postings and the trial balance against zero); SQLite gets
  ``executemany`` with ``synchronous=OFF``;
- the ledger account rows last, with balances equal to the sums of their postings.

The small database (``--small``, 1,000 transactions) is only for balance reads. On
the large one (``--transactions``, 1,000,000): ``verify_database`` in process (the
loader's seals, blocks and signatures recomputed from the database), then a
``uvicorn voucherledger.asgi:app`` **subprocess** (one worker, background sealer on,
``VOUCHERLEDGER_LOG_LEVEL=WARNING``), as in ``bench/issuance.py``:

- **balance reads**: ``--reads`` (500) ``GET /v1/ledger/accounts/{account}/balance``
  (current balance) as the auditor, one keep-alive connection, after 50 warm-up
  reads, over three accounts in turn (the programme's unissued and reserve accounts
  and a supplier's payable); p50 and p99 of the client-side latency, on both databases;
- **export**: ``GET /v1/audit/checkpoint`` then one ``GET /v1/audit/export?format=jsonl``
  as the auditor, streamed to a file; the clock runs from the request to the last
  byte. Server memory from ``/proc/<pid>/status``: VmRSS before the request, VmHWM
  (peak RSS, reset just before with ``/proc/<pid>/clear_refs``) after it;
- **verify**: ``voucherledger verify FILE --checkpoint CP --public-key KEY`` as a
  subprocess, reaped with ``os.wait4`` for its peak RSS (``ru_maxrss``: the largest of
  the command and the worker processes it forks for a large file, each counted whole,
  shared pages included) and its CPU (user + system, the workers' included); the wall
  time includes the command's start-up (imports, about 0.3 s).

    .venv/bin/python bench/export.py                                 # 1,000,000, PostgreSQL
    .venv/bin/python bench/export.py --transactions 100000           # quick
    .venv/bin/python bench/export.py --backends sqlite,postgresql --transactions 200000
    .venv/bin/python bench/export.py --transactions 200000 \\
        --profile-export /tmp/export.txt --profile-verify /tmp/verify.txt   # py-spy
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from serverproc import (
    cpu_seconds,
    free_port,
    proc_status,
    profile_format,
    py_spy,
    reset_peak,
    start_server,
    stop_server,
)
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
# --src DIR serves (and verifies with) another copy of the package, to compare a
# variant; the loader always uses this checkout's.
SRC = Path(sys.argv[sys.argv.index("--src") + 1]) if "--src" in sys.argv else ROOT / "src"
sys.path.insert(0, str(ROOT / "src"))

from voucherledger import chart, ledger  # noqa: E402
from voucherledger.accounts import service as accounts  # noqa: E402
from voucherledger.accounts.schemas import AccountCreate  # noqa: E402
from voucherledger.core.auth import Principal  # noqa: E402
from voucherledger.core.db import (  # noqa: E402
    create_db_engine,
    create_session_factory,
    transaction,
)
from voucherledger.core.ids import new_id  # noqa: E402
from voucherledger.ledger.canonical import (  # noqa: E402
    GENESIS_HASH,
    block_object,
    canonical_json,
    chain_hash,
    transaction_object,
)
from voucherledger.ledger.models import LedgerAccount, Posting  # noqa: E402
from voucherledger.ledger.signing import Signer  # noqa: E402
from voucherledger.ledger.verify import verify_database  # noqa: E402
from voucherledger.ops.migrate import upgrade  # noqa: E402
from voucherledger.programmes import service as programmes  # noqa: E402
from voucherledger.programmes.schemas import ProgrammeCreate  # noqa: E402

SIGNING_KEY = "42" * 32
SIGNER = Signer.from_seed(bytes.fromhex(SIGNING_KEY))
CURRENCY = "EUR"
CATEGORIES = ["leadership", "fundraising", "governance"]
BLOCK_SIZE = 5000
CHUNK = 10_000  # transactions generated between two writes


# --- the journal: a small simulation of one programme -----------------------------------


@dataclass
class Parties:
    funder_id: str
    funder_key: str
    auditor_id: str
    auditor_key: str
    supplier_ids: list[str]
    programme_id: str


@dataclass
class Entry:
    kind: str
    actor: str | None
    idempotency_key: str | None
    memo: str | None
    metadata: dict[str, Any]
    legs: list[tuple[str, int]]


@dataclass
class Simulation:
    """The state the journal must respect: no non-negative account ever goes below 0."""

    parties: Parties
    n_vouchers: int
    rng: random.Random
    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    vouchers: list[str] = field(default_factory=list)
    open_holds: list[tuple[str, str, str, int]] = field(default_factory=list)
    captured: deque[tuple[str, str, str, int]] = field(default_factory=lambda: deque(maxlen=2000))
    deposits: int = 0
    settlements: int = 0

    def __post_init__(self) -> None:
        prg = self.parties.programme_id
        self.funder = chart.funder(self.parties.funder_id, CURRENCY)
        self.unissued = chart.unissued(prg)
        self.reserve = chart.women_led_reserve(prg)
        self.payables = [chart.payable(s, prg) for s in self.parties.supplier_ids]
        self.paid = [chart.paid(s, CURRENCY) for s in self.parties.supplier_ids]

    def _entry(
        self,
        kind: str,
        actor: str | None,
        key: str | None,
        legs: list[tuple[str, int]],
        memo: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Entry:
        for account, amount in legs:
            self.balances[account] += amount
        if sum(amount for _account, amount in legs) != 0:
            raise AssertionError(f"unbalanced {kind}: {legs}")
        return Entry(kind, actor, key, memo, metadata or {}, legs)

    def deposit(self) -> Entry:
        self.deposits += 1
        amount = 50_000_000  # 500,000.00 EUR
        reserve = amount * 30 // 100
        return self._entry(
            "deposit",
            self.parties.funder_id,
            f"http:{self.parties.funder_id}:deposit-{self.deposits}",
            [(self.funder, -amount), (self.unissued, amount - reserve), (self.reserve, reserve)],
            memo=f"bank reference 2026/{self.deposits:06d}",
            metadata={"deposit_id": new_id("dep")},
        )

    def issue(self, voucher_id: str | None = None) -> Entry:
        face = self.rng.choice((20_000, 50_000, 100_000, 200_000))
        if voucher_id is None:
            voucher_id = new_id("vch")
            self.vouchers.append(voucher_id)
        women_led = ord(voucher_id[-1]) % 3 == 0
        source = self.reserve if women_led and self.balances[self.reserve] >= face else None
        if source is None:
            source = self.unissued
        if self.balances[source] < face:
            raise NeedDeposit
        return self._entry(
            "issue",
            self.parties.funder_id,
            None,
            [(source, -face), (chart.voucher(voucher_id), face)],
            metadata={"voucher_id": voucher_id, "women_led": women_led},
        )

    def next(self) -> Entry:
        try:
            return self._next()
        except NeedDeposit:
            return self.deposit()

    def _next(self) -> Entry:
        rng = self.rng
        if len(self.vouchers) < self.n_vouchers and (not self.vouchers or rng.random() < 0.2):
            return self.issue()
        roll = rng.random()
        supplier = rng.randrange(len(self.payables))
        supplier_id = self.parties.supplier_ids[supplier]
        if roll < 0.40 or not self.open_holds:  # hold
            voucher_id = rng.choice(self.vouchers)
            amount = rng.randint(100, 15_000)
            if self.balances[chart.voucher(voucher_id)] < amount:
                return self.issue(voucher_id)  # a top-up of a drained voucher
            claim = new_id("red")
            self.open_holds.append((claim, voucher_id, supplier_id, amount))
            return self._entry(
                "hold",
                supplier_id,
                f"claim:{claim}:hold",
                [(chart.voucher(voucher_id), -amount), (chart.held(voucher_id), amount)],
                metadata={"claim_id": claim, "category": rng.choice(CATEGORIES)},
            )
        if roll < 0.72:  # capture a held claim
            index = rng.randrange(len(self.open_holds))
            claim, voucher_id, supplier_id, amount = self.open_holds[index]
            self.open_holds[index] = self.open_holds[-1]
            self.open_holds.pop()
            self.captured.append((claim, voucher_id, supplier_id, amount))
            payable = chart.payable(supplier_id, self.parties.programme_id)
            return self._entry(
                "capture",
                supplier_id,
                f"claim:{claim}:capture",
                [(chart.held(voucher_id), -amount), (payable, amount)],
                metadata={"claim_id": claim},
            )
        if roll < 0.80:  # void: rejected, cancelled or timed out
            claim, voucher_id, supplier_id, amount = self.open_holds.pop()
            return self._entry(
                "void",
                supplier_id,
                f"claim:{claim}:void",
                [(chart.held(voucher_id), -amount), (chart.voucher(voucher_id), amount)],
                memo="rejected by the group",
                metadata={"claim_id": claim},
            )
        if roll < 0.90:  # a direct capture (no group confirmation)
            voucher_id = rng.choice(self.vouchers)
            amount = rng.randint(100, 15_000)
            if self.balances[chart.voucher(voucher_id)] < amount:
                return self.issue(voucher_id)
            claim = new_id("red")
            self.captured.append((claim, voucher_id, supplier_id, amount))
            return self._entry(
                "capture",
                supplier_id,
                f"claim:{claim}:capture",
                [(chart.voucher(voucher_id), -amount), (self.payables[supplier], amount)],
                metadata={"claim_id": claim, "category": rng.choice(CATEGORIES)},
            )
        if roll < 0.95 and self.captured:  # refund of a captured, unsettled claim
            claim, voucher_id, supplier_id, amount = self.captured.pop()
            payable = chart.payable(supplier_id, self.parties.programme_id)
            amount = min(amount, self.balances[payable])
            if amount > 0:
                return self._entry(
                    "refund",
                    supplier_id,
                    f"claim:{claim}:refund",
                    [(payable, -amount), (chart.voucher(voucher_id), amount)],
                    metadata={"claim_id": claim},
                )
        owed = self.balances[self.payables[supplier]]
        if owed <= 0:
            return self.issue() if len(self.vouchers) < self.n_vouchers else self.deposit()
        self.settlements += 1
        settlement = new_id("stl")
        return self._entry(
            "settle",
            None,
            f"settlement:{settlement}",
            [(self.payables[supplier], -owed), (self.paid[supplier], owed)],
            memo=f"bank transfer {self.settlements}",
            metadata={"settlement_id": settlement},
        )


class NeedDeposit(Exception):
    pass


# --- writing: COPY on PostgreSQL, executemany on SQLite ----------------------------------


TXN_COLUMNS = "id, kind, programme_id, actor, idempotency_key, created_at, memo, metadata"
POSTING_COLUMNS = "transaction_id, account_code, amount, currency, created_at"
SEAL_COLUMNS = "sequence, transaction_id, hash, block_height"
BLOCK_COLUMNS = (
    "height, first_sequence, last_sequence, prev_hash, hash, sealed_at, signature, public_key"
)
ACCOUNT_COLUMNS = "code, currency, may_go_negative, balance, created_at"

Row = tuple[Any, ...]


def copy_text(rows: list[Row]) -> bytes:
    """Rows in COPY's text format."""
    out = []
    for row in rows:
        cells = []
        for value in row:
            if value is None:
                cells.append("\\N")
            elif isinstance(value, bool):
                cells.append("t" if value else "f")
            else:
                cell = str(value)
                if "\\" in cell or "\t" in cell or "\n" in cell or "\r" in cell:
                    cell = (
                        cell.replace("\\", "\\\\")
                        .replace("\t", "\\t")
                        .replace("\n", "\\n")
                        .replace("\r", "\\r")
                    )
                cells.append(cell)
        out.append("\t".join(cells))
    out.append("")
    return "\n".join(out).encode()


# The signing key history's first entry, as the first seal records it (ledger/keys.py):
# without it the server refuses to seal (a chain with blocks but no history).
SIGNING_KEY_INSERT = (
    "INSERT INTO ledger_signing_keys (position, public_key, first_height, recorded_at) "
    "VALUES (?, ?, ?, ?)"
)


def signing_key_row() -> tuple[int, str, int, str]:
    return (1, SIGNER.public_key_hex, 1, stamp_text(datetime.now(UTC)))


class Writer:
    def journal(self, txns: list[Row], postings: list[Row], seals: list[Row]) -> None:
        raise NotImplementedError

    def finish(
        self, blocks: list[Row], accounts: list[Row], updates: list[tuple[str, int]]
    ) -> None:
        raise NotImplementedError


class PostgresWriter(Writer):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.stack = contextlib.ExitStack()
        self.conns = []
        self.copies = []
        for table, columns in (
            ("ledger_transactions", TXN_COLUMNS),
            ("ledger_postings", POSTING_COLUMNS),
            ("ledger_seals", SEAL_COLUMNS),
        ):
            conn = self.stack.enter_context(psycopg.connect(dsn))
            conn.execute("SET session_replication_role = replica")
            self.conns.append(conn)
            cursor = conn.cursor()
            self.copies.append(
                self.stack.enter_context(cursor.copy(f"COPY {table} ({columns}) FROM STDIN"))
            )

    def journal(self, txns: list[Row], postings: list[Row], seals: list[Row]) -> None:
        for copy, rows in zip(self.copies, (txns, postings, seals), strict=True):
            copy.write(copy_text(rows))

    def finish(
        self, blocks: list[Row], accounts: list[Row], updates: list[tuple[str, int]]
    ) -> None:
        self.stack.close()  # ends the COPYs (each connection commits on a clean exit)
        with psycopg.connect(self.dsn) as admin:
            admin.execute("SET session_replication_role = replica")
            cursor = admin.cursor()
            with cursor.copy(f"COPY ledger_seal_blocks ({BLOCK_COLUMNS}) FROM STDIN") as copy:
                copy.write(copy_text(blocks))
            with cursor.copy(f"COPY ledger_accounts ({ACCOUNT_COLUMNS}) FROM STDIN") as copy:
                copy.write(copy_text(accounts))
            cursor.executemany(
                "UPDATE ledger_accounts SET balance = %s WHERE code = %s",
                [(balance, code) for code, balance in updates],
            )
            cursor.execute(SIGNING_KEY_INSERT.replace("?", "%s"), signing_key_row())
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            admin.execute(
                "VACUUM ANALYZE ledger_transactions, ledger_postings, ledger_seals, "
                "ledger_seal_blocks, ledger_accounts"
            )


class SqliteWriter(Writer):
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        self.conn.execute("BEGIN")

    @staticmethod
    def _insert(table: str, columns: str) -> str:
        marks = ", ".join("?" * len(columns.split(",")))
        return f"INSERT INTO {table} ({columns}) VALUES ({marks})"

    def journal(self, txns: list[Row], postings: list[Row], seals: list[Row]) -> None:
        self.conn.executemany(self._insert("ledger_transactions", TXN_COLUMNS), txns)
        self.conn.executemany(self._insert("ledger_postings", POSTING_COLUMNS), postings)
        self.conn.executemany(self._insert("ledger_seals", SEAL_COLUMNS), seals)

    def finish(
        self, blocks: list[Row], accounts: list[Row], updates: list[tuple[str, int]]
    ) -> None:
        self.conn.executemany(self._insert("ledger_seal_blocks", BLOCK_COLUMNS), blocks)
        self.conn.executemany(self._insert("ledger_accounts", ACCOUNT_COLUMNS), accounts)
        self.conn.executemany(
            "UPDATE ledger_accounts SET balance = ? WHERE code = ?",
            [(balance, code) for code, balance in updates],
        )
        self.conn.execute(SIGNING_KEY_INSERT, signing_key_row())
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        self.conn.close()


# --- the loader ----------------------------------------------------------------------------


def make_parties(url: str, suppliers: int) -> Parties:
    """The parties and the programme, through the services the API uses."""
    engine = create_db_engine(url, pool_size=1)
    try:
        with transaction(create_session_factory(engine)) as session:
            funder = accounts.create(session, AccountCreate(kind="funder", name="Bench funder"))
            auditor = accounts.create(session, AccountCreate(kind="auditor", name="Bench auditor"))
            supplier_ids = [
                accounts.create(
                    session,
                    AccountCreate.model_validate(
                        {
                            "kind": "supplier",
                            "name": f"Bench supplier {i}",
                            "supplier": {"service_categories": CATEGORIES},
                        }
                    ),
                ).id
                for i in range(suppliers)
            ]
            funder_key = str(accounts.create_key(session, funder.id).key)
            auditor_key = str(accounts.create_key(session, auditor.id).key)
            programme = programmes.create(
                session,
                Principal(account_id=funder.id, kind="funder", key_id="bench"),
                ProgrammeCreate.model_validate(
                    {
                        "name": "Bench export programme",
                        "currency": CURRENCY,
                        "service_categories": CATEGORIES,
                        "rules": {"women_led_reserve_pct": 30},
                        "auditor_ids": [auditor.id],
                    }
                ),
            )
            return Parties(
                funder.id, funder_key, auditor.id, auditor_key, supplier_ids, programme.id
            )
    finally:
        engine.dispose()


def stamp_text(moment: datetime) -> str:
    """What a UTCDateTime column holds (UTC, no zone), as COPY and SQLite take it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def load(writer: Writer, parties: Parties, n: int, n_vouchers: int, seed: int) -> str:
    """Write ``n`` sealed transactions, their blocks and the accounts; return the head."""
    rng = random.Random(seed)
    sim = Simulation(parties, n_vouchers, rng)
    prg = parties.programme_id
    # Far enough back that the whole journal is in the past (at most 7 ms apart).
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(microseconds=7000 * n + 60e6)
    start = moment
    head = GENESIS_HASH
    block_first = 1
    block_prev = GENESIS_HASH
    blocks: list[Row] = []
    txns: list[Row] = []
    postings: list[Row] = []
    seals: list[Row] = []
    for sequence in range(1, n + 1):
        entry = sim.next()
        moment += timedelta(microseconds=rng.randrange(500, 7000))
        stamp = stamp_text(moment)
        txn_id = new_id("txn")
        record = transaction_object(
            sequence=sequence,
            id=txn_id,
            kind=entry.kind,
            programme_id=prg,
            actor=entry.actor,
            idempotency_key=entry.idempotency_key,
            created_at=f"{stamp[:10]}T{stamp[11:]}Z",
            memo=entry.memo,
            metadata=entry.metadata,
            postings=[
                {"account": account, "amount": amount, "currency": CURRENCY}
                for account, amount in entry.legs
            ],
        )
        head = chain_hash(head, canonical_json(record))
        height = (sequence - 1) // BLOCK_SIZE + 1
        txns.append(
            (
                txn_id,
                entry.kind,
                prg,
                entry.actor,
                entry.idempotency_key,
                stamp,
                entry.memo,
                json.dumps(entry.metadata, sort_keys=True, separators=(",", ":")),
            )
        )
        for account, amount in entry.legs:
            postings.append((txn_id, account, amount, CURRENCY, stamp))
        seals.append((sequence, txn_id, head, height))
        if sequence % BLOCK_SIZE == 0 or sequence == n:
            sealed_at = moment + timedelta(milliseconds=1)
            block = block_object(
                height=height,
                first_sequence=block_first,
                last_sequence=sequence,
                prev_hash=block_prev,
                hash=head,
                sealed_at=sealed_at,
            )
            blocks.append(
                (
                    height,
                    block_first,
                    sequence,
                    block_prev,
                    head,
                    stamp_text(sealed_at),
                    SIGNER.sign(canonical_json(block)),
                    SIGNER.public_key_hex,
                )
            )
            block_first, block_prev = sequence + 1, head
        if len(txns) >= CHUNK:
            writer.journal(txns, postings, seals)
            txns, postings, seals = [], [], []
    if txns:
        writer.journal(txns, postings, seals)
    opened = {sim.funder, sim.unissued, sim.reserve}
    created = stamp_text(start)
    new_accounts: list[Row] = []
    for voucher_id in sim.vouchers:
        for code in (chart.voucher(voucher_id), chart.held(voucher_id)):
            new_accounts.append((code, CURRENCY, False, sim.balances[code], created))
    for code in sim.payables + sim.paid:
        new_accounts.append((code, CURRENCY, False, sim.balances[code], created))
    updates = [(code, sim.balances[code]) for code in sorted(opened)]
    writer.finish(blocks, new_accounts, updates)
    return head


# --- databases and the server ----------------------------------------------------------


def pg_dsn(admin_url: str, database: str | None = None) -> str:
    url = make_url(admin_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


@dataclass
class Database:
    backend: str
    url: str
    drop: Callable[[], None]
    writer: Callable[[], Writer]


def fresh_database(backend: str, admin_url: str, n: int, tmp: Path) -> Database:
    if backend == "sqlite":
        path = tmp / f"export_{n}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        return Database(backend, url, lambda: None, lambda: SqliteWriter(path))
    name = f"vl_bench_export_{os.getpid()}_{n}"
    with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_dsn(admin_url, name)
    upgrade(url)

    def drop() -> None:
        with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return Database(backend, url, drop, lambda: PostgresWriter(url))


def check_consistency(url: str, n: int) -> str:
    """Every account's balance equals its postings' sum; the trial balance is zero; the
    chain, blocks and signatures recompute from the database."""
    engine = create_db_engine(url, pool_size=1)
    try:
        with create_session_factory(engine)() as session:
            sums = (
                select(Posting.account_code, func.sum(Posting.amount).label("total"))
                .group_by(Posting.account_code)
                .subquery()
            )
            wrong = session.execute(
                select(func.count())
                .select_from(LedgerAccount)
                .outerjoin(sums, sums.c.account_code == LedgerAccount.code)
                .where(LedgerAccount.balance != func.coalesce(sums.c.total, 0))
            ).scalar_one()
            unknown = session.execute(
                select(func.count())
                .select_from(sums)
                .outerjoin(LedgerAccount, LedgerAccount.code == sums.c.account_code)
                .where(LedgerAccount.code.is_(None))
            ).scalar_one()
            totals = ledger.trial_balance(session).totals
            if session.get_bind().dialect.name == "postgresql":
                unbalanced = session.execute(
                    text(
                        "SELECT count(*) FROM (SELECT transaction_id FROM ledger_postings "
                        "GROUP BY transaction_id, currency HAVING sum(amount) <> 0) AS u"
                    )
                ).scalar_one()
            else:
                unbalanced = 0  # checked per transaction while loading
            started = time.perf_counter()
            verified = verify_database(session, public_key=SIGNER.public_key_hex)
            seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    problems = []
    if wrong or unknown:
        problems.append(f"{wrong} balances differ from their postings, {unknown} unknown accounts")
    if unbalanced:
        problems.append(f"{unbalanced} unbalanced transactions")
    if totals != {CURRENCY: 0}:
        problems.append(f"trial balance {totals}")
    if not verified.ok or verified.count != n:
        problems.append(f"verify_database: {verified.error} ({verified.count} sealed)")
    if problems:
        raise RuntimeError("; ".join(problems))
    return f"consistent; verify_database OK {verified.count:,} in {seconds:.1f} s"


# --- the measurements ---------------------------------------------------------------------


@dataclass
class Reads:
    p50_ms: float
    p99_ms: float


@dataclass
class Result:
    backend: str
    transactions: int
    load_seconds: float
    check: str = ""
    export_seconds: float = 0.0
    export_bytes: int = 0
    export_cpu: float = 0.0
    rss_before_kb: int = 0
    hwm_after_kb: int = 0
    verify_seconds: float = 0.0
    verify_maxrss_kb: int = 0
    # user + system CPU of verify and the worker processes it waited for (wait4)
    verify_cpu: float = 0.0
    verify_output: str = ""
    reads: dict[int, Reads] = field(default_factory=dict)


def balance_reads(http: httpx.Client, parties: Parties, reads: int) -> Reads:
    headers = {"Authorization": f"Bearer {parties.auditor_key}"}
    prg = parties.programme_id
    accounts_ = [
        chart.unissued(prg),
        chart.women_led_reserve(prg),
        chart.payable(parties.supplier_ids[0], prg),
    ]
    timings = []
    for i in range(50 + reads):
        started = time.perf_counter()
        response = http.get(f"/v1/ledger/accounts/{accounts_[i % 3]}/balance", headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"balance read: {response.status_code} {response.text[:300]}")
        if i >= 50:
            timings.append(elapsed * 1000)
    timings.sort()
    return Reads(
        statistics.median(timings), timings[min(len(timings) - 1, len(timings) * 99 // 100)]
    )


def export_and_verify(
    http: httpx.Client,
    server: subprocess.Popen[bytes],
    parties: Parties,
    result: Result,
    tmp: Path,
    args: argparse.Namespace,
) -> None:
    headers = {"Authorization": f"Bearer {parties.auditor_key}"}
    checkpoint = http.get("/v1/audit/checkpoint", headers=headers)
    if checkpoint.status_code != 200:
        raise RuntimeError(f"checkpoint: {checkpoint.status_code} {checkpoint.text[:300]}")
    checkpoint_file = tmp / "checkpoint.json"
    checkpoint_file.write_bytes(checkpoint.content)
    export_file = tmp / f"export_{result.backend}.jsonl"
    profiler: subprocess.Popen[bytes] | None = None
    if args.profile_export:
        profiler = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                py_spy(),
                "record",
                "--pid",
                str(server.pid),
                "--output",
                args.profile_export.replace("{backend}", result.backend),
                "--format",
                profile_format(args.profile_export),
                "--rate",
                "100",
            ]
        )
        time.sleep(1.0)
    time.sleep(0.5)  # let the server settle after the checkpoint
    reset_peak(server.pid)
    result.rss_before_kb = proc_status(server.pid)["VmRSS"]
    cpu_before = cpu_seconds(server.pid)
    started = time.perf_counter()
    size = 0
    with (
        export_file.open("wb") as out,
        http.stream("GET", "/v1/audit/export", params={"format": "jsonl"}, headers=headers) as r,
    ):
        if r.status_code != 200:
            raise RuntimeError(f"export: {r.status_code} {r.read()[:300]!r}")
        for chunk in r.iter_raw(1 << 20):
            out.write(chunk)
            size += len(chunk)
    result.export_seconds = time.perf_counter() - started
    result.export_cpu = cpu_seconds(server.pid) - cpu_before
    result.hwm_after_kb = proc_status(server.pid)["VmHWM"]
    result.export_bytes = size
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=120)
    public_key = SIGNER.public_key_hex
    command = [
        str(Path(sys.executable).parent / "voucherledger"),
        "verify",
        str(export_file),
        "--checkpoint",
        str(checkpoint_file),
        "--public-key",
        public_key,
    ]
    env = {**os.environ, "PYTHONPATH": str(SRC), "VOUCHERLEDGER_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)  # noqa: S603
    assert proc.stdout is not None  # noqa: S101 - for mypy
    output = proc.stdout.read().decode().strip()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result.verify_seconds = time.perf_counter() - started
    result.verify_maxrss_kb = usage.ru_maxrss
    result.verify_cpu = usage.ru_utime + usage.ru_stime
    result.verify_output = output
    if proc.returncode != 0 or not output.startswith(f"OK {result.transactions} "):
        raise RuntimeError(f"verify failed ({proc.returncode}): {output}")
    if args.profile_verify:
        subprocess.run(  # noqa: S603 - fixed arguments
            [
                py_spy(),
                "record",
                "--output",
                args.profile_verify.replace("{backend}", result.backend),
                "--format",
                profile_format(args.profile_verify),
                "--rate",
                "100",
                "--",
                *command,
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    if not args.keep_file:
        export_file.unlink()


def bench_backend(backend: str, args: argparse.Namespace, tmp: Path) -> Result:
    sizes = [args.small, args.transactions] if args.small else [args.transactions]
    result = Result(backend, args.transactions, 0.0)
    for n in sizes:
        database = fresh_database(backend, args.pg_admin_url, n, tmp)
        server: subprocess.Popen[bytes] | None = None
        try:
            parties = make_parties(database.url, args.suppliers)
            vouchers = min(args.vouchers, max(10, n // 20))
            started = time.perf_counter()
            load(database.writer(), parties, n, vouchers, args.seed)
            seconds = time.perf_counter() - started
            print(
                f"  {backend}: loaded {n:,} transactions ({vouchers:,} vouchers) "
                f"in {seconds:.1f} s ({n / seconds:,.0f}/s)",
                flush=True,
            )
            status = (
                check_consistency(database.url, n)
                if n < args.transactions or args.check
                else "not checked (--no-check)"
            )
            print(f"  {backend} {n:,}: {status}", flush=True)
            port = free_port()
            server = start_server(database.url, port, tmp, src=SRC, signing_key=SIGNING_KEY)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
                result.reads[n] = balance_reads(http, parties, args.reads)
                print(
                    f"  {backend} {n:,}: balance p50 {result.reads[n].p50_ms:.2f} ms, "
                    f"p99 {result.reads[n].p99_ms:.2f} ms",
                    flush=True,
                )
                if n == args.transactions:
                    result.load_seconds = seconds
                    result.check = status
                    export_and_verify(http, server, parties, result, tmp, args)
                    print(
                        f"  {backend} {n:,}: export {result.export_seconds:.1f} s "
                        f"({n / result.export_seconds:,.0f} tx/s, "
                        f"{result.export_bytes / 1e6:.0f} MB), server RSS "
                        f"{result.rss_before_kb / 1024:.0f} -> peak "
                        f"{result.hwm_after_kb / 1024:.0f} MiB; verify "
                        f"{result.verify_seconds:.1f} s ({n / result.verify_seconds:,.0f} tx/s), "
                        f"peak {result.verify_maxrss_kb / 1024:.0f} MiB: {result.verify_output}",
                        flush=True,
                    )
        finally:
            if server is not None:
                stop_server(server)
            database.drop()
    return result


# --- reporting ------------------------------------------------------------------------------


def machine(admin_url: str, backends: list[str]) -> list[str]:
    cpu = platform.processor() or "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import fastapi
    import sqlalchemy

    lines = [
        f"CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, psycopg {psycopg.__version__}, "
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if "postgresql" in backends:
        with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
            row = conn.execute("SELECT version()").fetchone()
        lines.append(str(row[0]) if row else "PostgreSQL: no answer")
    return lines


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def report(results: list[Result], args: argparse.Namespace) -> None:
    def mib(kb: float) -> str:
        return f"{kb / 1024:.0f}"

    rows: list[tuple[str, ...]] = [
        (
            "backend",
            "transactions",
            "load s",
            "export s",
            "export tx/s",
            "export MB",
            "server CPU s",
            "server RSS before MiB",
            "server peak MiB",
            "verify s",
            "verify tx/s",
            "verify CPU s",
            "verify peak MiB",
        )
    ]
    for r in results:
        rows.append(
            (
                r.backend,
                f"{r.transactions:,}",
                f"{r.load_seconds:.0f}",
                f"{r.export_seconds:.1f}",
                f"{r.transactions / r.export_seconds:,.0f}",
                f"{r.export_bytes / 1e6:.0f}",
                f"{r.export_cpu:.1f}",
                mib(r.rss_before_kb),
                mib(r.hwm_after_kb),
                f"{r.verify_seconds:.1f}",
                f"{r.transactions / r.verify_seconds:,.0f}",
                f"{r.verify_cpu:.1f}",
                mib(r.verify_maxrss_kb),
            )
        )
    table(rows)
    print()
    if args.small:
        rows = [
            (
                "backend",
                f"p50 ms @ {args.small:,}",
                f"p99 ms @ {args.small:,}",
                f"p50 ms @ {args.transactions:,}",
                f"p99 ms @ {args.transactions:,}",
                "p50 ratio",
                "p99 ratio",
            )
        ]
        for r in results:
            small, large = r.reads[args.small], r.reads[args.transactions]
            rows.append(
                (
                    r.backend,
                    f"{small.p50_ms:.2f}",
                    f"{small.p99_ms:.2f}",
                    f"{large.p50_ms:.2f}",
                    f"{large.p99_ms:.2f}",
                    f"{large.p50_ms / small.p50_ms:.2f}",
                    f"{large.p99_ms / small.p99_ms:.2f}",
                )
            )
        table(rows)
        print()
    for r in results:
        print(f"{r.backend}: {r.check}; verify said: {r.verify_output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="postgresql")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument(
        "--small", type=int, default=1000, help="the small journal for balance reads (0: none)"
    )
    parser.add_argument("--vouchers", type=int, default=5000, help="voucher accounts (at most)")
    parser.add_argument("--suppliers", type=int, default=20)
    parser.add_argument("--reads", type=int, default=500, help="timed balance reads per size")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip verify_database and the balance checks on the large journal",
    )
    parser.add_argument("--keep-file", action="store_true", help="keep the export file")
    parser.add_argument("--profile-export", default=None, help="py-spy the server's export")
    parser.add_argument("--profile-verify", default=None, help="py-spy one more verify run")
    parser.add_argument("--src", default=None, help="serve and verify with this package copy")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    for line in machine(args.pg_admin_url, backends):
        print(line)
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    print(
        f"{args.transactions:,} transactions (balance reads also at {args.small:,}); "
        f"uvicorn subprocess, 1 worker, sealer on, serving {SRC}",
        flush=True,
    )
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="vl_bench_export_"))
    try:
        for backend in backends:
            results.append(bench_backend(backend, args, tmp))
    finally:
        if args.keep_file:
            print(f"files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    print()
    report(results, args)


if __name__ == "__main__":
    main()
