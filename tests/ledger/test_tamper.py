"""Tamper evidence (guarantee 5): a change made behind the triggers' back is found.

Someone with the database's superuser (PostgreSQL: ``session_replication_role =
replica`` switches the triggers off for one connection) or write access to the
SQLite file (``DROP TRIGGER``) edits sealed rows; ``verify_database`` must then
fail and name the transaction whose content no longer matches its seal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, open_chart, transfer
from voucherledger.ledger.canonical import canonical_json, stored_block_object
from voucherledger.ledger.models import SealBlock, TransactionKind
from voucherledger.ledger.sealer import seal_pending
from voucherledger.ledger.signing import Signer
from voucherledger.ledger.verify import VerifyResult, verify_database

# The SQLite trigger that guards each (table, statement), as in 0001_foundation.sqlite.sql.
_SQLITE_TRIGGER_SQL = (
    "CREATE TRIGGER {table}_no_{op} BEFORE {OP} ON {table} "
    "BEGIN SELECT RAISE(ABORT, 'voucherledger: {OP} on {table} is refused: "
    "the ledger is append-only'); END"
)


@contextmanager
def bypassing_triggers(engine: Engine, table: str, op: str) -> Iterator[Connection]:
    """A committed connection on which ``op`` ('update' or 'delete') of ``table`` is
    not refused — the triggers are back afterwards."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET session_replication_role = replica")
            yield connection
            connection.exec_driver_sql("SET session_replication_role = origin")
            connection.commit()
            return
        connection.exec_driver_sql(f"DROP TRIGGER {table}_no_{op}")
        yield connection
        connection.exec_driver_sql(_SQLITE_TRIGGER_SQL.format(table=table, op=op, OP=op.upper()))
        connection.commit()


def resign_block(
    engine: Engine, factory: sessionmaker[Session], height: int, forger: Signer
) -> None:
    """Sign block ``height`` again, validly, with ``forger``'s key (a forger with a key
    of its own), past the append-only triggers."""
    with factory() as session:
        block = session.get(SealBlock, height)
        assert block is not None
        message = canonical_json(stored_block_object(block))
    with bypassing_triggers(engine, "ledger_seal_blocks", "update") as connection:
        connection.exec_driver_sql(
            f"UPDATE ledger_seal_blocks SET signature = '{forger.sign(message)}', "
            f"public_key = '{forger.public_key_hex}' WHERE height = {height}"
        )


@pytest.fixture
def sealed(session_factory: sessionmaker[Session]) -> list[str]:
    """Six transactions sealed in three blocks (plus one queued): their ids in order."""
    open_chart(
        session_factory,
        ["programme:p1:unissued", "voucher:v1", "voucher:v1:held", "supplier:s1:payable:p1"],
    )
    ids = []
    steps: list[tuple[str, str, int, TransactionKind]] = [
        ("funder:f1", "programme:p1:unissued", 10_000, "deposit"),
        ("programme:p1:unissued", "voucher:v1", 3_000, "issue"),
        ("voucher:v1", "voucher:v1:held", 1_200, "hold"),
        ("voucher:v1:held", "supplier:s1:payable:p1", 1_000, "capture"),
        ("voucher:v1:held", "voucher:v1", 200, "void"),
        ("supplier:s1:payable:p1", "voucher:v1", 100, "refund"),
    ]
    for source, target, amount, kind in steps:
        ids.append(transfer(session_factory, source, target, amount, kind=kind).transaction_id)
    assert seal_pending(session_factory, SIGNER, batch_size=2) == 6
    transfer(session_factory, "funder:f1", "programme:p1:unissued", 5, kind="deposit")
    assert _verify(session_factory).ok
    return ids


def _verify(factory: sessionmaker[Session]) -> VerifyResult:
    with factory() as session:
        return verify_database(session, public_key=SIGNER.public_key_hex)


def _sequence_of(engine: Engine, txn_id: str) -> int:
    with engine.connect() as connection:
        value = connection.exec_driver_sql(
            "SELECT sequence FROM ledger_seals WHERE transaction_id = ?"
            if engine.dialect.name == "sqlite"
            else "SELECT sequence FROM ledger_seals WHERE transaction_id = %s",
            (txn_id,),
        ).scalar_one()
    return int(value)


@pytest.mark.parametrize("victim", [0, 3, 5], ids=["first", "middle", "last"])
def test_a_changed_posting_amount_names_its_transaction(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str], victim: int
) -> None:
    txn_id = sealed[victim]
    with bypassing_triggers(engine, "ledger_postings", "update") as connection:
        changed = connection.exec_driver_sql(
            f"UPDATE ledger_postings SET amount = amount + 1 "
            f"WHERE transaction_id = '{txn_id}' AND amount > 0"
        ).rowcount
    assert changed == 1
    result = _verify(session_factory)
    assert not result.ok
    assert result.error is not None
    assert result.error.transaction_id == txn_id
    assert result.error.sequence == _sequence_of(engine, txn_id)
    assert result.count == victim  # everything before it still verifies


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("memo", "'x'"),
        ("kind", "'transfer'"),
        ("actor", "'someone else'"),
        ("idempotency_key", "'k'"),
        ("programme_id", "'p2'"),
    ],
)
def test_a_changed_transaction_field_names_its_transaction(
    engine: Engine,
    session_factory: sessionmaker[Session],
    sealed: list[str],
    column: str,
    value: str,
) -> None:
    txn_id = sealed[2]
    with bypassing_triggers(engine, "ledger_transactions", "update") as connection:
        connection.exec_driver_sql(
            f"UPDATE ledger_transactions SET {column} = {value} WHERE id = '{txn_id}'"
        )
    result = _verify(session_factory)
    assert not result.ok
    assert result.error is not None
    assert result.error.transaction_id == txn_id


