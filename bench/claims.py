"""Claims per second over HTTP against PostgreSQL, and the raw SQL floor of the same claim.

One template database is built by the migrations and populated through the API (in
process): an operator, a funder, a group, ``--concurrency`` suppliers (one per client
task, so no supplier's payable row is shared between tasks), and two programmes
without group confirmation, so that every claim captures at once:

- ``low`` contention: ``--low-vouchers`` (10,000) vouchers; each claim picks one at
  random, so two claims rarely meet on a row;
- ``high`` contention: ``--high-vouchers`` (10) vouchers that every task claims on.

Each run gets a fresh copy of it (``CREATE DATABASE ... TEMPLATE``,
``vl_bench_claims_<pid>_<n>``, dropped afterwards) and 1 or 2 servers as production
runs them: ``uvicorn voucherledger.asgi:app`` **subprocesses**, each on its own port,
background sealer on, ``VOUCHERLEDGER_LOG_LEVEL=WARNING`` (uvicorn picks uvloop and
httptools, both in ``uvicorn[standard]``). ``--concurrency`` (32) asyncio tasks, split
evenly over the servers, each with its own keep-alive connection and supplier key,
post ``--claims`` (10,000) claims of 1-150 minor units between them, as fast as the
answers come back. The clients run in ``--client-procs`` spawned processes (1), so
their CPU is measured apart from the servers'. A short warm-up (each task's
connection opened and a few claims made) precedes the clock.

The raw floor runs the same claim's statements (``bench/pgbench_claim.sql``: the API
key look-up, the claim's one read, the journal CTE, the two guarded UPDATEs, the claim
row, COMMIT; as a claim executes them on PostgreSQL, read with ``log_statement=all``)
with ``pgbench -M prepared`` and ``--concurrency`` clients on a fresh copy of the same
database, in the same run.

After each API run the servers are stopped, what the sealers left is sealed, the whole
chain verified, the trial balance checked to sum to zero and the claim rows counted
against the 201 answers.

    .venv/bin/python bench/claims.py                        # the table: 2 x 2 runs + floors
    .venv/bin/python bench/claims.py --claims 2000 --contention low --processes 2
    .venv/bin/python bench/claims.py --client httpx          # the client the issue names
    .venv/bin/python bench/claims.py --profile /tmp/claims.svg   # py-spy on server 1
    .venv/bin/pip install -e '.[bench]'                     # asyncpg, for --reference
    .venv/bin/python bench/claims.py --contention low --processes 2 --reference minimal,statements

``--reference`` runs the reference apps of ``bench/minimal_claim/app.py`` (FastAPI + raw
asyncpg in 2 uvicorn worker processes, 8 pooled connections each) after the
service in each contention, driven by the same client, and prints the service's
claims/s as a share of each: ``minimal`` is the issue's minimal claim on its own
tables; ``statements`` runs the service's claim statement for statement on a copy of
the template (sealer in this process), so that ratio separates the framework's cost
from the database's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
# The package measured: this checkout's, or another copy's for an A/B
# (VL_BENCH_SRC=/tmp/old/src: its migrations build the database, its code serves).
SRC = Path(os.environ.get("VL_BENCH_SRC") or ROOT / "src")
sys.path.insert(0, str(SRC))

SIGNING_KEY = "42" * 32
CURRENCY = "EUR"
CATEGORY = "leadership"
HERE = Path(__file__).resolve().parent
PGBENCH_SCRIPT = HERE / "pgbench_claim.sql"


def pg_dsn(admin_url: str, database: str | None = None) -> str:
    url = make_url(admin_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def admin_execute(admin_url: str, sql: str) -> None:
    with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
        conn.execute(sql)


# --- the template: parties, programmes, vouchers ------------------------------------


@dataclass
class World:
    template: str
    supplier_keys: list[str]
    supplier_ids: list[str]
    codes: dict[str, list[str]]  # contention -> voucher codes
    programme_ids: dict[str, str]
    faces: dict[str, int] = field(default_factory=dict)  # contention -> each voucher's value


def build_template(args: argparse.Namespace) -> World:
    """A migrated database with everything the runs need, made through the API."""
    from fastapi.testclient import TestClient

    from voucherledger.accounts.service import create_admin
    from voucherledger.app import create_app
    from voucherledger.core.db import transaction
    from voucherledger.core.settings import Settings
    from voucherledger.ops.migrate import upgrade

    name = f"vl_bench_claims_{os.getpid()}_template"
    admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name}")
    admin_execute(args.pg_admin_url, f"CREATE DATABASE {name}")
    url = pg_dsn(args.pg_admin_url, name)
    upgrade(url)
    settings = Settings(
        database_url=url,
        signing_key=SIGNING_KEY,
        sealer_enabled=False,
        sweep_enabled=False,  # tests sweep when they mean to
        pool_size=2,
        log_level="WARNING",
    )
    app = create_app(settings)
    with TestClient(app) as http:
        with transaction(app.state.session_factory) as session:
            admin = {"Authorization": f"Bearer {create_admin(session, 'Bench operator').key}"}

        def check(response: httpx.Response) -> Any:
            if response.status_code != 201:
                raise RuntimeError(
                    f"{response.request.url}: {response.status_code} {response.text}"
                )
            return response.json()

        def party(body: dict[str, Any]) -> tuple[str, str]:
            account = check(http.post("/v1/accounts", headers=admin, json=body))
            key = check(http.post(f"/v1/accounts/{account['id']}/keys", headers=admin))
            return str(account["id"]), str(key["key"])

        _funder_id, funder_key = party({"kind": "funder", "name": "Bench funder"})
        funder = {"Authorization": f"Bearer {funder_key}"}
        group_id, _group_key = party(
            {
                "kind": "group",
                "name": "Bench group",
                "group": {
                    "group_type": "hometown_association",
                    "origin_country": "GH",
                    "residence_country": "GB",
                    "women_led": False,
                },
            }
        )
        suppliers = [
            party(
                {
                    "kind": "supplier",
                    "name": f"Bench supplier {i}",
                    "supplier": {"service_categories": [CATEGORY]},
                }
            )
            for i in range(args.concurrency)
        ]
        codes: dict[str, list[str]] = {}
        programme_ids: dict[str, str] = {}
        # Face values: a run never drains a voucher, so every claim is a 201.
        plan = {
            "low": (args.low_vouchers, 100_000),
            "high": (args.high_vouchers, 150 * (args.claims + 1000) // args.high_vouchers + 1),
        }
        for contention, (count, face) in plan.items():
            programme = check(
                http.post(
                    "/v1/programmes",
                    headers=funder,
                    json={
                        "name": f"Bench claims ({contention} contention)",
                        "currency": CURRENCY,
                        "service_categories": [CATEGORY],
                        "rules": {"requires_group_confirmation": False},
                    },
                )
            )
            programme_ids[contention] = programme["id"]
            check(
                http.post(
                    f"/v1/programmes/{programme['id']}/deposits",
                    headers=funder,
                    json={"amount": count * face, "reference": "bench grant"},
                )
            )
            for supplier_id, _key in suppliers:
                check(
                    http.post(
                        f"/v1/programmes/{programme['id']}/accreditations",
                        headers=funder,
                        json={"supplier_id": supplier_id, "service_categories": [CATEGORY]},
                    )
                )
            issued = check(
                http.post(
                    f"/v1/programmes/{programme['id']}/vouchers/batch",
                    headers=funder,
                    json={"vouchers": [{"group_id": group_id, "amount": face}] * count},
                )
            )
            codes[contention] = [v["code"] for v in issued["data"]]
    app.state.engine.dispose()
    # What the template holds so far is sealed and its events numbered, so each run's
    # chain starts sealed and its feed numbered: otherwise the first sequencer pass of
    # every run renumbers the ~10,000 voucher.issued events of the set-up (an UPDATE of
    # each, counted in the run's PG CPU per claim).
    from voucherledger.core import events
    from voucherledger.core.db import create_db_engine, create_session_factory
    from voucherledger.ledger.sealer import seal_pending
    from voucherledger.ledger.signing import Signer

    engine = create_db_engine(url, pool_size=1)
    seal_pending(create_session_factory(engine), Signer.from_seed(bytes.fromhex(SIGNING_KEY)))
    events.sequence_pending(create_session_factory(engine), wait=True)
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return World(
        name,
        [key for _id, key in suppliers],
        [supplier_id for supplier_id, _key in suppliers],
        codes,
        programme_ids,
        {contention: face for contention, (_count, face) in plan.items()},
    )


def copy_database(args: argparse.Namespace, world: World, n: int) -> tuple[str, str]:
    name = f"vl_bench_claims_{os.getpid()}_{n}"
    admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name}")
    admin_execute(args.pg_admin_url, f"CREATE DATABASE {name} TEMPLATE {world.template}")
    return name, pg_dsn(args.pg_admin_url, name)


# --- servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn_uvicorn(app: str, workdir: Path, env: dict[str, str], extra: list[str]) -> Server:
    """One uvicorn process serving ``app`` on a free port of 127.0.0.1 (not yet ready)."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *extra,
        ],
        cwd=workdir,
        env=env,
    )
    return Server(process, f"http://127.0.0.1:{port}", port)


