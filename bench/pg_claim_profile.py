"""Where PostgreSQL spends its time during a claims run: every statement, per claim.

Runs one short API run of ``bench/claims.py`` (same template, same servers: uvicorn
subprocesses with the background sealer, the sequencer, the sweep and the webhook
worker as production runs them) and reads what the database did for that run's
database only:

- ``pg_stat_statements`` (it must be in ``shared_preload_libraries``): each statement's
  calls per claim, execution time per claim, rows, shared buffers and WAL per call,
  sorted by total execution time; statements run by the background loops show as
  calls per second of the run;
- the tables' write traffic from ``pg_stat_user_tables`` and ``pg_statio_user_tables``
  (inserts, updates, HOT updates, deletes and dead rows per claim) and each index's
  size, to see what every insert pays for;
- with ``--auto-explain``, the plans of a sample of statements (``auto_explain``,
  ``log_analyze`` and ``log_buffers``, nested statements so the deferred trigger's
  queries show) written to the server log; the script prints the distinct plans it
  finds there for the run's database.

    .venv/bin/python bench/pg_claim_profile.py --claims 2000 --processes 2
    .venv/bin/python bench/pg_claim_profile.py --claims 1000 --auto-explain 0.05
    .venv/bin/python bench/pg_claim_profile.py --claims 2000 --src /tmp/old/src  # A/B

The figures are rough: one short run on a shared machine. Compare runs made back to
back. PG CPU per claim is the same measure ``bench/claims.py`` prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import claims as bench  # noqa: E402 - the claims bench, beside this file

STATS_DB = f"vl_bench_pgss_{os.getpid()}"
SERVER_LOG = Path("/var/log/postgresql/postgresql-15-main.log")

STATEMENTS = """
SELECT queryid, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read,
       shared_blks_dirtied, wal_bytes, total_plan_time, toplevel, query