def test_a_moved_timestamp_by_one_microsecond_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    txn_id = sealed[1]
    shift = (
        "created_at + interval '1 microsecond'"
        if engine.dialect.name == "postgresql"
        else "strftime('%Y-%m-%d %H:%M:%f', created_at) || '001'"
    )
    with bypassing_triggers(engine, "ledger_transactions", "update") as connection:
        before = connection.exec_driver_sql(
            f"SELECT created_at FROM ledger_transactions WHERE id = '{txn_id}'"
        ).scalar()
        connection.exec_driver_sql(
            f"UPDATE ledger_transactions SET created_at = {shift} WHERE id = '{txn_id}'"
        )
        after = connection.exec_driver_sql(
            f"SELECT created_at FROM ledger_transactions WHERE id = '{txn_id}'"
        ).scalar()
    assert before != after
    result = _verify(session_factory)
    assert result.error is not None
    assert result.error.transaction_id == txn_id


def test_a_posting_moved_to_another_account_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    txn_id = sealed[3]  # the capture: held -> payable
    with bypassing_triggers(engine, "ledger_postings", "update") as connection:
        connection.exec_driver_sql(
            f"UPDATE ledger_postings SET account_code = 'voucher:v1' "
            f"WHERE transaction_id = '{txn_id}' AND amount > 0"
        )
    result = _verify(session_factory)
    assert result.error is not None
    assert result.error.transaction_id == txn_id


def test_a_deleted_posting_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    txn_id = sealed[4]
    with bypassing_triggers(engine, "ledger_postings", "delete") as connection:
        connection.exec_driver_sql(
            f"DELETE FROM ledger_postings WHERE transaction_id = '{txn_id}' AND amount < 0"
        )
    result = _verify(session_factory)
    assert result.error is not None
    assert result.error.transaction_id == txn_id


@pytest.mark.parametrize("victim", [0, 2, 5], ids=["first", "inside-a-chain", "last"])
def test_a_deleted_seal_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str], victim: int
) -> None:
    sequence = _sequence_of(engine, sealed[victim])
    with bypassing_triggers(engine, "ledger_seals", "delete") as connection:
        assert (
            connection.exec_driver_sql(
                f"DELETE FROM ledger_seals WHERE sequence = {sequence}"
            ).rowcount
            == 1
        )
    result = _verify(session_factory)
    assert not result.ok
    assert result.error is not None
    assert result.count == victim


def test_a_deleted_sealed_transaction_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    """Removing a transaction with its postings and seal leaves a gap in the chain."""
    txn_id = sealed[2]
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET session_replication_role = replica")
        else:
            for table in ("ledger_postings", "ledger_seals", "ledger_transactions"):
                connection.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")
        connection.exec_driver_sql(f"DELETE FROM ledger_postings WHERE transaction_id = '{txn_id}'")
        connection.exec_driver_sql(f"DELETE FROM ledger_seals WHERE transaction_id = '{txn_id}'")
        connection.exec_driver_sql(f"DELETE FROM ledger_transactions WHERE id = '{txn_id}'")
        connection.commit()
    result = _verify(session_factory)
    assert not result.ok
    assert result.error is not None
    assert result.error.sequence == 4  # expected 3, found 4
    assert result.count == 2


def test_a_changed_block_signature_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    with engine.connect() as connection:
        signature = connection.exec_driver_sql(
            "SELECT signature FROM ledger_seal_blocks WHERE height = 2"
        ).scalar_one()
    flipped = ("1" if signature[10] == "0" else "0").join((signature[:10], signature[11:]))
    with bypassing_triggers(engine, "ledger_seal_blocks", "update") as connection:
        connection.exec_driver_sql(
            f"UPDATE ledger_seal_blocks SET signature = '{flipped}' WHERE height = 2"
        )
    result = _verify(session_factory)
    assert not result.ok
    assert result.error is not None
    assert "block 2 has an invalid signature" in str(result.error)
    assert result.count == 4  # found when the block's last seal was checked


def test_a_block_signed_with_another_key_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    """Re-signing a forged block needs the private key: a block signed by any other key
    fails when the verifier is given the expected public key."""
    resign_block(engine, session_factory, 1, Signer.from_seed(b"\x22" * 32))
    result = _verify(session_factory)
    assert result.error is not None
    assert "unexpected key" in str(result.error)


def test_a_changed_seal_hash_is_found(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    with bypassing_triggers(engine, "ledger_seals", "update") as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_seals SET hash = '" + "ab" * 32 + "' WHERE sequence = 3"
        )
    result = _verify(session_factory)
    assert result.error is not None
    assert result.error.transaction_id == sealed[2]


def test_a_postings_moved_timestamp_names_its_transaction(
    engine: Engine, session_factory: sessionmaker[Session], sealed: list[str]
) -> None:
    """A posting's created_at drives as-of balances; it is a copy of the sealed
    transaction's, so changing it must not go unnoticed."""
    txn_id = sealed[1]
    with bypassing_triggers(engine, "ledger_postings", "update") as connection:
        connection.exec_driver_sql(
            "UPDATE ledger_postings SET created_at = '2000-01-01 00:00:00.000000' "
            f"WHERE transaction_id = '{txn_id}'"
        )
    result = _verify(session_factory)
    assert not result.ok
    assert result.error is not None
    assert result.error.transaction_id == txn_id
