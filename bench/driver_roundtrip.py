"""Client CPU per statement: psycopg 3 (sync, what the service uses) against asyncpg.

Issue 14 allows an async path "decided by measurement". A claim is 8 statements in 6
round trips; this measures what one round trip costs the client process in each
driver, on one connection, one statement at a time (no pool, no framework): a
primary-key read of a 1,000-row table and a bare ``SELECT $1``. Rounds alternate the
drivers; the figures are CPU time of this process (``time.process_time``) and wall
time, per statement.

    .venv/bin/python bench/driver_roundtrip.py
    .venv/bin/python bench/driver_roundtrip.py --statements 20000 --rounds 5
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

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TABLE = f"bench_roundtrip_{os.getpid()}"
LOOKUP = f"SELECT code, balance FROM {TABLE} WHERE code = "
BARE = "SELECT "


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


def timed(run: Callable[[], None], n: int) -> tuple[float, float]:
    """Microseconds of CPU and of wall time per statement."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def psycopg_round(url: str, n: int, kind: str) -> tuple[float, float]:
    with psycopg.connect(url) as conn:
        sql = LOOKUP + "%s" if kind == "lookup" else BARE + "%s::int"

        def run() -> None:
            for i in range(n):
                conn.execute(sql, (f"acc-{i % 1000 + 1}",) if kind == "lookup" else (i,)).fetchone()
            conn.commit()

        return timed(run, n)


def asyncpg_round(url: str, n: int, kind: str) -> tuple[float, float]:
    async def go() -> tuple[float, float]:
        conn = await asyncpg.connect(url)
        sql = LOOKUP + "$1" if kind == "lookup" else BARE + "$1::int"
        try:
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(n):
                await conn.fetchrow(sql, f"acc-{i % 1000 + 1}" if kind == "lookup" else i)
            return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6
        finally:
            await conn.close()

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("VL_BENCH_PG_URL", DEFAULT_URL))
    parser.add_argument("--statements", type=int, default=10_000, help="per round and driver")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    create_table(args.url)
    try:
        rows = []
        for kind in ("lookup", "bare"):
            figures: dict[str, list[tuple[float, float]]] = {"psycopg": [], "asyncpg": []}
            for _ in range(args.rounds):
                figures["psycopg"].append(psycopg_round(args.url, args.statements, kind))
                figures["asyncpg"].append(asyncpg_round(args.url, args.statements, kind))
            for driver, runs in figures.items():
                cpu = statistics.median(r[0] for r in runs)
                wall = statistics.median(r[1] for r in runs)
                rows.append((kind, driver, cpu, wall))
        print(
            f"{args.statements:,} statements per round, {args.rounds} alternating rounds, medians"
        )
        print("| statement | driver | client CPU µs/statement | wall µs/statement |")
        print("|---|---|---|---|")
        for kind, driver, cpu, wall in rows:
            print(f"| {kind} | {driver} | {cpu:.1f} | {wall:.1f} |")
        for kind in ("lookup", "bare"):
            ours = next(r[2] for r in rows if r[0] == kind and r[1] == "psycopg")
            theirs = next(r[2] for r in rows if r[0] == kind and r[1] == "asyncpg")
            print(f"{kind}: psycopg / asyncpg client CPU = {ours / theirs:.2f}")
    finally:
        drop_table(args.url)


if __name__ == "__main__":
    main()
