"""Profile the ledger write path with pyinstrument: one writer, no sealer, fresh database.

    .venv/bin/python bench/profile_write.py --backend postgresql --transfers 5000
    .venv/bin/python bench/profile_write.py --backend sqlite --transfers 5000 --html out.html

Prints the call tree of ``transaction(factory)`` + ``ledger.post`` (what a claim does)
and, from the same run, how much of the wall time was spent waiting in the
database driver versus running Python.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from pyinstrument import Profiler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_write import (
    fresh_database,
    fund,
    write_transfers,
)

from voucherledger.core.db import create_db_engine, create_session_factory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="postgresql")
    parser.add_argument("--transfers", type=int, default=5_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--html", help="also write the profile as HTML here")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    database = fresh_database(
        args.backend, args.pg_admin_url, 900, Path(tempfile.mkdtemp(prefix="vl_profile_"))
    )
    try:
        fund(database.url, args.accounts)
        engine = create_db_engine(database.url, pool_size=1)
        factory = create_session_factory(engine)
        write_transfers(factory, 0, 200, args.accounts, 7)  # warm caches, prepare statements
        profiler = Profiler(interval=0.0002)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        profiler.start()
        write_transfers(factory, 1, args.transfers, args.accounts, 8)
        profiler.stop()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        engine.dispose()
    finally:
        database.cleanup()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(
        f"{args.transfers} transfers in {wall:.2f} s ({args.transfers / wall:,.0f}/s) "
        f"under the profiler; this process used {cpu / args.transfers * 1e6:.0f} us CPU "
        f"per transfer, {cpu / wall:.0%} of the wall time"
    )
    if args.html:
        Path(args.html).write_text(profiler.output_html())


if __name__ == "__main__":
    main()
