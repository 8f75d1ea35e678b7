"""Ledger write throughput: transfers per second through ``voucherledger.ledger.post``.

No HTTP: each transfer is one committed transaction, ``transaction(factory)`` around
one ``ledger.post`` with two legs and an idempotency key, exactly as a claim will
write. Every run gets a fresh database built by the migrations (a temporary file
on SQLite; ``vl_bench_<pid>_<n>`` on PostgreSQL, dropped afterwards), opens
``--accounts`` voucher-like accounts, funds each from one external account, then
lets the writers post transfers between random pairs of them (random small
amounts) while a :class:`BackgroundSealer` seals about every second. At the end
whatever is still queued is sealed, the whole chain is verified with
``verify_database`` and the trial balance is checked to sum to zero; a run that
does not verify is reported as such.

Writers are the main thread (1 writer), threads sharing one engine, or processes
(spawned, one engine each); the sealer always runs in the parent process, as in
the server.

    .venv/bin/python bench/ledger_write.py                      # the full table
    .venv/bin/python bench/ledger_write.py --transfers 2000 --backends sqlite
    .venv/bin/python bench/ledger_write.py --backends postgresql --writers 8 \\
        --modes process --sealer on,off --balance-trigger on,off
    # the peer: django-hordak with as many writer processes, right after each PostgreSQL run
    .venv/bin/python bench/ledger_write.py --backends postgresql --writers 4 \\
        --modes process --sealer on --peer hordak

``--peer hordak`` runs ``bench/hordak/hordak_bench.py`` (its own venv, built the first
time) after each PostgreSQL run, with the same number of writers (as processes), the
same transfers and accounts, and prints our transfers/s as a multiple of hordak's
unchecked ``transfer_to`` and of its balance-checked variant.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import structlog
from sqlalchemy import event
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
# The package measured: this checkout's, or another copy's for an A/B
# (VL_BENCH_SRC=/tmp/old/src: its migrations build the database, its code serves).
SRC = Path(os.environ.get("VL_BENCH_SRC") or ROOT / "src")
sys.path.insert(0, str(SRC))

from voucherledger import ledger  # noqa: E402
from voucherledger.core.db import (  # noqa: E402
    create_db_engine,
    create_session_factory,
    transaction,
)
from voucherledger.ledger.sealer import BackgroundSealer, seal_pending  # noqa: E402
from voucherledger.ledger.signing import Signer  # noqa: E402
from voucherledger.ledger.verify import verify_database  # noqa: E402
from voucherledger.ops.migrate import upgrade  # noqa: E402

SIGNER_SEED = bytes.fromhex("42" * 32)
FUNDER = "funder:bench"
CURRENCY = "EUR"
FUNDING = 10_000_000  # per account: transfers of 1..100 never run an account dry


# The sealer logs each batch at debug level: keep the table readable.
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))


def account_code(i: int) -> str:
    return f"voucher:{i:05d}"


# --- databases ---------------------------------------------------------------------


@dataclass
class Database:
    url: str
    cleanup: Any


def pg_dsn(admin_url: str, database: str | None = None) -> str:
    url = make_url(admin_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def fresh_database(backend: str, admin_url: str, n: int, tmp: Path) -> Database:
    if backend == "sqlite":
        path = tmp / f"bench_{n}.db"
        url = f"sqlite:///{path}"
        upgrade(url)

        def drop_file() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return Database(url, drop_file)
    name = f"vl_bench_{os.getpid()}_{n}"
    with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_dsn(admin_url, name)
    upgrade(url)

    def drop_db() -> None:
        with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return Database(url, drop_db)


def fund(url: str, accounts: int) -> None:
    engine = create_db_engine(url, pool_size=1)
    factory = create_session_factory(engine)
    with transaction(factory) as session:
        ledger.open_accounts(
            session,
            [(FUNDER, CURRENCY, True)]
            + [(account_code(i), CURRENCY, False) for i in range(accounts)],
        )
    for i in range(accounts):
        with transaction(factory) as session:
            ledger.post(
                session,
                kind="deposit",
                idempotency_key=f"fund-{i}",
                legs=[
                    ledger.Leg(FUNDER, -FUNDING, CURRENCY),
                    ledger.Leg(account_code(i), FUNDING, CURRENCY),
                ],
            )
    seal_pending(factory, Signer.from_seed(SIGNER_SEED))
    engine.dispose()


def set_balance_trigger(url: str, enabled: bool) -> None:
    """Measurement only, on the bench's own database: the deferred balance check."""
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        action = "ENABLE" if enabled else "DISABLE"
        conn.execute(f"ALTER TABLE ledger_postings {action} TRIGGER ledger_postings_balanced")


