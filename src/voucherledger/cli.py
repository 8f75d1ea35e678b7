"""The ``voucherledger`` command. Every command reads the same settings as the server.

A command that needs the database first checks that it can reach it and that its
schema is at the migrations' head, and otherwise says so in one line and exits 1:
no traceback, and no empty SQLite file left behind by the attempt. The same holds
for the other faults an operator can cause: a malformed URL, a signing key that is
not one, a key file or database in a folder that cannot be written, a missing file,
a port in use.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from voucherledger.core.settings import Settings
    from voucherledger.ledger.keys import KeyRecord
    from voucherledger.ledger.signing import Signer

app = typer.Typer(
    help="voucherledger: run and operate the service.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and the ledger's signing key.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _err(message: str) -> None:
    typer.echo(message, err=True)


def main() -> None:
    """The console script: the Typer app, with database faults reported in one line."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from voucherledger.ledger.signing import SigningKeyError

    try:
        app(prog_name="voucherledger")
    except SQLAlchemyError as exc:
        _err(f"voucherledger: database error: {_one_line(exc)}")
        sys.exit(1)
    except ValidationError as exc:
        _err(f"voucherledger: invalid setting: {_one_line(exc)}")
        sys.exit(2)
    except SigningKeyError as exc:
        _err(f"voucherledger: {_one_line(exc)}")
        sys.exit(1)
    except OSError as exc:  # a file or folder the operator named cannot be used
        where = f": {exc.filename}" if exc.filename else ""
        _err(f"voucherledger: {exc.strerror or _one_line(exc)}{where}")
        sys.exit(1)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


# What PostgreSQL answers a connection beyond max_connections, a role's or a
# database's CONNECTION LIMIT, or the slots reserved for superusers (SQLSTATE 53300).
_NO_SLOTS = ("too many connections", "too many clients", "connection slots are reserved")