def start_servers(
    url: str,
    count: int,
    workdir: Path,
    extra: list[str],
    sealer: bool = True,
    pool_size: int | None = None,
) -> list[Server]:
    env = {
        **os.environ,
        "VOUCHERLEDGER_DATABASE_URL": url,
        "VOUCHERLEDGER_SIGNING_KEY": SIGNING_KEY,
        "VOUCHERLEDGER_SEALER_ENABLED": "true" if sealer else "false",
        "VOUCHERLEDGER_LOG_LEVEL": "WARNING",
        **({"VOUCHERLEDGER_POOL_SIZE": str(pool_size)} if pool_size else {}),
        "PYTHONPATH": str(SRC),
    }
    servers = [spawn_uvicorn("voucherledger.asgi:app", workdir, env, extra) for _ in range(count)]
    try:
        for server in servers:
            deadline = time.monotonic() + 30
            while True:
                if server.process.poll() is not None:
                    raise RuntimeError(f"a server exited with {server.process.returncode}")
                try:
                    if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("a server did not get ready")
                time.sleep(0.1)
    except BaseException:
        stop_servers(servers)
        raise
    return servers


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    port: int


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
    for server in servers:
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


# --- CPU accounting ----------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds, by pid, of the PostgreSQL processes that work for this database: its
    backends and the server's own (WAL writer, checkpointer...), not other databases'
    backends (the machine may be shared)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("latin-1")
        except OSError:
            continue
        if not stat.split(" (", 1)[1].startswith("postgres)"):
            continue
        if f" {database} " in title or "(" not in title:
            found[int(entry.name)] = proc_cpu(int(entry.name))
    return found


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- the clients ---------------------------------------------------------------------------


