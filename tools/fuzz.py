"""``make fuzz``: schemathesis over the whole OpenAPI document, as three parties.

It builds a fresh database (SQLite by default; with ``--postgres ADMIN_URL`` a new
PostgreSQL database, dropped at the end), fills it with
the demo scheme, serves the API on a free local port and runs ``st run`` against
``openapi/openapi.json`` once with the admin's key, once with the funder's and once
with the supplier's. The checks are that no response is a 5xx and that every status
is one the document declares. Each run is bounded by ``--max-time`` seconds; the
server is stopped at the end. Exit 1 if any run found a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PARTIES = ("admin", "funder", "supplier")
CHECKS = "not_a_server_error,status_code_conformance"


def admin(admin_url: str, sql: str) -> None:
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql.encode())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_keys(env: dict[str, str]) -> dict[str, str]:
    subprocess.run([str(BIN / "voucherledger"), "db", "upgrade"], env=env, check=True)  # noqa: S603
    printed = subprocess.run(  # noqa: S603 - our own console script
        [str(BIN / "voucherledger"), "demo"], env=env, check=True, capture_output=True, text=True
    ).stdout
    keys = dict(re.findall(r"^([A-Z]+)_KEY=(\S+)$", printed, flags=re.M))
    return {party: keys[party.upper()] for party in PARTIES}


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited before it was ready")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server was not ready within 60 s")


def fuzz(env: dict[str, str], max_time: int, seed: int | None, workdir: str) -> list[str]:
    """Serve the demo scheme and run schemathesis as each party; the parties that failed."""
    keys = demo_keys(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: S603 - our own console script
        [str(BIN / "voucherledger"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    failed = []
    try:
        wait_ready(base, server)
        for party in PARTIES:
            command = [
                str(BIN / "st"),
                "--no-color",
                "run",
                str(ROOT / "openapi" / "openapi.json"),
                "--url",
                base,
                "--header",
                f"Authorization: Bearer {keys[party]}",
                "--checks",
                CHECKS,
                "--max-time",
                str(max_time),
                "--request-timeout",
                "30",
            ]
            if seed is not None:
                command += ["--seed", str(seed)]
            print(f"== schemathesis as the {party}", flush=True)
            # From the scratch folder: schemathesis keeps a cache in the current one.
            if subprocess.run(command, check=False, cwd=workdir).returncode != 0:  # noqa: S603
                failed.append(party)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=int, default=60, help="seconds per party")
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="ADMIN_URL",
        help="fuzz a new PostgreSQL database made through this server (default: SQLite)",
    )
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    database = f"vl_fuzz_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="voucherledger-fuzz-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERLEDGER_")}
        if args.postgres:
            admin(args.postgres, f"CREATE DATABASE {database}")
            url = make_url(args.postgres).set(drivername="postgresql", database=database)
            env["VOUCHERLEDGER_DATABASE_URL"] = url.render_as_string(hide_password=False)
        else:
            env["VOUCHERLEDGER_DATABASE_URL"] = f"sqlite:///{tmp}/fuzz.db"
        env["VOUCHERLEDGER_SIGNING_KEY_FILE"] = f"{tmp}/signing-key"
        try:
            failed = fuzz(env, args.max_time, args.seed, tmp)
        finally:
            if args.postgres:
                admin(args.postgres, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    if failed:
        print(f"failures found as: {', '.join(failed)}")
        return 1
    print("no 5xx and no undocumented status")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