FROM pg_stat_statements WHERE dbid = %s
"""
TABLES = """
SELECT t.relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_live_tup, n_dead_tup,
       pg_relation_size(t.relid), pg_indexes_size(t.relid),
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = t.relid)
FROM pg_stat_user_tables t ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC
"""


def compact(query: str, width: int) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def pgss_available(admin_url: str) -> bool:
    with psycopg.connect(bench.pg_dsn(admin_url), autocommit=True) as conn:
        row = conn.execute("SHOW shared_preload_libraries").fetchone()
    return row is not None and "pg_stat_statements" in str(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--contention", choices=["low", "high"], default="low")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--low-vouchers", type=int, default=10_000)
    parser.add_argument("--high-vouchers", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--top", type=int, default=40, help="statements shown")
    parser.add_argument(
        "--auto-explain",
        type=float,
        default=0.0,
        metavar="RATE",
        help="log the plans of this share of statements (auto_explain.sample_rate)",
    )
    parser.add_argument("--width", type=int, default=150, help="characters of each statement")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--keep-template",
        metavar="FILE",
        help="keep the template database and write what the runs need of it to FILE (JSON)",
    )
    parser.add_argument("--template", metavar="FILE", help="reuse a kept template (its FILE)")
    parser.add_argument(
        "--db-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="ALTER DATABASE ... SET on the run's database (an experiment; repeatable)",
    )
    args = parser.parse_args()
    # What bench.api_run reads beyond these.
    args.client, args.client_procs, args.idempotency_key = "raw", 1, False
    args.sealer, args.pool_size, args.uvicorn_args, args.profile = "on", None, "", None
    have_pgss = pgss_available(args.pg_admin_url)
    if not have_pgss:
        print("pg_stat_statements is not in shared_preload_libraries: tables only")
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    if args.template:
        world = bench.World(**json.loads(Path(args.template).read_text()))
    else:
        world = bench.build_template(args)
    if args.keep_template:
        Path(args.keep_template).write_text(json.dumps(dataclasses.asdict(world)))
    copies: list[tuple[str, int]] = []
    original_copy = bench.copy_database

    def copy_and_watch(args: argparse.Namespace, world: bench.World, n: int) -> tuple[str, str]:
        name, url = original_copy(args, world, n)
        with psycopg.connect(bench.pg_dsn(args.pg_admin_url), autocommit=True) as conn:
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if have_pgss:
                # Statements inside functions too: the deferred trigger's, the foreign
                # keys' checks. On this database only.
                conn.execute(f"ALTER DATABASE {name} SET pg_stat_statements.track = 'all'")
                conn.execute(f"ALTER DATABASE {name} SET pg_stat_statements.track_planning = on")
            for assignment in args.db_setting:
                setting, value = assignment.split("=", 1)
                conn.execute(f"ALTER DATABASE {name} SET {setting} = '{value}'")
            if args.auto_explain:
                for setting, value in (
                    ("session_preload_libraries", "auto_explain"),
                    ("auto_explain.log_min_duration", "0"),
                    ("auto_explain.log_analyze", "on"),
                    ("auto_explain.log_buffers", "on"),
                    ("auto_explain.log_timing", "on"),
                    ("auto_explain.log_nested_statements", "on"),
                    ("auto_explain.sample_rate", str(args.auto_explain)),
                ):
                    conn.execute(f"ALTER DATABASE {name} SET {setting} = '{value}'")
        if row is None:
            raise SystemExit(f"database {name} not found after its copy")
        copies.append((name, int(row[0])))  # a new oid: pg_stat_statements has nothing of it
        return name, url

    bench.copy_database = copy_and_watch
    tables: list[tuple[Any, ...]] = []
    log_offset = SERVER_LOG.stat().st_size if SERVER_LOG.exists() else 0
    tmp = Path(tempfile.mkdtemp(prefix="vl_pgprof_"))
    if have_pgss:
        bench.admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {STATS_DB}")
        bench.admin_execute(args.pg_admin_url, f"CREATE DATABASE {STATS_DB}")
        with psycopg.connect(bench.pg_dsn(args.pg_admin_url, STATS_DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    # Read the tables' counters of the run's database just before the bench drops it.
    original_admin = bench.admin_execute

    def admin_before_drop(admin_url: str, sql: str) -> None:
        if sql.startswith("DROP DATABASE") and copies and copies[-1][0] in sql:
            try:
                with psycopg.connect(bench.pg_dsn(admin_url, copies[-1][0])) as conn:
                    tables.extend(conn.execute(TABLES).fetchall())
            except psycopg.Error as exc:
                print(f"(tables not read: {exc})")
        original_admin(admin_url, sql)

    bench.admin_execute = admin_before_drop
    try:
        started = time.monotonic()
        row = bench.api_run(args, world, args.contention, args.processes, 1, tmp)
        seconds = time.monotonic() - started
    finally:
        bench.admin_execute = original_admin
        if not (args.keep_template or args.template):
            original_admin(
                args.pg_admin_url, f"DROP DATABASE IF EXISTS {world.template} WITH (FORCE)"
            )
    claims = row.claims + args.concurrency * args.warmup
    print(
        f"\n{args.contention} contention, {args.processes} server(s): {row.per_second:,.0f} "
        f"claims/s over {row.seconds:.1f} s, p50 {row.p50:.1f} ms, p99 {row.p99:.1f} ms; "
        f"server CPU {row.server_cpu_us:.0f} us/claim, PG CPU {row.pg_cpu_us:.0f} us/claim, "
        f"machine busy {row.busy:.0%}; {row.check}"
    )
    print(
        f"(statement counts below cover the whole database's life, {seconds:.0f} s: "
        f"{claims} claims with the warm-up, the final sealing and checks)\n"
    )
    if have_pgss:
        name, oid = copies[-1]
        with psycopg.connect(bench.pg_dsn(args.pg_admin_url, STATS_DB)) as conn:
            stats = conn.execute(STATEMENTS, (oid,)).fetchall()
        bench.admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {STATS_DB}")
        total = sum(s[2] for s in stats if s[9]) or 1.0
        print(f"pg_stat_statements, database {name}: {len(stats)} statements")
        print(
            "calls/claim | exec us/claim | share | mean us | plan us/claim | rows/call | "
            "blks hit/call | dirtied/call | WAL B/claim | statement (* nested)"
        )
        for _qid, calls, time_ms, rows, hit, _read, dirtied, wal, plan_ms, top, query in sorted(
            stats, key=lambda s: -s[2]
        )[: args.top]:
            print(
                f"{calls / claims:11.3f} | {time_ms / claims * 1000:13.1f} | "
                f"{time_ms / total:5.1%} | {time_ms / calls * 1000:7.1f} | "
                f"{plan_ms / claims * 1000:13.1f} | {rows / calls:9.2f} | "
                f"{hit / calls:13.1f} | {dirtied / calls:12.2f} | {float(wal) / claims:11.0f} | "
                f"{'' if top else '* '}{compact(query, args.width)}"
            )
        toplevel = [s for s in stats if s[9]]
        print(
            f"\ntop-level statements: {sum(s[1] for s in toplevel) / claims:.1f} per claim, "
            f"execution {sum(s[2] for s in toplevel) / claims * 1000:.0f} us and planning "
            f"{sum(s[8] for s in stats) / claims * 1000:.0f} us per claim"
        )
        print(f"\nWAL in all: {sum(float(s[7]) for s in stats) / claims:,.0f} bytes per claim")
    if tables:
        print(
            "\ntable | ins/claim | upd/claim | hot upd | del/claim | live | dead | heap kB | "
            "index kB | indexes"
        )
        for relname, ins, upd, hot, dele, live, dead, heap, idx, nidx in tables:
            if ins + upd + dele == 0:
                continue
            print(
                f"{relname} | {ins / claims:.2f} | {upd / claims:.2f} | {hot} | "
                f"{dele / claims:.2f} | {live} | {dead} | {heap // 1024} | {idx // 1024} | {nidx}"
            )
    if args.auto_explain and SERVER_LOG.exists():
        print_plans(copies[-1][0], log_offset)


def print_plans(database: str, offset: int) -> None:
    """The distinct plans auto_explain logged for ``database``, one of each statement."""
    with SERVER_LOG.open("rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", "replace")
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC \[)", text)
    seen: dict[str, str] = {}
    for entry in entries:
        if f"@{database} " not in entry.split("\n", 1)[0] or "Query Text:" not in entry:
            continue
        query = entry.split("Query Text:", 1)[1].split("\n", 1)[0].strip()
        key = re.sub(r"\s+", " ", query)[:200]
        seen.setdefault(key, entry)
    print(f"\nauto_explain: {len(seen)} distinct statements logged for {database}")
    for entry in seen.values():
        print("-" * 100)
        print(entry.split("LOG:", 1)[1] if "LOG:" in entry else entry)


if __name__ == "__main__":
    main()
