"""Client CPU per statement: psycopg 3 (sync, what the service uses) against asyncpg.

Issue 14 allows an async path "decided by measurement". A claim is 8 statements in 6
round trips; this measures what one round trip costs the client process in each
driver, on one connection, one statement at a time (no pool, no framework): a
primary-key read of a 1,000-row table and a bare ``SELECT $1``. Rounds alternate the
drivers; the figures are CPU time of this process (``time.process_time``) and wall
time, per statement.

    .venv/bin/python bench/driver_roundtrip.py
    .venv/bin/python bench/driver_roundtrip.py --statements 20000 --rounds 5
    .venv/bin/python bench/driver_roundtrip.py --pg-admin-url postgresql://me@db:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable

import asyncpg
import psycopg

TABLE = f"bench_roundtrip_{os.getpid()}"
# Each kind of statement: its text after SELECT (psycopg's placeholder, then asyncpg's)
# and the parameter of the i-th call.
KINDS: dict[str, tuple[str, str, Callable[[int], object]]] = {
    "lookup": (
        f"code, balance FROM {TABLE} WHERE code = %s",
        f"code, balance FROM {TABLE} WHERE code = $1",
        lambda i: f"acc-{i % 1000 + 1}",
    ),
    "bare": ("%s::int", "$1::int", lambda i: i),
}


def create_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (code text PRIMARY KEY, balance bigint NOT NULL)")
        conn.execute(
            f"INSERT INTO {TABLE} SELECT 'acc-' || n, n FROM generate_series(1, 1000) AS n"
        )
        conn.execute(f"ANALYZE {TABLE}")


def drop_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def per_statement(cpu: float, wall: float, n: int) -> tuple[float, float]:
    """Microseconds of CPU and of wall time per statement since ``cpu`` and ``wall``."""
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def psycopg_round(url: str, n: int, kind: str) -> tuple[float, float]:
    text, _, param = KINDS[kind]
    with psycopg.connect(url) as conn:
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(n):
            conn.execute("SELECT " + text, (param(i),)).fetchone()
        conn.commit()
        return per_statement(cpu, wall, n)


def asyncpg_round(url: str, n: int, kind: str) -> tuple[float, float]:
    _, text, param = KINDS[kind]

    async def go() -> tuple[float, float]:
        conn = await asyncpg.connect(url)
        try:
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(n):
                await conn.fetchrow("SELECT " + text, param(i))
            return per_statement(cpu, wall, n)
        finally:
            await conn.close()

    return asyncio.run(go())


ROUNDS = {"psycopg": psycopg_round, "asyncpg": asyncpg_round}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="the table is made, and dropped, in this database",
    )
    parser.add_argument("--statements", type=int, default=10_000, help="per round and driver")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = args.pg_admin_url
    create_table(url)
    try:
        cpu: dict[tuple[str, str], float] = {}
        print(
            f"{args.statements:,} statements per round, {args.rounds} alternating rounds, medians"
        )
        print("| statement | driver | client CPU µs/statement | wall µs/statement |")
        print("|---|---|---|---|")
        for kind in KINDS:
            runs: dict[str, list[tuple[float, float]]] = {driver: [] for driver in ROUNDS}
            for _ in range(args.rounds):
                for driver, run in ROUNDS.items():
                    runs[driver].append(run(url, args.statements, kind))
            for driver, figures in runs.items():
                cpu[kind, driver] = statistics.median(f[0] for f in figures)
                wall = statistics.median(f[1] for f in figures)
                print(f"| {kind} | {driver} | {cpu[kind, driver]:.1f} | {wall:.1f} |")
        for kind in KINDS:
            ratio = cpu[kind, "psycopg"] / cpu[kind, "asyncpg"]
            print(f"{kind}: psycopg / asyncpg client CPU = {ratio:.2f}")
    finally:
        drop_table(url)


if __name__ == "__main__":
    main()