def _refuses_connections(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "53300":
        return True
    text = str(orig if orig is not None else exc).lower()
    return any(marker in text for marker in _NO_SLOTS)


def _detail(exc: BaseException) -> str:
    """The server's own words (after FATAL:), else the first line of the error."""
    line = _one_line(exc)
    _, fatal, said = line.partition("FATAL:")
    return said.strip() if fatal else line


def _settings() -> Settings:
    from pydantic import ValidationError

    from voucherledger.core.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        _err(f"Invalid setting: {_setting_errors(exc)}")
        raise typer.Exit(2) from None


def _setting_errors(exc: ValidationError) -> str:
    """Each refused setting and why, on one line; never the value (a URL may hold a
    password), which pydantic's own text repeats."""
    said = [
        (f"VOUCHERLEDGER_{str(error['loc'][0]).upper()}: " if error["loc"] else "")
        + str(error["msg"]).removeprefix("Value error, ")
        for error in exc.errors()
    ]
    return "; ".join(said)[:600] or _one_line(exc)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is not shown: it may hold a password
        return "(VOUCHERLEDGER_DATABASE_URL, which is not a URL)"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:  # not a URL at all; not echoed, it may hold a password
        _err(
            "Cannot use the database URL: VOUCHERLEDGER_DATABASE_URL is not a URL "
            "(sqlite:///path/to/file.db or postgresql://user@host:5432/db)."
        )
        raise typer.Exit(2) from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _engine(url: str) -> Engine:
    from voucherledger.core.db import create_db_engine

    try:
        return create_db_engine(url, pool_size=1)
    except Exception as exc:  # a malformed or unsupported URL
        _err(f"Cannot use the database URL {_shown(url)}: {_one_line(exc)}")
        raise typer.Exit(2) from None


def _signer(settings: Settings) -> Signer:
    """The signing key, loaded (or the development key generated) before anything is
    written; a key that is not one is reported in one line, exit 1."""
    from voucherledger.ledger.signing import open_signer

    try:
        loaded = open_signer(settings.signing_key, settings.signing_key_file)
    except (ValueError, OSError) as exc:
        _err(f"Invalid signing key: {exc}")
        raise typer.Exit(1) from None
    described = loaded.describe()
    if described is not None:
        _err(described)
    return loaded.signer


def key_warning(session: Session, signer: Signer) -> str | None:
    """What the server says at start when its key may not seal this chain (None if it may)."""
    from voucherledger.ledger.keys import current_key

    current = current_key(session)
    if current is None or current.public_key == signer.public_key_hex:
        return None
    return (
        f"WARNING: this server signs with key {signer.public_key_hex}, but the chain's "
        f"current signing key is {current.public_key}: nothing will be sealed. Restore that "
        "key (VOUCHERLEDGER_SIGNING_KEY or the key file), or record the new one with "
        "`voucherledger keys rotate-signing`."
    )


@contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """An engine on the configured database, which must be reachable and migrated."""
    from sqlalchemy.exc import SQLAlchemyError

    from voucherledger.ops.migrate import current_revision, head_revision

    url = settings.database_url
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        _err(
            f"No database at {path}: run `voucherledger db upgrade` first "
            "(VOUCHERLEDGER_DATABASE_URL chooses another)."
        )
        raise typer.Exit(1)
    engine = _engine(url)
    try:
        try:
            current = current_revision(engine)
        except SQLAlchemyError as exc:
            if _refuses_connections(exc):
                _err(
                    f"The database {_shown(url)} refuses connections: {_detail(exc)}; "
                    "each process opens up to pool_size + max_overflow of them "
                    "(VOUCHERLEDGER_POOL_SIZE, VOUCHERLEDGER_MAX_OVERFLOW; docs/operations.md)."
                )
            else:
                _err(f"Cannot reach the database {_shown(url)}: {_one_line(exc)}")
            raise typer.Exit(1) from None
        head = head_revision()
        if current != head:
            state = "not migrated" if current is None else f"at migration {current}, not {head}"
            _err(f"The database {_shown(url)} is {state}: run `voucherledger db upgrade`.")
            raise typer.Exit(1)
        yield engine
    finally:
        engine.dispose()


@app.callback()
def _configure() -> None:
    # Log lines go to stderr, as in the server: stdout carries only a command's
    # result (`keys create-admin` prints nothing but the key). Unconfigured,
    # structlog prints to stdout.
    from voucherledger.core.observability import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_json)


