"""The peer of ``bench/ledger_write.py``: django-hordak's ``Account.transfer_to`` on
PostgreSQL, in writer processes, transfers per second.

django-hordak is the double-entry ledger a Django shop would pick instead of ours
(its database enforces that each transaction's legs balance). This script runs it in
its own venv, ``bench/hordak/.venv`` (git-ignored), built from
``bench/hordak/requirements.txt`` the first time: started with any other Python it
builds that venv if it is missing and runs itself again there.

A run makes a fresh database (``vl_bench_hordak_<pid>_<n>``, dropped afterwards) with a
minimal Django project (``configure_django``: contenttypes, mptt, djmoney, hordak) and
hordak's own migrations, opens ``--accounts`` asset accounts and one equity account
that funds each of them with one ``transfer_to``; then ``--processes`` spawned writers
(one connection each) make ``--transfers`` transfers between random pairs, 0.01-1.00
EUR each, each its own committed transaction, as ``ledger_write.py``'s writers do:

- ``unchecked``: ``a.transfer_to(b, amount)``, hordak's one write call: a transaction
  row and two legs; nothing stops an account going below zero;
- ``checked``: what it takes with hordak not to overspend: in one ``atomic()`` block
  the source account is locked (``select_for_update(no_key=True)``), its balance
  summed from its legs (``get_balance()``), and only then ``transfer_to`` (a savepoint
  inside the block). Ours checks the balance in its guarded UPDATE.

At the end the legs are checked: two per transaction, debits equal to credits, one
transaction per transfer made and no account below zero after the checked runs.

    python bench/hordak/hordak_bench.py --transfers 2000 --processes 4
    python bench/hordak/hordak_bench.py --variants unchecked --json   # for ledger_write.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements.txt"
FUNDING = 10_000_000  # minor units per account: transfers of 1..100 never run one dry
RESULT_PREFIX = "HORDAK_RESULT "


# --- the venv ------------------------------------------------------------------------


def venv_python() -> Path:
    return VENV / "bin" / "python"


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> Path:
    """bench/hordak/.venv with Django and django-hordak, built once (about a minute)."""
    python = venv_python()
    stamp = VENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == REQUIREMENTS.read_text():
        return python
    print(f"building {VENV} from {REQUIREMENTS.name} (once)", file=sys.stderr, flush=True)
    if not python.exists():
        subprocess.run(  # noqa: S603 - fixed arguments
            [sys.executable, "-m", "venv", str(VENV)], check=True
        )
    subprocess.run(  # noqa: S603 - fixed arguments
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )
    stamp.write_text(REQUIREMENTS.read_text())
    return python


# --- Django ----------------------------------------------------------------------------


def configure_django(dsn: dict[str, Any]) -> None:
    """The minimal Django project: the apps hordak needs, one PostgreSQL database."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        SECRET_KEY="bench-only",  # noqa: S106 - no request is ever served
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "mptt",
            "djmoney",
            "hordak",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", **dsn}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        DEFAULT_CURRENCY="EUR",
        CURRENCIES=["EUR"],
        HORDAK_CURRENCIES=["EUR"],
        LOGGING_CONFIG=None,
    )
    django.setup()


def database_settings(admin_url: str, name: str) -> dict[str, Any]:
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    return {
        "NAME": name,
        "USER": info.get("user", "postgres"),
        "PASSWORD": info.get("password", ""),
        "HOST": info.get("host", "127.0.0.1"),
        "PORT": str(info.get("port", "5432")),
    }