@dataclass
class ClientPlan:
    """One client process's share: its tasks, each (server url, supplier key, claims)."""

    tasks: list[tuple[str, str, list[tuple[str, int]]]]
    warmup: list[list[tuple[str, int]]]
    start_at: float
    client: str


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    cpu: float = 0.0
    started: float = 0.0
    finished: float = 0.0


def claim_body(code: str, amount: int, n: int) -> bytes:
    return json.dumps(
        {
            "voucher_code": code,
            "amount": amount,
            "service_category": CATEGORY,
            "description": "Coaching session",
            "evidence": [{"kind": "invoice", "reference": f"INV-{n}"}],
        }
    ).encode()


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client for one connection: a tenth of httpx's CPU
    per request, so that the client, which shares the two cores, weighs less."""

    def __init__(self, url: str, key: str) -> None:
        parsed = httpx.URL(url)
        self.host = parsed.host
        self.port = parsed.port or 80
        self.head = (
            f"POST /v1/redemptions HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes, idempotency_key: str | None) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            raise RuntimeError("the connection is not open")
        extra = f"Idempotency-Key: {idempotency_key}\r\n".encode() if idempotency_key else b""
        self.writer.write(
            self.head + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if match is None:
            raise RuntimeError(f"no Content-Length in {head!r}")
        return status, await self.reader.readexactly(int(match.group(1)))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def run_clients(plan: ClientPlan, keys: bool) -> ClientResult:
    result = ClientResult()
    use_httpx = plan.client == "httpx"

    async def task(index: int, url: str, key: str, claims: list[tuple[str, int]]) -> None:
        n = 0

        async def one(http: Any, code: str, amount: int, timed: bool) -> None:
            nonlocal n
            n += 1
            tag = f"{os.getpid()}-{index}-{n}"
            body = claim_body(code, amount, n)
            started = time.perf_counter()
            if use_httpx:
                headers = {"Idempotency-Key": tag} if keys else None
                response = await http.post("/v1/redemptions", content=body, headers=headers)
                status, content = response.status_code, response.content
            else:
                status, content = await http.post(body, tag if keys else None)
            elapsed = time.perf_counter() - started
            if timed:
                result.latencies.append(elapsed)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status != 201:
                    try:
                        code_ = json.loads(content).get("code", "?")
                    except ValueError:
                        code_ = content[:80].decode("latin-1")
                    result.errors[code_] = result.errors.get(code_, 0) + 1

        if use_httpx:
            http: Any = httpx.AsyncClient(
                base_url=url,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                timeout=120,
                limits=httpx.Limits(max_connections=1),
            )
        else:
            http = RawConnection(url, key)
            await http.open()
        try:
            for code, amount in plan.warmup[index]:
                await one(http, code, amount, timed=False)
            await asyncio.sleep(max(0.0, plan.start_at - time.time()))
            for code, amount in claims:
                await one(http, code, amount, timed=True)
        finally:
            if use_httpx:
                await http.aclose()
            else:
                await http.close()

    coroutines = [task(i, url, key, claims) for i, (url, key, claims) in enumerate(plan.tasks)]
    gathered = asyncio.gather(*coroutines)
    await asyncio.sleep(max(0.0, plan.start_at - time.time()))
    cpu1 = time.process_time()
    result.started = time.time()
    await gathered
    result.finished = time.time()
    result.cpu = time.process_time() - cpu1
    return result


def client_main(plan: ClientPlan, keys: bool) -> ClientResult:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        pass
    return asyncio.run(run_clients(plan, keys))


# --- one API run ----------------------------------------------------------------------------


@dataclass
class Row:
    contention: str
    processes: int
    claims: int
    seconds: float
    per_second: float
    p50: float
    p99: float
    client_cpu_us: float
    server_cpu_us: float
    pg_cpu_us: float
    busy: float
    statuses: dict[int, int]
    errors: dict[str, int]
    check: str
    # "service", or the reference app's mode (bench/minimal_claim/app.py)
    what: str = "service"


def plan_claims(
    world: World, contention: str, tasks: int, per_task: int, seed: int
) -> list[list[tuple[str, int]]]:
    """Each task's claims: (voucher code, amount), the voucher drawn at random."""
    rng = random.Random(seed)
    codes = world.codes[contention]
    return [
        [(rng.choice(codes), rng.randint(1, 150)) for _ in range(per_task)] for _ in range(tasks)
    ]