def _port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None: tried before the banner, so an
    operator is not told the API is up when it cannot be."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Start the HTTP API."""
    import uvicorn

    from voucherledger.accounts.repository import any_admin_key
    from voucherledger.core.db import create_session_factory

    settings = _settings()
    busy = _port_in_use(host, port)
    if busy is not None:
        _err(busy)
        raise typer.Exit(1)
    with _database(settings) as engine, create_session_factory(engine)() as session:
        has_admin = any_admin_key(session)
        # Loaded (a development key generated) here, once, so that every worker
        # finds the same key file.
        signer = _signer(settings)
        warning = key_warning(session, signer)
    _err(
        f"voucherledger API on http://{host}:{port} (docs at /docs), "
        f"database {_shown(settings.database_url)}"
    )
    if warning is not None:
        _err(warning)
    if settings.webhook_allow_insecure_urls:
        _err(
            "Webhook URLs over plain http and to private addresses are allowed "
            "(VOUCHERLEDGER_WEBHOOK_ALLOW_INSECURE_URLS): for development only."
        )
    if not has_admin:
        _err(
            "No admin key exists yet. Create one in another terminal with:\n"
            "    KEY=$(.venv/bin/voucherledger keys create-admin)\n"
            'then call the API with: curl -H "Authorization: Bearer $KEY" '
            f"http://{host}:{port}/v1/me"
        )
    _err(
        f"The web console is at http://{host}:{port}/console: people sign in there (or with "
        "POST /v1/sessions) once the admin or an owner has invited them. For a scheme with "
        "printed sign-ins to try, run `.venv/bin/voucherledger demo` in another terminal."
    )
    if workers > 1:
        import os

        from voucherledger.ops.supervision import SUPERVISOR_ENV

        # The workers inherit it and exit if this process dies (ops/supervision.py).
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
    uvicorn.run(
        "voucherledger.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,  # the app logs one line per request itself
        server_header=False,  # no "server: uvicorn" banner
        # What the h11 parser buffers before a request reaches the app; the app itself
        # answers 431 above the same limit (docs/operations.md#running-the-server).
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations (to the latest by default); creates a missing SQLite file."""
    from sqlalchemy.exc import SQLAlchemyError

    from voucherledger.ops.migrate import upgrade

    url = _settings().database_url
    _engine(url).dispose()  # refuses a malformed or unsupported URL in one line
    path = _sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        why = (
            f"{path.parent} is not a folder"
            if path.parent.exists()
            else f"the folder {path.parent} does not exist"
        )
        _err(f"Cannot create the database {path}: {why}.")
        raise typer.Exit(1)
    try:
        upgrade(url, revision)
    except SQLAlchemyError as exc:
        _err(f"Cannot migrate the database {_shown(url)}: {_one_line(exc)}")
        raise typer.Exit(1) from None
    _err(f"database at {revision}: {_shown(url)}")


@keys_app.command("create-admin")
def create_admin(
    name: Annotated[str, typer.Option(help="Name of the admin account.")] = "Operator",
) -> None:
    """Create an admin account and print its API key (only the key, on stdout)."""
    from voucherledger.accounts.service import create_admin as make_admin
    from voucherledger.core.db import create_session_factory, transaction

    with _database(_settings()) as engine:
        with transaction(create_session_factory(engine)) as session:
            created = make_admin(session, name)
    _err(f"admin account {created.account_id}, key {created.id}; the key is shown only now")
    sys.stdout.write(f"{created.key}\n")


@keys_app.command("rotate-signing")
def rotate_signing(
    previous_key_file: Annotated[
        Path | None,
        typer.Option(help="A file holding the previous signing key, which endorses the new one."),
    ] = None,
    previous_key: Annotated[
        str | None,
        typer.Option(
            help="The previous signing key itself (hex or base64); prefer --previous-key-file, "
            "which keeps it out of the process list."
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(help="Without the previous key: why it is not available (recorded)."),
    ] = None,
) -> None:
    """Record this process's signing key as the chain's key from the next block on.

    The previous key endorses the new one when given; otherwise --reason says why it
    cannot, and verify shows the new key as not endorsed."""
    from voucherledger.core.db import create_session_factory, transaction
    from voucherledger.ledger.errors import KeyRotationRefused
    from voucherledger.ledger.sealer import rotate_signing_key
    from voucherledger.ledger.signing import read_key_file, seed_signer

    if previous_key_file is not None and previous_key is not None:
        _err("Give the previous key once: --previous-key-file or --previous-key.")
        raise typer.Exit(2)
    previous: Signer | None = None
    try:
        if previous_key_file is not None:
            previous = read_key_file(previous_key_file.expanduser().resolve())
        elif previous_key is not None:
            previous = seed_signer(previous_key)
    except ValueError as exc:
        _err(f"Invalid previous key: {exc}")
        raise typer.Exit(2) from None
    settings = _settings()
    with _database(settings) as engine:
        signer = _signer(settings)
        try:
            with transaction(create_session_factory(engine)) as session:
                rotation = rotate_signing_key(session, signer, previous=previous, reason=reason)
        except KeyRotationRefused as exc:
            _err(f"Rotation refused: {exc}")
            raise typer.Exit(1) from None
    record = rotation.record
    if rotation.already_current:
        typer.echo(f"key {record.public_key} is already the chain's signing key; nothing recorded")
        return
    if rotation.previous is None:
        how = "the chain's first key"
    elif record.endorsement is not None:
        how = f"endorsed by {rotation.previous.public_key}"
    else:
        how = f"not endorsed: {record.unendorsed_reason}"
    typer.echo(f"recorded signing key {record.public_key} from block {record.first_height} ({how})")


@app.command()
def sweep(
    programme: Annotated[
        str | None, typer.Option(help="Only this programme (default: every programme).")
    ] = None,
) -> None:
    """Expire vouchers past their expiry and release timed-out holds (for cron)."""
    from voucherledger.core.db import create_session_factory
    from voucherledger.programmes import repository as programmes_repo
    from voucherledger.sweep.service import sweep_all

    with _database(_settings()) as engine:
        factory = create_session_factory(engine)
        with factory() as session:
            ids = programmes_repo.ids(session, only=programme)
        if programme is not None and not ids:
            _err(f"no programme {programme}")
            raise typer.Exit(1)
        total = returned = holds = held = 0
        for _programme_id, result in sweep_all(factory, ids):
            total += result.expired_vouchers
            returned += result.returned_amount
            holds += result.released_holds
            held += result.released_amount
    typer.echo(
        f"expired {total} voucher(s) in {len(ids)} programme(s); "
        f"{returned} minor units back to budgets; released {holds} timed-out hold(s) "
        f"of {held} minor units"
    )


@app.command()
def deliver(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
) -> None:
    """Deliver webhooks: a worker of its own (run it with webhook_delivery_enabled=false
    in the servers, or beside them); runs until SIGTERM or Ctrl-C."""
    import signal

    from voucherledger.core.db import create_session_factory
    from voucherledger.webhooks.deliver import BackgroundDeliverer, deliver_due

    settings = _settings()
    with _database(settings) as engine:
        factory = create_session_factory(engine)
        if once:
            count = deliver_due(factory, settings)
            typer.echo(f"made {count} delivery attempt(s)")
            return
        worker = BackgroundDeliverer(factory, settings)
        signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
        try:
            worker.run()
        except KeyboardInterrupt:
            pass


@app.command()
def seal() -> None:
    """Seal all pending journal transactions now."""
    from voucherledger.core.db import create_session_factory
    from voucherledger.ledger.errors import SigningKeyNotRecorded
    from voucherledger.ledger.sealer import latest_block, seal_pending

    settings = _settings()
    with _database(settings) as engine:
        factory = create_session_factory(engine)
        signer = _signer(settings)
        try:
            count = seal_pending(factory, signer, batch_size=settings.seal_batch_size)
        except SigningKeyNotRecorded as exc:
            _err(str(exc))
            raise typer.Exit(1) from None
        with factory() as session:
            block = latest_block(session)
    head = (
        f"height {block.height}, sequence {block.last_sequence}, hash {block.hash}"
        if block
        else "empty chain"
    )
    typer.echo(f"sealed {count} transaction(s); head: {head}")


@app.command()
def demo(
    base_url: Annotated[
        str, typer.Option(help="Where the API will be reached, for the curl commands.")
    ] = "http://127.0.0.1:8000",
    force: Annotated[
        bool, typer.Option("--force", help="Run even if the database already has accounts.")
    ] = False,
) -> None:
    """Fill a fresh database with a small demo scheme; print a key per party and what to
    try, and console sign-ins for a person of every party."""
    from voucherledger.core.db import create_session_factory
    from voucherledger.ledger.errors import SigningKeyNotRecorded
    from voucherledger.ledger.keys import current_key
    from voucherledger.ledger.sealer import seal_pending
    from voucherledger.ops import demo as scheme
    from voucherledger.people.passwords import passwords_for

    settings = _settings()
    with _database(settings) as engine:
        factory = create_session_factory(engine)
        # Before writing anything: a bad key, or one that may not seal this chain,
        # leaves the database as it was.
        signer = _signer(settings)
        with factory() as session:
            current = current_key(session)
        if current is not None and current.public_key != signer.public_key_hex:
            _err(
                str(
                    SigningKeyNotRecorded(
                        signer.public_key_hex, current.public_key, current.first_height
                    )
                )
            )
            raise typer.Exit(1)
        try:
            story = scheme.populate(factory, passwords_for(settings), force=force)
        except scheme.DatabaseNotEmpty as exc:
            _err(
                f"Not a fresh database: {exc} ({_shown(settings.database_url)}). The demo "
                "fills an empty one; use --force to add it anyway."
            )
            raise typer.Exit(1) from None
        sealed = seal_pending(factory, signer, batch_size=settings.seal_batch_size)
    _err(f"demo scheme written to {_shown(settings.database_url)}; sealed {sealed} transaction(s)")
    sys.stdout.write(scheme.render(story, base_url))


@app.command()
def openapi(
    check: Annotated[
        bool, typer.Option("--check", help="Only compare; exit 1 if the file is stale.")
    ] = False,
) -> None:
    """Write openapi/openapi.json from the app (with --check, fail if it differs)."""
    from voucherledger.ops.openapi import OPENAPI_FILE, main

    code = main(check=check)
    if code:
        raise typer.Exit(code)
    if not check:
        _err(f"wrote {OPENAPI_FILE}")


@app.command()
def verify(
    file: Annotated[
        Path | None, typer.Argument(help="A jsonl export; omit to verify the database.")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A checkpoint (GET /v1/audit/checkpoint) the file must contain."),
    ] = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            help="An Ed25519 public key (hex) trusted to sign; give it once per key. Every "
            "block and the manifest must be signed by one of them."
        ),
    ] = None,
    key_history: Annotated[
        Path | None,
        typer.Option(
            help="With FILE: a trusted signing key history (JSON: the signing_keys list of an "
            "earlier export's manifest, or that manifest line); each block must be signed by "
            "the key it names for that height."
        ),
    ] = None,
) -> None:
    """Recompute the seal chain and every signature; exit 1 at the first fault.

    With FILE, from the export alone: no database, no server. Lists the keys that
    signed the chain and their blocks; on the database, also how many transactions
    are not yet sealed."""
    if file is not None:
        import json

        from voucherledger.ledger.verify import verify_file

        for given in (file, checkpoint, key_history):
            if given is not None and not given.is_file():
                _err(f"No such file: {given}")
                raise typer.Exit(2)
        try:
            point = json.loads(checkpoint.read_text()) if checkpoint is not None else None
        except ValueError as exc:
            _err(f"The checkpoint {checkpoint} is not JSON: {_one_line(exc)}")
            raise typer.Exit(2) from None
        if point is not None and not (
            isinstance(point, dict) and isinstance(point.get("public_key"), str)
        ):
            _err(f"The checkpoint {checkpoint} is not one: expected an object with a public_key")
            raise typer.Exit(2)
        history = _key_history_file(key_history) if key_history is not None else None
        outcome = verify_file(file, public_keys=public_key, checkpoint=point, key_history=history)
        if outcome.ok:
            typer.echo(f"OK {outcome.transactions} transaction(s), head {outcome.head_hash}")
            for key_range in outcome.keys:
                typer.echo(key_range.describe())
            return
        typer.echo(f"FAILED at line {outcome.line}: {outcome.error}")
        raise typer.Exit(1)
    from voucherledger.core.db import create_session_factory
    from voucherledger.ledger.verify import verify_database

    with _database(_settings()) as engine, create_session_factory(engine)() as session:
        result = verify_database(session, public_keys=public_key)
    if result.ok:
        typer.echo(f"OK {result.count} sealed transaction(s), head {result.head_hash}")
        for key_range in result.keys:
            typer.echo(key_range.describe())
        typer.echo(f"{result.unsealed} transaction(s) not yet sealed")
        return
    typer.echo(f"FAILED after {result.count} transaction(s): {result.error}")
    raise typer.Exit(1)


def _key_history_file(path: Path) -> list[KeyRecord]:
    """The entries of a key history file: a list of them, or an object (a manifest line)
    with a ``signing_keys`` list. Anything else: one line, exit 2."""
    import json

    from voucherledger.ledger.keys import KeyRecord

    try:
        data = json.loads(path.read_text())
        entries = data.get("signing_keys") if isinstance(data, dict) else data
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("expected a list of signing keys, or an object with signing_keys")
        return [KeyRecord.from_line(entry) for entry in entries]
    except ValueError as exc:
        _err(f"The key history {path} is not one: {_one_line(exc)}")
        raise typer.Exit(2) from None