def admin_execute(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def money(minor: int) -> Any:
    from decimal import Decimal

    from moneyed import Money

    return Money(Decimal(minor).scaleb(-2), "EUR")


def build(accounts: int) -> list[int]:
    """hordak's migrations, then the accounts, each funded by one transfer; their ids."""
    from django.core.management import call_command
    from hordak.models import Account, AccountType

    call_command("migrate", verbosity=0)
    funder = Account.objects.create(name="Bench funder", type=AccountType.equity, code="9")
    ids = []
    for i in range(accounts):
        # Root accounts: mptt renumbers a tree on each child added; a voucher has none.
        account = Account.objects.create(
            name=f"Voucher {i}", type=AccountType.asset, code=f"{i:05d}"
        )
        funder.transfer_to(account, money(FUNDING), description="bench funding")
        ids.append(account.pk)
    # equity -> asset increases both: the voucher accounts start at FUNDING.
    first = Account.objects.get(pk=ids[0]).get_balance()
    if first != _balance(FUNDING):
        raise RuntimeError(f"a funded account holds {first}, not {FUNDING} minor units")
    return ids


def _balance(minor: int) -> Any:
    from hordak.utilities.currency import Balance

    return Balance([money(minor)])


# --- writers ---------------------------------------------------------------------------


def writer(
    dsn: dict[str, Any],
    variant: str,
    worker: int,
    count: int,
    ids: list[int],
    seed: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    configure_django(dsn)
    from django.db import OperationalError, connection, transaction
    from hordak.models import Account

    accounts = {a.pk: a for a in Account.objects.filter(pk__in=ids)}
    connection.ensure_connection()
    rng = random.Random(seed * 1000 + worker)
    plan = [(*rng.sample(ids, 2), rng.randint(1, 100)) for _ in range(count)]
    latencies: array[float] = array("d")
    refused = retried = 0
    clock = time.perf_counter
    ready.release()
    go.wait()
    cpu = time.process_time()
    for a, b, minor in plan:
        amount = money(minor)
        started = clock()
        while True:
            try:
                if variant == "unchecked":
                    accounts[a].transfer_to(accounts[b], amount)
                else:
                    with transaction.atomic():
                        source = Account.objects.select_for_update(no_key=True).get(pk=a)
                        if source.get_balance() < amount:
                            refused += 1
                        else:
                            source.transfer_to(accounts[b], amount)
                break
            except OperationalError:  # a deadlock or a serialisation failure: again
                retried += 1
        latencies.append(clock() - started)
    results.put((latencies.tobytes(), refused, retried, clock(), time.process_time() - cpu, worker))
    connection.close()


@dataclass
class Result:
    variant: str
    processes: int
    transfers: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    python_cpu_us: float
    refused: int
    retried: int
    check: str


def check_legs(expected: int, variant: str) -> str:
    from django.db.models import Sum
    from hordak.models import Account, Leg, Transaction

    transactions = Transaction.objects.count()
    legs = Leg.objects.count()
    sums = Leg.objects.aggregate(debit=Sum("debit"), credit=Sum("credit"))
    if transactions != expected:
        return f"FAILED: {transactions} transactions, {expected} expected"
    if legs != 2 * transactions:
        return f"FAILED: {legs} legs for {transactions} transactions"
    if sums["debit"] != sums["credit"]:
        return f"FAILED: debits {sums['debit']} != credits {sums['credit']}"
    if variant == "checked":
        zero = _balance(0)
        for account in Account.objects.filter(type="AS"):
            if account.get_balance() < zero:
                return f"FAILED: account {account.pk} below zero"
    return f"ok ({transactions} transactions)"


def run_variant(args: argparse.Namespace, variant: str, n: int) -> Result:
    name = f"vl_bench_hordak_{os.getpid()}_{n}"
    admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name}")
    admin_execute(args.pg_admin_url, f"CREATE DATABASE {name}")
    dsn = database_settings(args.pg_admin_url, name)
    ctx = mp.get_context("spawn")
    try:
        # The parent builds the database in a process of its own, so that it can run
        # Django once per database (settings are configured once per process).
        with ctx.Pool(1) as pool:
            ids: list[int] = pool.apply(_build_in_process, (dsn, args.accounts))
        per = [
            args.transfers // args.processes + (1 if w < args.transfers % args.processes else 0)
            for w in range(args.processes)
        ]
        ready = ctx.Semaphore(0)
        go = ctx.Event()
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=writer,
                args=(dsn, variant, w, per[w], ids, args.seed + n, ready, go, results),
            )
            for w in range(args.processes)
        ]
        for proc in procs:
            proc.start()
        for _ in procs:
            ready.acquire()
        started = time.perf_counter()
        go.set()
        latencies: list[float] = []
        refused = retried = 0
        cpu = 0.0
        ended = started
        for _ in procs:
            raw, ref, ret, finished, used, _worker = results.get(timeout=3600)
            got: array[float] = array("d")
            got.frombytes(raw)
            latencies.extend(got)
            refused += ref
            retried += ret
            cpu += used
            ended = max(ended, finished)
        for proc in procs:
            proc.join()
            if proc.exitcode != 0:
                raise RuntimeError(f"a writer exited with {proc.exitcode}")
        with ctx.Pool(1) as pool:
            check = pool.apply(
                _check_in_process, (dsn, args.accounts + args.transfers - refused, variant)
            )
        seconds = ended - started
        made = args.transfers - refused
        ordered = sorted(latencies)
        return Result(
            variant,
            args.processes,
            made,
            seconds,
            made / seconds,
            statistics.median(ordered) * 1000,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            cpu / args.transfers * 1e6,
            refused,
            retried,
            check,
        )
    finally:
        admin_execute(args.pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _build_in_process(dsn: dict[str, Any], accounts: int) -> list[int]:
    configure_django(dsn)
    return build(accounts)


def _check_in_process(dsn: dict[str, Any], expected: int, variant: str) -> str:
    configure_django(dsn)
    return check_legs(expected, variant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=20_000, help="per variant")
    parser.add_argument("--processes", type=int, default=4, help="writer processes")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--variants", default="unchecked,checked")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help=f"also print {RESULT_PREFIX}lines")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "VOUCHERLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    if not in_venv():
        python = ensure_venv()
        os.execv(python, [str(python), __file__, *sys.argv[1:]])  # noqa: S606 - our own script
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    for variant in variants:
        if variant not in ("unchecked", "checked"):
            parser.error(f"--variants: {variant!r} is neither unchecked nor checked")
    import django

    print(
        f"django-hordak {_version('django-hordak')}, "
        f"Django {django.get_version()}; {args.transfers} transfers per variant, "
        f"{args.processes} writer processes, {args.accounts} accounts",
        flush=True,
    )
    for n, variant in enumerate(variants, start=1):
        result = run_variant(args, variant, n)
        print(
            f"  hordak {variant}, {result.processes} processes: {result.per_second:,.0f}/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"py CPU {result.python_cpu_us:.0f} us/tr, refused {result.refused}, "
            f"retried {result.retried}, {result.check}",
            flush=True,
        )
        if args.json:
            print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
