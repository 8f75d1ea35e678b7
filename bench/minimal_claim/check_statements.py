"""Does the reference's ``statements`` mode still send what the service sends for one
claim? Builds a small claims template, turns ``log_statement = all`` on for a copy of
it (that database only), makes two claims through a real server (the first warms the
connection), reads the second one's statements back from PostgreSQL's log and
compares them, in order, with ``app.CLAIM_SEQUENCE``. Prints the differences and
exits 1 when there are any: then change ``app.py``'s ``S_*`` texts with the claim.

    .venv/bin/python bench/minimal_claim/check_statements.py
    .venv/bin/python bench/minimal_claim/check_statements.py --log-file /path/to/postgresql.log

It needs to read the server's log: by default the Debian cluster's
(``/var/log/postgresql/postgresql-<cluster_name>.log``), or ``pg_current_logfile()``
when the logging collector is on.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import claims  # noqa: E402
import httpx  # noqa: E402
import psycopg  # noqa: E402

from minimal_claim.app import CLAIM_SEQUENCE  # noqa: E402

# "... [pid] user@database LOG:  statement: SQL" or "... LOG:  execute <name>: SQL";
# a statement's further lines start with a tab.
LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] \S+@(\S+) LOG:  (?:statement|execute [^:]+): (.*)$")


def log_file(admin_url: str) -> Path:
    with psycopg.connect(claims.pg_dsn(admin_url), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_logfile()").fetchone()
        if row and row[0]:
            data = conn.execute("SHOW data_directory").fetchone()
            return Path(str(data[0] if data else "")) / str(row[0])
        cluster = conn.execute("SHOW cluster_name").fetchone()
    name = str(cluster[0] if cluster else "").replace("/", "-")
    return Path(f"/var/log/postgresql/postgresql-{name}.log")


def statements(text: str, database: str) -> dict[int, list[str]]:
    """Each backend's statements on ``database``, in order."""
    out: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("\t") and current is not None:
            current[-1] += "\n" + line[1:]
            continue
        match = LINE.match(line)
        if match is None or match.group(2) != database:
            current = None
            continue
        current = out.setdefault(int(match.group(1)), [])
        current.append(match.group(3))
    return out


def the_claim(by_backend: dict[int, list[str]]) -> list[str]:
    """The statements of the last transaction that inserted a claim, with the
    pre-ping just before its BEGIN."""
    for backend in by_backend.values():
        ends = [i for i, s in enumerate(backend) if s.startswith("INSERT INTO redemptions")]
        if not ends:
            continue
        end = ends[-1]
        begin = max(i for i in range(end) if backend[i] == "BEGIN")
        commit = next(i for i in range(end, len(backend)) if backend[i] == "COMMIT")
        start = begin - 1 if begin > 0 and backend[begin - 1] == ";" else begin
        return backend[start : commit + 1]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-file", type=Path, default=None)
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    log = args.log_file or log_file(args.pg_admin_url)
    bench = argparse.Namespace(
        pg_admin_url=args.pg_admin_url, concurrency=1, low_vouchers=4, high_vouchers=1, claims=10
    )
    world = claims.build_template(bench)
    name, url = claims.copy_database(bench, world, 1)
    servers: list[claims.Server] = []
    try:
        claims.admin_execute(args.pg_admin_url, f"ALTER DATABASE {name} SET log_statement = 'all'")
        servers = claims.start_servers(url, 1, Path(tempfile.gettempdir()), [], sealer=False)
        headers = {
            "Authorization": f"Bearer {world.supplier_keys[0]}",
            "Content-Type": "application/json",
        }
        for n, code in enumerate(world.codes["low"][:2]):
            answer = httpx.post(
                f"{servers[0].url}/v1/redemptions",
                content=claims.claim_body(code, 5, n),
                headers=headers,
            )
            if answer.status_code != 201:
                raise SystemExit(f"the claim answered {answer.status_code}: {answer.text}")
        time.sleep(0.5)  # the log is written by the backend, not in our order
        claims.stop_servers(servers)
        servers = []
        sent = the_claim(statements(log.read_text(errors="replace"), name))
    finally:
        claims.stop_servers(servers)
        claims.admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        claims.admin_execute(
            args.pg_admin_url, f"DROP DATABASE IF EXISTS {world.template} WITH (FORCE)"
        )
    if not sent:
        raise SystemExit(f"no claim's statements found in {log}")
    expected = list(CLAIM_SEQUENCE)
    if sent == expected:
        print(f"ok: the service's claim sends the {len(sent)} statements of app.CLAIM_SEQUENCE")
        return
    print("the service's claim (+) differs from app.CLAIM_SEQUENCE (-):")
    for line in difflib.unified_diff(expected, sent, lineterm="", n=1):
        print(line)
    sys.exit(1)


if __name__ == "__main__":
    main()
