"""The signing key history (docs/ledger-format.md#signing-keys): which keys signed the
chain, from which block. A process whose key is not the last recorded one does not
seal; a new key is recorded by a rotation, endorsed by the previous key where that
key is still at hand; verify names every key and its blocks, and finds a forged or
edited history."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, open_chart, transfer
from tests.ledger.test_tamper import bypassing_triggers, resign_block
from voucherledger.core.db import transaction
from voucherledger.ledger.errors import KeyRotationRefused, SigningKeyNotRecorded
from voucherledger.ledger.keys import key_history
from voucherledger.ledger.models import SealBlock, SealQueue
from voucherledger.ledger.sealer import rotate_signing_key, seal_pending
from voucherledger.ledger.signing import Signer
from voucherledger.ledger.verify import KeyRange, VerifyResult, verify_database

NEW = Signer.from_seed(b"\x33" * 32)
OTHER = Signer.from_seed(b"\x44" * 32)


def _deposit(factory: sessionmaker[Session], amount: int = 100) -> None:
    transfer(factory, "funder:f1", "programme:p1:unissued", amount, kind="deposit")


def _verify(factory: sessionmaker[Session]) -> VerifyResult:
    with factory() as session:
        return verify_database(session)


def _counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as session:
        blocks = session.execute(select(func.count()).select_from(SealBlock)).scalar_one()
        queued = session.execute(select(func.count()).select_from(SealQueue)).scalar_one()
    return blocks, queued


@pytest.fixture
def chain(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Three transactions sealed by SIGNER in two blocks."""
    open_chart(session_factory, ["programme:p1:unissued"])
    _deposit(session_factory)
    _deposit(session_factory)
    assert seal_pending(session_factory, SIGNER) == 2
    _deposit(session_factory)
    assert seal_pending(session_factory, SIGNER) == 1
    return session_factory


def test_the_first_seal_records_its_key(chain: sessionmaker[Session]) -> None:
    with chain() as session:
        history = key_history(session)
    assert [(k.position, k.public_key, k.first_height) for k in history] == [
        (1, SIGNER.public_key_hex, 1)
    ]
    result = _verify(chain)
    assert result.ok, result.error
    assert result.keys == [KeyRange(SIGNER.public_key_hex, 1, 2, None, None)]


def test_another_key_is_refused_and_nothing_is_sealed(chain: sessionmaker[Session]) -> None:
    """A lost development key file means a new key: it must not sign the same chain."""
    _deposit(chain)
    before = _counts(chain)
    with pytest.raises(SigningKeyNotRecorded) as refused:
        seal_pending(chain, NEW)
    message = str(refused.value)
    assert NEW.public_key_hex in message
    assert SIGNER.public_key_hex in message
    assert "voucherledger keys rotate-signing" in message
    assert _counts(chain) == before == (2, 1)
    # Nothing queued changes nothing: the refusal comes before looking at the queue.
    assert seal_pending(chain, SIGNER) == 1
    with pytest.raises(SigningKeyNotRecorded):
        seal_pending(chain, NEW)


def test_an_endorsed_rotation_then_seals_and_verify_lists_both_keys(
    chain: sessionmaker[Session],
) -> None:
    with transaction(chain) as session:
        rotation = rotate_signing_key(session, NEW, previous=SIGNER, reason=None)
    assert rotation.record.first_height == 3
    assert rotation.previous is not None
    assert rotation.previous.public_key == SIGNER.public_key_hex
    with pytest.raises(SigningKeyNotRecorded):
        seal_pending(chain, SIGNER)  # the old key is retired
    _deposit(chain)
    _deposit(chain)
    assert seal_pending(chain, NEW, batch_size=1) == 2
    result = _verify(chain)
    assert result.ok, result.error
    assert result.keys == [
        KeyRange(SIGNER.public_key_hex, 1, 2, None, None),
        KeyRange(NEW.public_key_hex, 3, 4, SIGNER.public_key_hex, None),
    ]
    assert result.unsealed == 0


def test_an_unendorsed_rotation_needs_a_reason_and_is_shown(
    chain: sessionmaker[Session],
) -> None:
    with transaction(chain) as session, pytest.raises(KeyRotationRefused, match="reason"):
        rotate_signing_key(session, NEW, previous=None, reason=None)
    with transaction(chain) as session:
        rotate_signing_key(session, NEW, previous=None, reason="old laptop stolen")
    result = _verify(chain)
    assert result.ok, result.error
    assert result.keys[1] == KeyRange(NEW.public_key_hex, None, None, None, "old laptop stolen")


