"""The raw floor: the ledger transfer's own statements (bench/pgbench_transfer.sql) run by
pgbench, with no Python in the way and no sealer, on a fresh database built by the
migrations and funded the same way as bench/ledger_write.py.

    .venv/bin/python bench/pgbench_floor.py                    # 1 and 8 clients, 20,000 each
    .venv/bin/python bench/pgbench_floor.py --clients 8 --transfers 5000 --balance-trigger on,off
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_write import fresh_database, fund, machine, set_balance_trigger

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "plain": HERE / "pgbench_transfer.sql",
    "pipelined": HERE / "pgbench_transfer_pipelined.sql",
    "one-statement": HERE / "pgbench_transfer_one_statement.sql",
}


def run_pgbench(
    url: str, clients: int, transfers: int, accounts: int, script: Path
) -> dict[str, str]:
    parsed = make_url(url)
    command = [
        "pgbench",
        "-n",
        "-M",
        "prepared",
        "-r",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-t",
        str(max(1, transfers // clients)),
        "-D",
        f"accounts={accounts}",
        "-f",
        str(script),
        "-h",
        parsed.host or "127.0.0.1",
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "postgres",
        str(parsed.database),
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    out = done.stdout
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return {
        "tps": tps.group(1) if tps else "?",
        "latency": latency.group(1) if latency else "?",
        "failed": failed.group(1) if failed else "0",
        "output": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=20_000)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--balance-trigger", default="on")
    parser.add_argument(
        "--scripts",
        default="plain",
        help="plain (what ledger.post does); pipelined, one-statement: experiments",
    )
    parser.add_argument("--verbose", action="store_true", help="print pgbench's own report")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    for line in machine(args.pg_admin_url, ["postgresql"]):
        print(line)
    print(f"pgbench -M prepared, {args.transfers} transfers per run, {args.accounts} accounts")
    print()
    rows = [
        ("script", "clients", "bal.trig", "transfers", "transfers/s", "avg latency ms", "failed")
    ]
    tmp = Path(tempfile.mkdtemp(prefix="vl_pgbench_"))
    n = 100
    cases = [
        (script, int(c), t == "on")
        for script in args.scripts.split(",")
        if script
        for c in args.clients.split(",")
        if c
        for t in args.balance_trigger.split(",")
        if t
    ]
    for script, clients, trigger in cases:
        if True:
            n += 1
            database = fresh_database("postgresql", args.pg_admin_url, n, tmp)
            try:
                fund(database.url, args.accounts)
                if not trigger:
                    set_balance_trigger(database.url, enabled=False)
                result = run_pgbench(
                    database.url, clients, args.transfers, args.accounts, SCRIPTS[script]
                )
            finally:
                database.cleanup()
            if args.verbose:
                print(result["output"])
            rows.append(
                (
                    script,
                    str(clients),
                    "on" if trigger else "OFF",
                    str(clients * max(1, args.transfers // clients)),
                    f"{float(result['tps']):,.0f}",
                    result["latency"],
                    result["failed"],
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
