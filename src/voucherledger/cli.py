"""The ``voucherledger`` command. Every command reads the same settings as the server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="voucherledger: run and operate the service.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _err(message: str) -> None:
    typer.echo(message, err=True)


@app.callback()
def _configure() -> None:
    # Log lines go to stderr, as in the server: stdout carries only a command's
    # result (`keys create-admin` prints nothing but the key). Unconfigured,
    # structlog prints to stdout.
    from voucherledger.core.observability import configure_logging
    from voucherledger.core.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Start the HTTP API."""
    import uvicorn

    from voucherledger.accounts.repository import any_admin_key
    from voucherledger.core.db import create_db_engine, create_session_factory
    from voucherledger.core.settings import get_settings
    from voucherledger.migrate import current_revision, head_revision

    settings = get_settings()
    engine = create_db_engine(settings.database_url, pool_size=1)
    if current_revision(engine) != head_revision():
        _err("The database is not at the latest migration: run `voucherledger db upgrade`.")
        raise typer.Exit(1)
    with create_session_factory(engine)() as session:
        has_admin = any_admin_key(session)
    engine.dispose()
    _err(
        f"voucherledger API on http://{host}:{port} (docs at /docs), "
        f"database {settings.database_url}"
    )
    if not has_admin:
        _err(
            "No admin key exists yet. Create one in another terminal with:\n"
            "    KEY=$(.venv/bin/voucherledger keys create-admin)\n"
            'then call the API with: curl -H "Authorization: Bearer $KEY" '
            f"http://{host}:{port}/v1/me"
        )
    uvicorn.run(
        "voucherledger.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations (to the latest by default)."""
    from voucherledger.core.settings import get_settings
    from voucherledger.migrate import upgrade

    url = get_settings().database_url
    upgrade(url, revision)
    _err(f"database at {revision}: {url}")


@keys_app.command("create-admin")
def create_admin(
    name: Annotated[str, typer.Option(help="Name of the admin account.")] = "Operator",
) -> None:
    """Create an admin account and print its API key (only the key, on stdout)."""
    from voucherledger.accounts.service import create_admin as make_admin
    from voucherledger.core.db import create_db_engine, create_session_factory, transaction
    from voucherledger.core.settings import get_settings

    engine = create_db_engine(get_settings().database_url, pool_size=1)
    with transaction(create_session_factory(engine)) as session:
        created = make_admin(session, name)
    engine.dispose()
    _err(f"admin account {created.account_id}, key {created.id}; the key is shown only now")
    sys.stdout.write(f"{created.key}\n")


@app.command()
def sweep(
    programme: Annotated[
        str | None, typer.Option(help="Only this programme (default: every programme).")
    ] = None,
) -> None:
    """Expire vouchers past their expiry, returning their value to the budget (for cron)."""
    from sqlalchemy import select

    from voucherledger.core.db import create_db_engine, create_session_factory, transaction, utcnow
    from voucherledger.core.settings import get_settings
    from voucherledger.programmes.models import Programme
    from voucherledger.vouchers.service import sweep_programme

    engine = create_db_engine(get_settings().database_url, pool_size=1)
    factory = create_session_factory(engine)
    with factory() as session:
        stmt = select(Programme.id).order_by(Programme.id)
        if programme is not None:
            stmt = stmt.where(Programme.id == programme)
        ids = list(session.execute(stmt).scalars())
    if programme is not None and not ids:
        _err(f"no programme {programme}")
        engine.dispose()
        raise typer.Exit(1)
    total = returned = holds = held = 0
    for programme_id in ids:
        with transaction(factory) as session:
            locked = session.get(Programme, programme_id, with_for_update=True)
            if locked is None:
                continue
            result = sweep_programme(session, locked, utcnow(), actor=None)
        total += result.expired_vouchers
        returned += result.returned_amount
        holds += result.released_holds
        held += result.released_amount
    engine.dispose()
    typer.echo(
        f"expired {total} voucher(s) in {len(ids)} programme(s); "
        f"{returned} minor units back to budgets; released {holds} timed-out hold(s) "
        f"of {held} minor units"
    )


@app.command()
def seal() -> None:
    """Seal all pending journal transactions now."""
    from voucherledger.core.db import create_db_engine, create_session_factory
    from voucherledger.core.settings import get_settings
    from voucherledger.ledger.sealer import latest_block, seal_pending
    from voucherledger.ledger.signing import load_signer

    settings = get_settings()
    engine = create_db_engine(settings.database_url, pool_size=1)
    factory = create_session_factory(engine)
    signer = load_signer(settings.signing_key, settings.signing_key_file)
    count = seal_pending(factory, signer, batch_size=settings.seal_batch_size)
    with factory() as session:
        block = latest_block(session)
    engine.dispose()
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
    """Fill a fresh database with a small demo scheme; print a key per party and what to try."""
    from voucherledger import demo as scheme
    from voucherledger.core.db import create_db_engine, create_session_factory
    from voucherledger.core.settings import get_settings
    from voucherledger.ledger.sealer import seal_pending
    from voucherledger.ledger.signing import load_signer
    from voucherledger.migrate import current_revision, head_revision

    settings = get_settings()
    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        if current_revision(engine) != head_revision():
            _err("The database is not at the latest migration: run `voucherledger db upgrade`.")
            raise typer.Exit(1)
        factory = create_session_factory(engine)
        try:
            story = scheme.populate(factory, force=force)
        except scheme.DatabaseNotEmpty as exc:
            _err(
                f"Not a fresh database: {exc} ({settings.database_url}). The demo fills an "
                "empty one; use --force to add it anyway."
            )
            raise typer.Exit(1) from None
        signer = load_signer(settings.signing_key, settings.signing_key_file)
        sealed = seal_pending(factory, signer, batch_size=settings.seal_batch_size)
    finally:
        engine.dispose()
    _err(f"demo scheme written to {settings.database_url}; sealed {sealed} transaction(s)")
    sys.stdout.write(scheme.render(story, base_url))


@app.command()
def openapi(
    check: Annotated[
        bool, typer.Option("--check", help="Only compare; exit 1 if the file is stale.")
    ] = False,
) -> None:
    """Write openapi/openapi.json from the app (with --check, fail if it differs)."""
    from voucherledger.openapi import OPENAPI_FILE, main

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
        str | None, typer.Option(help="The Ed25519 public key (hex) every signature must use.")
    ] = None,
) -> None:
    """Recompute the seal chain and every signature; exit 1 at the first fault.

    With FILE, from the export alone: no database, no server."""
    if file is not None:
        import json

        from voucherledger.ledger.verify import verify_lines

        point = json.loads(checkpoint.read_text()) if checkpoint is not None else None
        with file.open(encoding="utf-8") as handle:
            outcome = verify_lines(handle, public_key=public_key, checkpoint=point)
        if outcome.ok:
            typer.echo(f"OK {outcome.transactions} transaction(s), head {outcome.head_hash}")
            return
        typer.echo(f"FAILED at line {outcome.line}: {outcome.error}")
        raise typer.Exit(1)
    from voucherledger.core.db import create_db_engine, create_session_factory
    from voucherledger.core.settings import get_settings
    from voucherledger.ledger.verify import verify_database

    engine = create_db_engine(get_settings().database_url, pool_size=1)
    with create_session_factory(engine)() as session:
        result = verify_database(session)
    engine.dispose()
    if result.ok:
        typer.echo(f"OK {result.count} sealed transaction(s), head {result.head_hash}")
        return
    typer.echo(f"FAILED after {result.count} transaction(s): {result.error}")
    raise typer.Exit(1)