@dataclass
class Driven:
    """What one timed run of the clients measured; CPU in seconds."""

    results: list[ClientResult]
    server_cpu: float
    pg_cpu: float
    busy: float


def drive(
    args: argparse.Namespace,
    world: World,
    contention: str,
    urls: list[str],
    server_cpu: Callable[[], float],
    database: str,
    n: int,
    on_start: Callable[[], None] | None = None,
) -> Driven:
    """The clients, as every run drives them: ``--concurrency`` tasks spread over
    ``urls``, each a warm-up and then its timed claims; ``server_cpu`` reads the servers'
    CPU seconds so far, ``on_start`` is called when the clock starts."""
    claims = plan_claims(
        world, contention, args.concurrency, args.claims // args.concurrency, seed=n
    )
    warm = plan_claims(world, contention, args.concurrency, args.warmup, seed=10_000 + n)
    tasks = [
        (urls[i % len(urls)], world.supplier_keys[i], claims[i]) for i in range(args.concurrency)
    ]
    start_at = time.time() + 3.0 + args.warmup * 0.05
    plans = [
        ClientPlan(
            tasks[p :: args.client_procs], warm[p :: args.client_procs], start_at, args.client
        )
        for p in range(args.client_procs)
    ]
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.client_procs) as pool:
        pending = pool.starmap_async(client_main, [(plan, args.idempotency_key) for plan in plans])
        time.sleep(max(0.0, start_at - time.time()))
        server_cpu0 = server_cpu()
        pg0 = postgres_cpu(database)
        busy0 = machine_busy()
        if on_start is not None:
            on_start()
        results: list[ClientResult] = pending.get(timeout=3600)
        busy1 = machine_busy()
        pg1 = postgres_cpu(database)
        server_cpu1 = server_cpu()
    return Driven(
        results,
        server_cpu1 - server_cpu0,
        sum(pg1.get(pid, 0.0) - pg0.get(pid, 0.0) for pid in pg1),
        (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
    )


def summarise(
    driven: Driven, contention: str, processes: int, check: str, what: str = "service"
) -> Row:
    results = driven.results
    latencies = sorted(x for r in results for x in r.latencies)
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
        for k2, v in r.errors.items():
            errors[k2] = errors.get(k2, 0) + v
    seconds = max(r.finished for r in results) - min(r.started for r in results)
    total = len(latencies)
    return Row(
        contention,
        processes,
        total,
        seconds,
        total / seconds,
        statistics.median(latencies) * 1000,
        latencies[min(total - 1, int(total * 0.99))] * 1000,
        sum(r.cpu for r in results) / total * 1e6,
        driven.server_cpu / total * 1e6,
        driven.pg_cpu / total * 1e6,
        driven.busy,
        statuses,
        errors,
        check,
        what,
    )


def created_claims(args: argparse.Namespace, driven: Driven) -> int:
    """The 201s of the timed claims and the warm-up's (all of which are 201s)."""
    warm: int = args.concurrency * args.warmup
    return sum(r.statuses.get(201, 0) for r in driven.results) + warm


def check_service_database(url: str, world: World, contention: str, created: int) -> str:
    """Seal what is left, verify the whole chain, check the trial balance sums to zero
    and that there is one claim row per 201."""
    from voucherledger import ledger
    from voucherledger.core.db import create_db_engine, create_session_factory
    from voucherledger.ledger.sealer import seal_pending
    from voucherledger.ledger.signing import Signer
    from voucherledger.ledger.verify import verify_database

    engine = create_db_engine(url, pool_size=1)
    try:
        signer = Signer.from_seed(bytes.fromhex(SIGNING_KEY))
        seal_pending(create_session_factory(engine), signer)
        with create_session_factory(engine)() as session:
            verified = verify_database(session, public_key=signer.public_key_hex)
            totals = ledger.trial_balance(session).totals
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM redemptions WHERE programme_id = %s",
                (world.programme_ids[contention],),
            ).fetchone()
        rows = int(row[0]) if row else -1
    finally:
        engine.dispose()
    if not verified.ok:
        return f"FAILED: {verified.error}"
    if totals != {CURRENCY: 0}:
        return f"FAILED: trial balance {totals}"
    if rows != created:
        return f"FAILED: {rows} claim rows, {created} answered 201"
    return f"ok ({verified.count} sealed)"