def bench_engine(url: str, pool_size: int, synchronous: str) -> Any:
    """The service's engine; ``synchronous`` other than FULL is a measurement only."""
    engine = create_db_engine(url, pool_size=pool_size)
    if url.startswith("sqlite") and synchronous.upper() != "FULL":
        mode = {"NORMAL": "NORMAL"}[synchronous.upper()]

        @event.listens_for(engine, "connect")
        def _synchronous(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous={mode}")

    return engine


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# --- writers -----------------------------------------------------------------------


def write_transfers(
    factory: Any, worker: int, count: int, accounts: int, seed: int
) -> tuple[array[float], int]:
    rng = random.Random(seed)
    latencies: array[float] = array("d")
    refused = 0
    post = ledger.post
    leg = ledger.Leg
    clock = time.perf_counter
    for i in range(count):
        a, b = rng.sample(range(accounts), 2)
        amount = rng.randint(1, 100)
        legs = [leg(account_code(a), -amount, CURRENCY), leg(account_code(b), amount, CURRENCY)]
        key = f"bench-{seed}-{worker}-{i}"
        started = clock()
        try:
            with transaction(factory) as session:
                post(session, kind="transfer", legs=legs, idempotency_key=key)
        except ledger.InsufficientFunds:
            refused += 1
        latencies.append(clock() - started)
    return latencies, refused


def process_writer(
    url: str,
    synchronous: str,
    worker: int,
    count: int,
    accounts: int,
    seed: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    engine = bench_engine(url, 1, synchronous)
    factory = create_session_factory(engine)
    with engine.connect():
        pass  # open the pooled connection before the clock starts
    ready.release()
    go.wait()
    cpu = time.process_time()
    latencies, refused = write_transfers(factory, worker, count, accounts, seed)
    results.put(
        (worker, latencies.tobytes(), refused, time.perf_counter(), time.process_time() - cpu)
    )
    engine.dispose()


@dataclass
class Result:
    backend: str
    writers: int
    mode: str
    sealer: bool
    trigger: bool
    synchronous: str
    transfers: int
    seconds: float
    latencies: list[float]
    refused: int
    blocks_during_run: int
    final_seal_seconds: float
    verified: str
    python_cpu: float
    machine_busy: float

    @property
    def rate(self) -> float:
        return self.transfers / self.seconds


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_case(
    backend: str,
    writers: int,
    mode: str,
    sealer_on: bool,
    trigger_on: bool,
    synchronous: str,
    transfers: int,
    accounts: int,
    admin_url: str,
    n: int,
    tmp: Path,
    seed: int,
) -> Result:
    database = fresh_database(backend, admin_url, n, tmp)
    try:
        fund(database.url, accounts)
        if backend == "postgresql" and not trigger_on:
            set_balance_trigger(database.url, enabled=False)
        engine = bench_engine(database.url, max(writers, 1) + 1, synchronous)
        factory = create_session_factory(engine)
        signer = Signer.from_seed(SIGNER_SEED)
        with factory() as session:
            blocks_before = _block_count(session)
        per_worker = [
            transfers // writers + (1 if w < transfers % writers else 0) for w in range(writers)
        ]
        all_latencies: list[float] = []
        refused = 0
        sealer = BackgroundSealer(factory, signer, interval=1.0, batch_size=5000)

        if mode == "process":
            ctx = mp.get_context("spawn")
            ready = ctx.Semaphore(0)
            go = ctx.Event()
            results = ctx.Queue()
            procs = [
                ctx.Process(
                    target=process_writer,
                    args=(
                        database.url,
                        synchronous,
                        w,
                        per_worker[w],
                        accounts,
                        seed + n,
                        ready,
                        go,
                        results,
                    ),
                )
                for w in range(writers)
            ]
            for proc in procs:
                proc.start()
            for _ in procs:
                ready.acquire()
            python_cpu = 0.0
            if sealer_on:
                sealer.start()
            busy0 = busy_jiffies()
            cpu0 = time.process_time()
            started = time.perf_counter()
            go.set()
            ended = started
            for _ in procs:
                _w, raw, ref, finished, cpu = results.get()
                python_cpu += cpu
                lat: array[float] = array("d")
                lat.frombytes(raw)
                all_latencies.extend(lat)
                refused += ref
                ended = max(ended, finished)
            busy1 = busy_jiffies()
            python_cpu += time.process_time() - cpu0
            for proc in procs:
                proc.join()
                if proc.exitcode != 0:
                    raise RuntimeError(f"writer process failed with {proc.exitcode}")
        else:
            # threads (or the main thread alone): one engine, one pooled connection each
            conns = [engine.connect() for _ in range(writers)]
            for conn in conns:
                conn.close()
            outputs: list[tuple[array[float], int]] = []
            errors: list[BaseException] = []
            barrier = threading.Barrier(writers + 1)

            def thread_writer(worker: int) -> None:
                barrier.wait()
                try:
                    outputs.append(
                        write_transfers(factory, worker, per_worker[worker], accounts, seed + n)
                    )
                except BaseException as exc:  # reported after the run
                    errors.append(exc)

            if sealer_on:
                sealer.start()
            busy0 = busy_jiffies()
            cpu0 = time.process_time()
            if writers == 1:
                started = time.perf_counter()
                outputs.append(write_transfers(factory, 0, per_worker[0], accounts, seed + n))
            else:
                threads = [
                    threading.Thread(target=thread_writer, args=(w,)) for w in range(writers)
                ]
                for thread in threads:
                    thread.start()
                barrier.wait()
                started = time.perf_counter()
                for thread in threads:
                    thread.join()
                if errors:
                    raise errors[0]
            ended = time.perf_counter()
            busy1 = busy_jiffies()
            python_cpu = time.process_time() - cpu0
            for lat, ref in outputs:
                all_latencies.extend(lat)
                refused += ref
        if sealer_on:
            sealer.stop()
        with factory() as session:
            blocks_during = _block_count(session) - blocks_before
        t0 = time.perf_counter()
        seal_pending(factory, signer)
        final_seal = time.perf_counter() - t0
        with factory() as session:
            check = verify_database(session, public_key=signer.public_key_hex)
            totals = ledger.trial_balance(session).totals
        expected = accounts + transfers - refused
        if not check.ok:
            verified = f"FAILED: {check.error}"
        elif check.count != expected:
            verified = f"FAILED: {check.count} sealed, {expected} expected"
        elif totals != {CURRENCY: 0}:
            verified = f"FAILED: trial balance {totals}"
        else:
            verified = f"ok ({check.count} sealed)"
        engine.dispose()
        busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        return Result(
            backend,
            writers,
            mode,
            sealer_on,
            trigger_on,
            synchronous,
            transfers,
            ended - started,
            all_latencies,
            refused,
            blocks_during,
            final_seal,
            verified,
            python_cpu,
            busy,
        )
    finally:
        database.cleanup()


def _block_count(session: Any) -> int:
    from sqlalchemy import func, select

    from voucherledger.ledger.models import SealBlock

    return int(session.execute(select(func.count()).select_from(SealBlock)).scalar_one())


# --- the peer: django-hordak ---------------------------------------------------------

HORDAK = Path(__file__).resolve().parent / "hordak" / "hordak_bench.py"


@dataclass
class Peer:
    """One peer run, right after ``ours``: its variant's figures from hordak_bench.py."""

    ours: Result
    variant: str
    per_second: float
    p50_ms: float
    p99_ms: float
    check: str


def run_hordak(ours: Result, args: argparse.Namespace) -> list[Peer]:
    """hordak_bench.py with ``ours``'s writers as processes, the same transfers and
    accounts (it builds bench/hordak/.venv the first time)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            str(HORDAK),
            "--transfers",
            str(ours.transfers),
            "--processes",
            str(ours.writers),
            "--accounts",
            str(args.accounts),
            "--variants",
            args.peer_variants,
            "--seed",
            str(args.seed),
            "--pg-admin-url",
            args.pg_admin_url,
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"hordak_bench.py failed ({done.returncode}):\n{done.stderr}")
    peers = []
    for line in done.stdout.splitlines():
        if line.startswith("HORDAK_RESULT "):
            got = json.loads(line.removeprefix("HORDAK_RESULT "))
            peers.append(
                Peer(
                    ours,
                    got["variant"],
                    got["per_second"],
                    got["p50_ms"],
                    got["p99_ms"],
                    got["check"],
                )
            )
        elif line.strip():
            print(line, flush=True)
    return peers


def print_peers(peers: list[Peer]) -> None:
    header = (
        "ours: writers",
        "as",
        "sealer",
        "transfers/s",
        "hordak",
        "processes",
        "transfers/s",
        "p50 ms",
        "p99 ms",
        "ours / hordak",
        "hordak check",
    )
    rows = [header]
    for p in peers:
        rows.append(
            (
                str(p.ours.writers),
                p.ours.mode,
                "on" if p.ours.sealer else "off",
                f"{p.ours.rate:,.0f}",
                p.variant,
                str(p.ours.writers),
                f"{p.per_second:,.0f}",
                f"{p.p50_ms:.2f}",
                f"{p.p99_ms:.2f}",
                f"{p.ours.rate / p.per_second:.2f}x",
                p.check,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


# --- reporting ---------------------------------------------------------------------


def machine(admin_url: str, backends: list[str]) -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        f"CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__})",
    ]
    if "postgresql" in backends:
        with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
            row = conn.execute("SELECT version()").fetchone()
            settings = conn.execute(
                "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings "
                "WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', "
                "'commit_delay', 'wal_level')"
            ).fetchone()
        if row is None or settings is None:
            raise RuntimeError("PostgreSQL did not answer")
        lines.append(f"{row[0]}")
        lines.append(f"PostgreSQL settings: {settings[0]}")
    lines.append("SQLite: WAL, synchronous=FULL, BEGIN IMMEDIATE (core/db.py)")
    return lines


def print_table(results: list[Result]) -> None:
    header = (
        "backend",
        "writers",
        "as",
        "sealer",
        "bal.trig/sync",
        "transfers",
        "seconds",
        "transfers/s",
        "p50 ms",
        "p99 ms",
        "py CPU us/tr",
        "CPU busy",
        "blocks",
        "verified",
    )
    rows = [header]
    for r in results:
        rows.append(
            (
                r.backend,
                str(r.writers),
                r.mode,
                "on" if r.sealer else "off",
                ("trig on" if r.trigger else "trig OFF")
                if r.backend == "postgresql"
                else r.synchronous.upper(),
                str(r.transfers - r.refused),
                f"{r.seconds:.2f}",
                f"{r.rate:,.0f}",
                f"{percentile(r.latencies, 0.50) * 1000:.2f}",
                f"{percentile(r.latencies, 0.99) * 1000:.2f}",
                f"{r.python_cpu / r.transfers * 1e6:.0f}",
                f"{r.machine_busy:.0%}",
                str(r.blocks_during_run),
                r.verified,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=20_000, help="per run")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--writers", default="1,8")
    parser.add_argument(
        "--modes", default="process,thread", help="how several writers run: process and/or thread"
    )
    parser.add_argument(
        "--sealer",
        default="on,off",
        help="on: a BackgroundSealer (interval 1 s) runs during the writes",
    )
    parser.add_argument(
        "--balance-trigger",
        default="on",
        help="PostgreSQL only, on,off: measure without the deferred "
        "balance trigger (disabled in the bench's own database only)",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        default="full",
        help="full and/or normal: NORMAL is a measurement for a proposal "
        "only; the service runs FULL",
    )
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--peer",
        choices=["hordak"],
        default=None,
        help="after each PostgreSQL run, run django-hordak with as many writer processes",
    )
    parser.add_argument(
        "--peer-variants", default="unchecked,checked", help="hordak_bench.py --variants"
    )
    args = parser.parse_args()

    backends = [b for b in args.backends.split(",") if b]
    writer_counts = [int(w) for w in args.writers.split(",") if w]
    modes = [m for m in args.modes.split(",") if m]
    sealer_opts = [s == "on" for s in args.sealer.split(",") if s]
    trigger_opts = [t == "on" for t in args.balance_trigger.split(",") if t]
    sync_opts = [x for x in args.sqlite_synchronous.split(",") if x]

    for line in machine(args.pg_admin_url, backends):
        print(line)
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    print(
        f"{args.transfers} transfers per run between {args.accounts} accounts, "
        "each its own committed transaction; sealer interval 1 s, batch 5000"
    )
    print(flush=True)

    results: list[Result] = []
    peers: list[Peer] = []
    tmp = Path(tempfile.mkdtemp(prefix="vl_bench_"))
    n = 0
    try:
        for backend in backends:
            for writers in writer_counts:
                for mode in ["main"] if writers == 1 else modes:
                    for sealer_on in sealer_opts:
                        variants = (
                            [(t, "full") for t in trigger_opts]
                            if backend == "postgresql"
                            else [(True, x) for x in sync_opts]
                        )
                        for trigger_on, synchronous in variants:
                            n += 1
                            result = run_case(
                                backend,
                                writers,
                                mode,
                                sealer_on,
                                trigger_on,
                                synchronous,
                                args.transfers,
                                args.accounts,
                                args.pg_admin_url,
                                n,
                                tmp,
                                args.seed,
                            )
                            results.append(result)
                            print(
                                f"  {backend} {writers} writer(s) as {mode}, sealer "
                                f"{'on' if sealer_on else 'off'}"
                                + ("" if trigger_on else ", balance trigger OFF")
                                + ("" if synchronous == "full" else f", synchronous={synchronous}")
                                + f": {result.rate:,.0f}/s, p50 "
                                f"{statistics.median(result.latencies) * 1000:.2f} ms, "
                                f"{result.verified}",
                                flush=True,
                            )
                            if args.peer == "hordak" and backend == "postgresql":
                                peers.extend(run_hordak(result, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table(results)
    if peers:
        print()
        print_peers(peers)
    if any(not r.verified.startswith("ok") for r in results) or any(
        not p.check.startswith("ok") for p in peers
    ):
        sys.exit(1)


if __name__ == "__main__":
    main()
