"""Batch issuance over HTTP: one POST of 10,000 vouchers, wall time and server memory.

For each backend a fresh database is built by the migrations (a temporary file on
SQLite; ``vl_bench_issue_<pid>_<n>`` on PostgreSQL, dropped afterwards) and the
service runs as it does in production: ``uvicorn voucherledger.asgi:app`` in a
**subprocess**, one worker, ``VOUCHERLEDGER_DATABASE_URL`` pointing at that
database, the background sealer on. The admin key is made the way the CLI makes it;
everything else goes through the API: a funder, ``--groups`` groups (every third
one women-led) and, for each run, a fresh programme with a 30 % women-led reserve,
funded with exactly what the batch needs.

Each run times one ``POST /v1/programmes/{id}/vouchers/batch`` of ``--vouchers``
items on the client (httpx, the body encoded before the clock starts, the clock
stopped when the whole response has arrived). Server memory comes from
``/proc/<pid>/status``: VmRSS just before the POST and VmHWM (peak RSS) after it;
the high-water mark is reset before each POST (``/proc/<pid>/clear_refs``), so each
run shows its own peak. Before the timed runs, one small batch warms the server up
(imports, connection pool, statement caches). After the runs, whatever the sealer
has not yet sealed is sealed, the chain verified, and the trial balance checked.

    .venv/bin/python bench/issuance.py                         # both backends, 3 runs
    .venv/bin/python bench/issuance.py --backends sqlite --runs 5
    .venv/bin/python bench/issuance.py --idempotency-key       # with a stored replay
    .venv/bin/python bench/issuance.py --backends postgresql --profile /tmp/issue.svg
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
# --src DIR serves another copy of the package (to compare a variant); the bench
# process itself always uses this checkout's.
SRC = Path(sys.argv[sys.argv.index("--src") + 1]) if "--src" in sys.argv else ROOT / "src"
sys.path.insert(0, str(ROOT / "src"))

from voucherledger import ledger  # noqa: E402
from voucherledger.accounts.service import create_admin  # noqa: E402
from voucherledger.core.db import (  # noqa: E402
    create_db_engine,
    create_session_factory,
    transaction,
)
from voucherledger.ledger.sealer import seal_pending  # noqa: E402
from voucherledger.ledger.signing import Signer  # noqa: E402
from voucherledger.ledger.verify import verify_database  # noqa: E402
from voucherledger.ops.migrate import upgrade  # noqa: E402

SIGNING_KEY = "42" * 32
CURRENCY = "EUR"
CATEGORIES = ["leadership", "fundraising", "governance"]


@dataclass
class Run:
    backend: str
    run: int
    seconds: float
    rss_before: int  # kB
    hwm_after: int  # kB
    response_bytes: int
    server_cpu: float  # seconds of CPU (user + system) the server used during the POST


# --- databases and the server --------------------------------------------------------


def pg_dsn(admin_url: str, database: str | None = None) -> str:
    url = make_url(admin_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def fresh_database(backend: str, admin_url: str, n: int, tmp: Path) -> tuple[str, Any]:
    if backend == "sqlite":
        path = tmp / f"issue_{n}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        return url, lambda: None
    name = f"vl_bench_issue_{os.getpid()}_{n}"
    with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_dsn(admin_url, name)
    upgrade(url)

    def drop() -> None:
        with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return url, drop


# --- the API calls ------------------------------------------------------------------------


def check(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def make_party(http: httpx.Client, admin: dict[str, str], body: dict[str, Any]) -> str:
    account = check(http.post("/v1/accounts", headers=admin, json=body))
    key = check(http.post(f"/v1/accounts/{account['id']}/keys", headers=admin))
    return str(key["key"]) if body["kind"] == "funder" else str(account["id"])


def group_body(i: int) -> dict[str, Any]:
    return {
        "kind": "group",
        "name": f"Group {i}",
        "group": {
            "group_type": "hometown_association",
            "origin_country": "GH",
            "residence_country": "GB",
            "women_led": i % 3 == 0,
        },
    }


def batch_items(group_ids: list[str], count: int) -> list[dict[str, Any]]:
    return [
        {"group_id": group_ids[i % len(group_ids)], "amount": 500 + (i % 7) * 100}
        for i in range(count)
    ]


def new_programme(http: httpx.Client, funder: dict[str, str], amount: int) -> str:
    programme = check(
        http.post(
            "/v1/programmes",
            headers=funder,
            json={
                "name": "Bench programme",
                "currency": CURRENCY,
                "service_categories": CATEGORIES,
                "rules": {"women_led_reserve_pct": 30},
            },
        )
    )
    # The reserve share is rounded down: deposit enough that both pots suffice.
    check(
        http.post(
            f"/v1/programmes/{programme['id']}/deposits",
            headers=funder,
            json={"amount": amount * 2, "reference": "bench grant"},
        )
    )
    return str(programme["id"])


# --- one backend ----------------------------------------------------------------------------


def bench_backend(
    backend: str, args: argparse.Namespace, n: int, tmp: Path
) -> tuple[list[Run], str]:
    url, drop = fresh_database(backend, args.pg_admin_url, n, tmp)
    engine = create_db_engine(url, pool_size=1)
    factory = create_session_factory(engine)
    server: subprocess.Popen[bytes] | None = None
    try:
        with transaction(factory) as session:
            admin = {"Authorization": f"Bearer {create_admin(session, 'Bench operator').key}"}
        port = free_port()
        server = start_server(url, port, tmp, src=SRC, signing_key=SIGNING_KEY)
        runs: list[Run] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
            funder = {
                "Authorization": "Bearer "
                + make_party(http, admin, {"kind": "funder", "name": "Bench funder"})
            }
            group_ids = [make_party(http, admin, group_body(i)) for i in range(args.groups)]
            warm = batch_items(group_ids, 100)
            programme_id = new_programme(http, funder, sum(i["amount"] for i in warm))
            check(
                http.post(
                    f"/v1/programmes/{programme_id}/vouchers/batch",
                    headers=funder,
                    json={"vouchers": warm},
                )
            )
            items = batch_items(group_ids, args.vouchers)
            body = json.dumps({"vouchers": items}).encode()
            total = sum(i["amount"] for i in items)
            profiler: subprocess.Popen[bytes] | None = None
            for run in range(1, args.runs + 1):
                programme_id = new_programme(http, funder, total)
                headers = {**funder, "Content-Type": "application/json"}
                if args.idempotency_key:
                    headers["Idempotency-Key"] = f"bench-{backend}-{run}"
                reset_peak(server.pid)
                before = proc_status(server.pid)["VmRSS"]
                if args.profile and run == args.runs:
                    profiler = subprocess.Popen(  # noqa: S603 - fixed arguments
                        [
                            py_spy(),
                            "record",
                            "--pid",
                            str(server.pid),
                            "--output",
                            args.profile.replace("{backend}", backend),
                            "--format",
                            profile_format(args.profile),
                            "--rate",
                            "200",
                            "--idle",
                        ]
                    )
                    time.sleep(1.0)
                cpu_before = cpu_seconds(server.pid)
                started = time.perf_counter()
                response = http.post(
                    f"/v1/programmes/{programme_id}/vouchers/batch", headers=headers, content=body
                )
                seconds = time.perf_counter() - started
                server_cpu = cpu_seconds(server.pid) - cpu_before
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(timeout=60)
                    profiler = None
                after = proc_status(server.pid)["VmHWM"]
                data = check(response)["data"]
                if len(data) != args.vouchers:
                    raise RuntimeError(f"{len(data)} vouchers issued, {args.vouchers} asked")
                runs.append(
                    Run(backend, run, seconds, before, after, len(response.content), server_cpu)
                )
                print(
                    f"  {backend} run {run}: {seconds:.3f} s (server CPU {server_cpu:.2f} s), "
                    f"RSS {before / 1024:.0f} MiB -> "
                    f"peak {after / 1024:.0f} MiB, response {len(response.content) / 1e6:.1f} MB",
                    flush=True,
                )
        stop_server(server)
        server = None
        seal_pending(factory, Signer.from_seed(bytes.fromhex(SIGNING_KEY)))
        with factory() as session:
            verified = verify_database(
                session, public_key=Signer.from_seed(bytes.fromhex(SIGNING_KEY)).public_key_hex
            )
            totals = ledger.trial_balance(session).totals
        if not verified.ok:
            status = f"FAILED: {verified.error}"
        elif totals != {CURRENCY: 0}:
            status = f"FAILED: trial balance {totals}"
        else:
            status = f"ok ({verified.count} sealed, trial balance 0)"
        return runs, status
    finally:
        if server is not None:
            stop_server(server)
        engine.dispose()
        drop()


# --- reporting ---------------------------------------------------------------------------


def machine(admin_url: str, backends: list[str]) -> list[str]:
    cpu = platform.processor() or "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import fastapi
    import pydantic
    import sqlalchemy

    lines = [
        f"CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"pydantic {pydantic.VERSION}, SQLAlchemy {sqlalchemy.__version__}, "
        f"psycopg {psycopg.__version__}, SQLite {sqlite3.sqlite_version}",
    ]
    if "postgresql" in backends:
        with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
            row = conn.execute("SELECT version()").fetchone()
        lines.append(str(row[0]) if row else "PostgreSQL: no answer")
    return lines


def print_table(runs: list[Run], statuses: dict[str, str]) -> None:
    header = (
        "backend",
        "run",
        "POST wall s",
        "server CPU s",
        "RSS before MiB",
        "peak RSS MiB",
        "peak - before",
    )
    rows: list[tuple[str, ...]] = [header]

    def mib(kb: float) -> str:
        return f"{kb / 1024:.0f}"

    for backend in statuses:
        mine = [r for r in runs if r.backend == backend]
        for r in mine:
            rows.append(
                (
                    backend,
                    str(r.run),
                    f"{r.seconds:.3f}",
                    f"{r.server_cpu:.2f}",
                    mib(r.rss_before),
                    mib(r.hwm_after),
                    mib(r.hwm_after - r.rss_before),
                )
            )
        rows.append(
            (
                backend,
                "median",
                f"{statistics.median(r.seconds for r in mine):.3f}",
                f"{statistics.median(r.server_cpu for r in mine):.2f}",
                mib(statistics.median(r.rss_before for r in mine)),
                mib(statistics.median(r.hwm_after for r in mine)),
                mib(statistics.median(r.hwm_after - r.rss_before for r in mine)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for backend, status in statuses.items():
        print(f"{backend}: {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=3, help="timed batches per backend")
    parser.add_argument("--vouchers", type=int, default=10_000, help="per batch")
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument(
        "--idempotency-key",
        action="store_true",
        help="send an Idempotency-Key (the response is then stored for replay)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="py-spy the server during the last run into this file ({backend} is replaced)",
    )
    parser.add_argument("--src", default=None, help="serve the package from this directory")
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
        f"{args.runs} x one POST of {args.vouchers:,} vouchers over {args.groups} groups; "
        f"uvicorn subprocess, 1 worker, sealer on, serving {SRC}"
        + (", Idempotency-Key sent" if args.idempotency_key else ", no Idempotency-Key"),
        flush=True,
    )
    runs: list[Run] = []
    statuses: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="vl_bench_issue_"))
    try:
        for n, backend in enumerate(backends):
            backend_runs, statuses[backend] = bench_backend(backend, args, n, tmp)
            runs.extend(backend_runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    print()
    print_table(runs, statuses)


if __name__ == "__main__":
    main()