def api_run(
    args: argparse.Namespace, world: World, contention: str, processes: int, n: int, tmp: Path
) -> Row:
    name, url = copy_database(args, world, n)
    servers: list[Server] = []
    profiler: subprocess.Popen[bytes] | None = None
    try:
        extra = args.uvicorn_args.split() if args.uvicorn_args else []
        servers = start_servers(
            url, processes, tmp, extra, sealer=args.sealer == "on", pool_size=args.pool_size
        )

        def start_profiler() -> None:
            nonlocal profiler
            profiler = subprocess.Popen(  # noqa: S603 - fixed arguments
                [
                    py_spy(),
                    "record",
                    "--pid",
                    str(servers[0].process.pid),
                    "--output",
                    args.profile.replace("{run}", f"{contention}-{processes}"),
                    "--format",
                    {".txt": "raw", ".json": "speedscope"}.get(
                        Path(args.profile).suffix, "flamegraph"
                    ),
                    "--rate",
                    "250",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        driven = drive(
            args,
            world,
            contention,
            [s.url for s in servers],
            lambda: sum(proc_cpu(s.process.pid) for s in servers),
            name,
            n,
            on_start=start_profiler if args.profile else None,
        )
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=120)
        stop_servers(servers)
        servers = []
        check = check_service_database(url, world, contention, created_claims(args, driven))
        return summarise(driven, contention, processes, check)
    finally:
        stop_servers(servers)
        admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- the reference apps (bench/minimal_claim) ---------------------------------------------

REFERENCES = ("minimal", "statements", "statements-unprepared")


def process_tree(root: int) -> dict[int, float]:
    """CPU seconds, by pid, of a process and all its descendants (uvicorn --workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        found[pid] = proc_cpu(pid)
        todo.extend(children.get(pid, []))
    return found


def worker_split(before: dict[int, float], after: dict[int, float], workers: set[int]) -> str:
    """Each worker's share of the timed CPU: how evenly the connections were shared."""
    used = [after[pid] - before[pid] for pid in sorted(workers) if pid in before and pid in after]
    total = sum(used) or 1.0
    return "/".join(f"{u / total:.0%}" for u in used)


def start_reference(
    args: argparse.Namespace, mode: str, dsn: str, workdir: Path
) -> tuple[list[Server], set[int]]:
    """The reference app's servers and the pids of their workers, once every worker has
    answered. By default ``--reference-workers`` uvicorn processes, each on its own port,
    as the service's runs are; with ``--reference-shared-port`` one ``uvicorn --workers``
    (its workers race to accept, so the connections may be shared out unevenly)."""
    shared = args.reference_shared_port
    count = 1 if shared else args.reference_workers
    env = {**os.environ, "MC_MODE": mode, "MC_DSN": dsn, "MC_POOL": str(args.reference_pool)}
    extra = [
        "--app-dir",
        str(HERE),
        *(["--workers", str(args.reference_workers)] if shared else []),
    ]
    servers = [spawn_uvicorn("minimal_claim.app:app", workdir, env, extra) for _ in range(count)]
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        for server in servers:
            want = len(seen) + (args.reference_workers if shared else 1)
            while len(seen) < want:
                if server.process.poll() is not None:
                    raise RuntimeError(f"the reference app exited with {server.process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the reference app's workers did not all answer ({seen})")
                try:
                    seen.add(int(httpx.get(f"{server.url}/readyz", timeout=1).json()["pid"]))
                except httpx.TransportError:
                    time.sleep(0.1)
    except BaseException:
        stop_servers(servers)
        raise
    return servers, seen


def reference_run(
    args: argparse.Namespace, world: World, contention: str, mode: str, n: int, tmp: Path
) -> Row:
    """One reference app's run, driven as the service's runs are: ``minimal`` on its own
    tables in a fresh database; the ``statements`` modes on a copy of the template, with
    a sealer in this process (as the service's servers run one) when ``--sealer on``."""
    from minimal_claim import schema

    if mode == "minimal":
        name = f"vl_bench_claims_{os.getpid()}_{n}"
        admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name}")
        admin_execute(args.pg_admin_url, f"CREATE DATABASE {name}")
        url = pg_dsn(args.pg_admin_url, name)
    else:
        name, url = copy_database(args, world, n)
    servers: list[Server] = []
    sealer: Any = None
    engine: Any = None
    try:
        if mode == "minimal":
            schema.create(url, world.codes[contention], world.faces[contention])
        elif args.sealer == "on":
            from voucherledger.core.db import create_db_engine, create_session_factory
            from voucherledger.ledger.sealer import BackgroundSealer
            from voucherledger.ledger.signing import Signer

            engine = create_db_engine(url, pool_size=1)
            sealer = BackgroundSealer(
                create_session_factory(engine),
                Signer.from_seed(bytes.fromhex(SIGNING_KEY)),
                interval=1.0,
                batch_size=5000,
            )
            sealer.start()
        servers, workers = start_reference(args, mode, url, tmp)
        snapshots: list[dict[int, float]] = []

        def server_cpu() -> float:
            snapshots.append(
                {k: v for s in servers for k, v in process_tree(s.process.pid).items()}
            )
            return sum(snapshots[-1].values())

        driven = drive(args, world, contention, [s.url for s in servers], server_cpu, name, n)
        split = worker_split(snapshots[0], snapshots[-1], workers)
        stop_servers(servers)
        servers = []
        if sealer is not None:
            sealer.stop()
            sealer = None
        created = created_claims(args, driven)
        if mode == "minimal":
            check = schema.check(url, world.faces[contention], created)
        else:
            check = check_service_database(url, world, contention, created)
        check += f"; workers' CPU split {split}"
        return summarise(driven, contention, args.reference_workers, check, what=mode)
    finally:
        stop_servers(servers)
        if sealer is not None:
            sealer.stop()
        if engine is not None:
            engine.dispose()
        admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    return found


