"""The jsonl export carries the signing key history in its manifest, and the offline
verifier checks every block against it and against the keys the auditor trusts
(``--public-key``, any number of them); exports made before the history existed
still verify."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories.ledger import SIGNER, open_chart, transfer
from voucherledger.core.db import transaction
from voucherledger.ledger.canonical import canonical_json
from voucherledger.ledger.export import Scope, chain_lines, unsigned_manifest
from voucherledger.ledger.sealer import rotate_signing_key, seal_pending
from voucherledger.ledger.signing import Signer
from voucherledger.ledger.verify import KeyRange, verify_lines

NEW = Signer.from_seed(b"\x33" * 32)
OTHER = Signer.from_seed(b"\x44" * 32)


@pytest.fixture
def rotated(session_factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Blocks 1-2 signed by SIGNER, then an endorsed rotation, blocks 3-4 by NEW; the
    export's lines (as dicts), signed by NEW."""
    open_chart(session_factory, ["programme:p1:unissued"])
    for _ in range(2):
        transfer(session_factory, "funder:f1", "programme:p1:unissued", 10, kind="deposit")
    seal_pending(session_factory, SIGNER, batch_size=1)
    with transaction(session_factory) as session:
        rotate_signing_key(session, NEW, previous=SIGNER, reason=None)
    for _ in range(2):
        transfer(session_factory, "funder:f1", "programme:p1:unissued", 10, kind="deposit")
    seal_pending(session_factory, NEW, batch_size=1)
    return list(chain_lines(session_factory, Scope(None), NEW))


def _texts(lines: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(line) for line in lines]


def _resigned(lines: list[dict[str, Any]], signer: Signer, **changes: Any) -> list[dict[str, Any]]:
    manifest = {**lines[-1], **changes}
    manifest = {k: v for k, v in manifest.items() if v is not _DROP}
    manifest["signature"] = signer.sign(canonical_json(unsigned_manifest(manifest)))
    return [*lines[:-1], manifest]


_DROP = object()


def test_the_manifest_carries_the_history_and_verify_lists_the_keys(
    rotated: list[dict[str, Any]],
) -> None:
    history = rotated[-1]["signing_keys"]
    assert [(k["public_key"], k["first_height"]) for k in history] == [
        (SIGNER.public_key_hex, 1),
        (NEW.public_key_hex, 3),
    ]
    result = verify_lines(iter(_texts(rotated)))
    assert result.ok, result.error
    assert result.keys == [
        KeyRange(SIGNER.public_key_hex, 1, 2, None, None),
        KeyRange(NEW.public_key_hex, 3, 4, SIGNER.public_key_hex, None),
    ]


def test_several_trusted_public_keys(rotated: list[dict[str, Any]]) -> None:
    both = verify_lines(
        iter(_texts(rotated)), public_keys=[SIGNER.public_key_hex, NEW.public_key_hex]
    )
    assert both.ok, both.error
    only_old = verify_lines(iter(_texts(rotated)), public_keys=[SIGNER.public_key_hex])
    assert not only_old.ok
    assert "block 3" in str(only_old.error)
    assert "unexpected key" in str(only_old.error)


def test_a_history_edited_in_the_file_is_found(rotated: list[dict[str, Any]]) -> None:
    """Whoever re-signs the manifest (say, with the new key) cannot drop the rotation
    or forge its endorsement unseen."""
    history = rotated[-1]["signing_keys"]
    dropped = verify_lines(iter(_texts(_resigned(rotated, NEW, signing_keys=history[:1]))))
    assert not dropped.ok
    assert "block 3" in str(dropped.error)
    assert "key history" in str(dropped.error)
    forged = [history[0], {**history[1], "endorsement": NEW.sign(b"self-endorsed")}]
    endorsed = verify_lines(iter(_texts(_resigned(rotated, NEW, signing_keys=forged))))
    assert not endorsed.ok
    assert "endorsement" in str(endorsed.error)


def test_an_export_without_a_history_still_verifies(rotated: list[dict[str, Any]]) -> None:
    """As exported before the history existed: the keys come from the blocks alone."""
    old = _resigned(rotated, NEW, signing_keys=_DROP)
    assert "signing_keys" not in old[-1]
    result = verify_lines(iter(_texts(old)))
    assert result.ok, result.error
    assert result.keys == [
        KeyRange(SIGNER.public_key_hex, 1, 2, None, None),
        KeyRange(NEW.public_key_hex, 3, 4, None, None),
    ]


def test_a_checkpoint_trusts_the_keys_its_key_endorsed(rotated: list[dict[str, Any]]) -> None:
    """A checkpoint taken at block 2 (SIGNER's) pins blocks 1-2; block 3 on must be
    signed by SIGNER or a key it endorsed — NEW here, but not a stranger."""
    block2 = next(line for line in rotated if line["type"] == "block" and line["height"] == 2)
    checkpoint = {"height": 2, "hash": block2["hash"], "public_key": SIGNER.public_key_hex}
    result = verify_lines(iter(_texts(rotated)), checkpoint=checkpoint)
    assert result.ok, result.error
    history = rotated[-1]["signing_keys"]
    stranger = [history[0], {**history[1], "endorsement": None, "unendorsed_reason": "lost"}]
    unendorsed = verify_lines(
        iter(_texts(_resigned(rotated, NEW, signing_keys=stranger))), checkpoint=checkpoint
    )
    assert not unendorsed.ok
    assert "block 3" in str(unendorsed.error)


def test_a_key_history_file_is_the_trusted_keys_by_block(rotated: list[dict[str, Any]]) -> None:
    """An auditor's copy of the history (from an earlier manifest): each block must be
    signed by the key it names for that height."""
    from voucherledger.ledger.keys import KeyRecord

    history = [KeyRecord.from_line(entry) for entry in rotated[-1]["signing_keys"]]
    result = verify_lines(iter(_texts(rotated)), key_history=history)
    assert result.ok, result.error
    # The endorsement covers the height: moving it breaks the endorsement...
    moved = [history[0], KeyRecord.from_line({**history[1].as_line(), "first_height": 4})]
    endorsed = verify_lines(iter(_texts(rotated)), key_history=moved)
    assert not endorsed.ok
    assert "endorsement" in str(endorsed.error)
    # ...and without one, block 3 is signed by a key the history does not name for it.
    unendorsed = {**moved[1].as_line(), "endorsement": None, "unendorsed_reason": "lost"}
    wrong = verify_lines(
        iter(_texts(rotated)), key_history=[history[0], KeyRecord.from_line(unendorsed)]
    )
    assert not wrong.ok
    assert "block 3" in str(wrong.error)
    older = verify_lines(iter(_texts(rotated)), key_history=history[:1])
    assert not older.ok
    assert "block 3" in str(older.error)