def test_a_rotation_with_the_wrong_previous_key_or_an_old_key_is_refused(
    chain: sessionmaker[Session],
) -> None:
    with transaction(chain) as session, pytest.raises(KeyRotationRefused, match="previous"):
        rotate_signing_key(session, NEW, previous=OTHER, reason=None)
    with transaction(chain) as session:
        rotate_signing_key(session, NEW, previous=SIGNER, reason=None)
    with transaction(chain) as session, pytest.raises(KeyRotationRefused, match="never"):
        rotate_signing_key(session, SIGNER, previous=NEW, reason=None)
    with chain() as session:
        assert [k.public_key for k in key_history(session)] == [
            SIGNER.public_key_hex,
            NEW.public_key_hex,
        ]
    with transaction(chain) as session:
        assert rotate_signing_key(session, NEW, previous=None, reason=None).already_current


def test_verify_counts_the_transactions_not_yet_sealed(chain: sessionmaker[Session]) -> None:
    _deposit(chain)
    _deposit(chain)
    result = _verify(chain)
    assert result.ok, result.error
    assert result.unsealed == 2


def test_the_database_refuses_to_change_the_history(
    engine: Engine, chain: sessionmaker[Session]
) -> None:
    for statement in (
        "UPDATE ledger_signing_keys SET first_height = 2",
        "DELETE FROM ledger_signing_keys",
    ):
        with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                connection.exec_driver_sql(statement)
            connection.rollback()


def test_a_deleted_rotation_is_found(engine: Engine, chain: sessionmaker[Session]) -> None:
    with transaction(chain) as session:
        rotate_signing_key(session, NEW, previous=SIGNER, reason=None)
    _deposit(chain)
    seal_pending(chain, NEW)
    with bypassing_triggers(engine, "ledger_signing_keys", "delete") as connection:
        connection.exec_driver_sql(
            f"DELETE FROM ledger_signing_keys WHERE public_key = '{NEW.public_key_hex}'"
        )
    result = _verify(chain)
    assert not result.ok
    assert "block 3" in str(result.error)
    assert "key history" in str(result.error)


def test_a_forged_endorsement_is_found(engine: Engine, chain: sessionmaker[Session]) -> None:
    """Someone who replaced the key and wrote themselves an endorsement with their own
    key: the endorsement must verify under the previous key."""
    with transaction(chain) as session:
        rotate_signing_key(session, NEW, previous=SIGNER, reason=None)
    forged = OTHER.sign(b"anything")
    with bypassing_triggers(engine, "ledger_signing_keys", "update") as connection:
        connection.exec_driver_sql(
            f"UPDATE ledger_signing_keys SET endorsement = '{forged}' "
            f"WHERE public_key = '{NEW.public_key_hex}'"
        )
    result = _verify(chain)
    assert not result.ok
    assert "endorsement" in str(result.error)


def test_a_block_signed_by_a_key_outside_the_history_is_found(
    engine: Engine, chain: sessionmaker[Session]
) -> None:
    """A block re-signed (validly) by a key the history does not name for it."""
    resign_block(engine, chain, 2, OTHER)
    result = _verify(chain)
    assert not result.ok
    assert "block 2" in str(result.error)
    assert "key history" in str(result.error)


def test_the_background_sealer_logs_the_refusal_once_and_seals_nothing(
    chain: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from structlog.testing import capture_logs

    from voucherledger.ledger import sealer as sealer_module

    _deposit(chain)
    attempts = threading.Semaphore(0)
    real = sealer_module.seal_pending

    def counted(*args: Any, **kwargs: Any) -> int:
        try:
            return real(*args, **kwargs)
        finally:
            attempts.release()

    monkeypatch.setattr(sealer_module, "seal_pending", counted)
    background = sealer_module.BackgroundSealer(chain, NEW, interval=0.01, batch_size=10)
    with capture_logs() as logs:
        background.start()
        try:
            for _ in range(3):  # three rounds, each refused
                assert attempts.acquire(timeout=30)
        finally:
            background.stop()
    refusals = [entry for entry in logs if entry["event"] == "sealing_refused"]
    assert len(refusals) == 1  # once, not every interval
    assert NEW.public_key_hex in refusals[0]["reason"]
    assert _counts(chain) == (2, 1)