# --- the raw floor ---------------------------------------------------------------------------


@dataclass
class Floor:
    contention: str
    per_second: float
    latency: float
    failed: str
    check: str


def floor_run(args: argparse.Namespace, world: World, contention: str, n: int) -> Floor:
    """pgbench runs the claim's statements on a fresh copy of the same database."""
    name, url = copy_database(args, world, n)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            # pgbench picks a voucher by its row number: number the contention's vouchers.
            conn.execute(
                "CREATE TABLE bench_vouchers AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, "
                "code FROM vouchers WHERE programme_id = %s",
                (world.programme_ids[contention],),
            )
            conn.execute("CREATE UNIQUE INDEX ON bench_vouchers (n)")
            conn.execute(
                "CREATE TABLE bench_suppliers AS SELECT row_number() OVER (ORDER BY a.id) - 1 "
                "AS n, k.id AS key_id, a.id AS supplier_id FROM accounts a "
                "JOIN api_keys k ON k.account_id = a.id WHERE a.kind = 'supplier'"
            )
            conn.execute("CREATE UNIQUE INDEX ON bench_suppliers (n)")
            conn.execute("ANALYZE")
            count = conn.execute("SELECT count(*) FROM bench_suppliers").fetchone()
        per_client = max(1, args.claims // args.concurrency)
        parsed = make_url(url)
        command = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(args.concurrency),
            "-j",
            str(min(args.concurrency, os.cpu_count() or 1)),
            "-t",
            str(per_client),
            "-D",
            f"vouchers={len(world.codes[contention])}",
            "-D",
            f"suppliers={count[0] if count else 1}",
            "-f",
            str(PGBENCH_SCRIPT),
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
        if args.verbose:
            print(done.stdout)
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM redemptions WHERE programme_id = %s AND id LIKE 'red_pgb%%'",
                (world.programme_ids[contention],),
            ).fetchone()
            totals = conn.execute(
                "SELECT coalesce(sum(balance), 0) FROM ledger_accounts"
            ).fetchone()
        written = int(row[0]) if row else -1
        expected = per_client * args.concurrency
        check = (
            "ok"
            if written == expected and totals is not None and int(totals[0]) == 0
            else f"FAILED: {written} claims of {expected}, trial balance {totals}"
        )
        return Floor(
            contention,
            float(tps.group(1)) if tps else float("nan"),
            float(latency.group(1)) if latency else float("nan"),
            failed.group(1) if failed else "0",
            check,
        )
    finally:
        admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- reporting --------------------------------------------------------------------------------


def machine(admin_url: str) -> list[str]:
    cpu = platform.processor() or "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import fastapi
    import sqlalchemy
    import uvicorn

    with psycopg.connect(pg_dsn(admin_url), autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        settings = conn.execute(
            "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings "
            "WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections')"
        ).fetchone()
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"uvicorn {uvicorn.__version__}, SQLAlchemy {sqlalchemy.__version__}, "
        f"psycopg {psycopg.__version__}, httpx {httpx.__version__}",
        str(version[0]) if version else "PostgreSQL: no answer",
        f"PostgreSQL settings: {settings[0] if settings else '?'}",
    ]


def print_table(rows: list[Row], floors: dict[str, Floor]) -> None:
    header = (
        "contention",
        "procs",
        "claims",
        "seconds",
        "claims/s",
        "p50 ms",
        "p99 ms",
        "raw floor/s",
        "API/raw",
        "client CPU us/claim",
        "server CPU us/claim",
        "PG CPU us/claim",
        "CPU busy",
    )
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        floor = floors.get(r.contention)
        table.append(
            (
                r.contention,
                str(r.processes),
                str(r.claims),
                f"{r.seconds:.2f}",
                f"{r.per_second:,.0f}",
                f"{r.p50:.1f}",
                f"{r.p99:.1f}",
                f"{floor.per_second:,.0f}" if floor else "-",
                f"{r.per_second / floor.per_second:.0%}" if floor else "-",
                f"{r.client_cpu_us:.0f}",
                f"{r.server_cpu_us:.0f}",
                f"{r.pg_cpu_us:.0f}",
                f"{r.busy:.0%}",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()
    for r in rows:
        odd = {k: v for k, v in r.statuses.items() if k != 201}
        print(
            f"{r.contention}/{r.processes}: {r.check}; answers {r.statuses}"
            + (f"; refusals {r.errors}" if odd else "")
        )
    for contention, floor in floors.items():
        print(
            f"raw floor {contention}: {floor.per_second:,.0f}/s, avg latency "
            f"{floor.latency:.2f} ms, {floor.failed} failed; {floor.check}"
        )


def print_references(rows: list[Row]) -> None:
    """The reference apps' runs, and the service's claims/s as a share of each (same
    contention, every process count the service ran)."""
    header = (
        "reference",
        "contention",
        "workers",
        "claims",
        "claims/s",
        "p50 ms",
        "p99 ms",
        "client CPU us/claim",
        "server CPU us/claim",
        "PG CPU us/claim",
        "CPU busy",
        "service / reference",
    )
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        if r.what == "service":
            continue
        ratios = ", ".join(
            f"{s.processes} proc {s.per_second / r.per_second:.0%}"
            for s in rows
            if s.what == "service" and s.contention == r.contention
        )
        table.append(
            (
                r.what,
                r.contention,
                str(r.processes),
                str(r.claims),
                f"{r.per_second:,.0f}",
                f"{r.p50:.1f}",
                f"{r.p99:.1f}",
                f"{r.client_cpu_us:.0f}",
                f"{r.server_cpu_us:.0f}",
                f"{r.pg_cpu_us:.0f}",
                f"{r.busy:.0%}",
                ratios or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()
    for r in rows:
        if r.what != "service":
            odd = {k: v for k, v in r.statuses.items() if k != 201}
            print(
                f"reference {r.what} {r.contention}: {r.check}; answers {r.statuses}"
                + (f"; refusals {r.errors}" if odd else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=10_000, help="timed claims per run")
    parser.add_argument("--concurrency", type=int, default=32, help="client tasks")
    parser.add_argument("--contention", default="low,high")
    parser.add_argument("--processes", default="1,2", help="server processes")
    parser.add_argument("--low-vouchers", type=int, default=10_000)
    parser.add_argument("--high-vouchers", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5, help="untimed claims per task")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument(
        "--idempotency-key", action="store_true", help="send an Idempotency-Key with each claim"
    )
    parser.add_argument("--sealer", choices=["on", "off"], default="on")
    parser.add_argument(
        "--pool-size", type=int, default=None, help="VOUCHERLEDGER_POOL_SIZE (default: 20)"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the pgbench floor")
    parser.add_argument("--uvicorn-args", default="", help="extra uvicorn options")
    parser.add_argument(
        "--profile", default=None, help="py-spy the first server into this file ({run} replaced)"
    )
    parser.add_argument("--verbose", action="store_true", help="print pgbench's report")
    parser.add_argument(
        "--reference",
        default="",
        help="also run these reference apps (bench/minimal_claim/app.py), after the service "
        f"in each contention: a comma list of {', '.join(REFERENCES)}",
    )
    parser.add_argument(
        "--reference-workers", type=int, default=2, help="worker processes of a reference app"
    )
    parser.add_argument(
        "--reference-shared-port",
        action="store_true",
        help="run a reference app as one uvicorn --workers N on one port (default: N uvicorn "
        "processes on their own ports, the clients split evenly, as the service's runs)",
    )
    parser.add_argument(
        "--reference-pool", type=int, default=8, help="pooled connections per reference worker"
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    references = [r for r in args.reference.split(",") if r]
    for reference in references:
        if reference not in REFERENCES:
            parser.error(f"--reference: {reference!r} is none of {', '.join(REFERENCES)}")
    if references and importlib.util.find_spec("asyncpg") is None:
        raise SystemExit(
            "--reference needs asyncpg, a bench-only dependency; install it with\n"
            "    .venv/bin/pip install -e '.[bench]'"
        )
    if args.idempotency_key and not args.no_floor:
        print("note: the raw floor does not store idempotency records; compare with care")
    if args.idempotency_key and references:
        print("note: the reference apps ignore Idempotency-Key; compare with care")
    for line in machine(args.pg_admin_url):
        print(line)
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    print(
        f"{args.claims:,} claims per run, {args.concurrency} client tasks ({args.client} client, "
        f"{args.client_procs} process(es)), uvicorn subprocesses, sealer on, "
        + ("Idempotency-Key sent" if args.idempotency_key else "no Idempotency-Key"),
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="vl_bench_claims_"))
    started = time.monotonic()
    world = build_template(args)
    print(f"template built in {time.monotonic() - started:.0f} s", flush=True)
    rows: list[Row] = []
    floors: dict[str, Floor] = {}
    n = 0
    try:
        for contention in [c for c in args.contention.split(",") if c]:
            if not args.no_floor:
                n += 1
                floors[contention] = floor_run(args, world, contention, n)
                print(
                    f"  raw floor {contention}: {floors[contention].per_second:,.0f}/s",
                    flush=True,
                )
            for processes in [int(p) for p in args.processes.split(",") if p]:
                n += 1
                row = api_run(args, world, contention, processes, n, tmp)
                rows.append(row)
                print(
                    f"  {contention} contention, {processes} process(es): "
                    f"{row.per_second:,.0f}/s, p50 {row.p50:.1f} ms, p99 {row.p99:.1f} ms, "
                    f"{row.check}",
                    flush=True,
                )
            for reference in references:
                n += 1
                row = reference_run(args, world, contention, reference, n, tmp)
                rows.append(row)
                print(
                    f"  {contention} contention, reference {reference} "
                    f"({args.reference_workers} workers): {row.per_second:,.0f}/s, "
                    f"p50 {row.p50:.1f} ms, p99 {row.p99:.1f} ms, {row.check}",
                    flush=True,
                )
    finally:
        admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {world.template} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table([r for r in rows if r.what == "service"], floors)
    if references:
        print()
        print_references(rows)


if __name__ == "__main__":
    main()
