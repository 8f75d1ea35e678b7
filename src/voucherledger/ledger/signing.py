"""Ed25519 keys that sign seal blocks.

The key comes from ``VOUCHERLEDGER_SIGNING_KEY`` (the 32-byte private seed, as
64 hex digits or base64). Without it a development key is generated once and
kept in ``VOUCHERLEDGER_SIGNING_KEY_FILE`` with a warning: fine on a laptop,
never in production, where the key must come from a secret store. The key file's
path is made absolute once, here, so every message names the file actually used
(a relative default means "the directory the command was started in").

Which key may seal a given chain is the signing key history's business
(``ledger/keys.py``), not this module's: a new key file means a new key, which the
sealer refuses until it is recorded.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

log = structlog.get_logger("voucherledger.signing")


class SigningKeyError(ValueError):
    """The signing key cannot be had: a malformed key, or a key file that cannot be
    read or created. The message names the setting or file, never the key."""


def _decode_32(text: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError("signing key is neither hex nor base64") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 key is 32 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key_hex(self) -> str:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, message: bytes) -> str:
        return self.private_key.sign(message).hex()

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    def seed_hex(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()


@dataclass(frozen=True)
class LoadedSigner:
    """A signer and where it came from: ``key_file`` is None for VOUCHERLEDGER_SIGNING_KEY."""

    signer: Signer
    key_file: Path | None
    generated: bool

    def describe(self) -> str | None:
        """The line a command prints about a development key (None for a configured one)."""
        if self.key_file is None:
            return None
        how = "generated now" if self.generated else "loaded"
        return f"signing with the development key in {self.key_file} ({how})"


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def read_key_file(path: Path) -> Signer:
    """The signer whose seed is in ``path`` (hex or base64). Raises
    :class:`SigningKeyError`, naming the file, when it is unreadable or holds no key."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"cannot read the signing key file {path}: {_reason(exc)}") from None
    try:
        return Signer.from_seed(_decode_32(text))
    except ValueError as exc:
        raise SigningKeyError(
            f"the signing key file {path} does not hold an Ed25519 key "
            f"(32 bytes as 64 hex digits or base64): {exc}"
        ) from None


def seed_signer(text: str) -> Signer:
    """The signer of a seed given as 64 hex digits or base64 (ValueError otherwise)."""
    return Signer.from_seed(_decode_32(text))


def load_signer(signing_key: str | None, key_file: Path) -> Signer:
    """The signer of ``signing_key``, else of ``key_file``, else a new development key
    written to ``key_file``. Raises :class:`SigningKeyError` when none can be had."""
    return open_signer(signing_key, key_file).signer


def open_signer(signing_key: str | None, key_file: Path) -> LoadedSigner:
    """The configured key, or the development key in ``key_file`` (made absolute),
    generated there when missing. Raises :class:`SigningKeyError` when none can be had."""
    if signing_key:
        try:
            return LoadedSigner(Signer.from_seed(_decode_32(signing_key)), None, False)
        except ValueError as exc:
            raise SigningKeyError(
                "VOUCHERLEDGER_SIGNING_KEY is not an Ed25519 key "
                f"(32 bytes as 64 hex digits or base64): {exc}"
            ) from None
    key_file = key_file.expanduser().resolve()
    if key_file.exists():
        return LoadedSigner(read_key_file(key_file), key_file, False)
    signer = Signer.generate()
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process (a second worker) created it first
            return LoadedSigner(read_key_file(key_file), key_file, False)
    except OSError as exc:
        raise SigningKeyError(
            f"cannot create the development signing key file {key_file}: {_reason(exc)} "
            "(set VOUCHERLEDGER_SIGNING_KEY, or VOUCHERLEDGER_SIGNING_KEY_FILE to a "
            "writable place)"
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.seed_hex() + "\n")
    log.warning(
        "development_signing_key_generated",
        path=str(key_file),
        public_key=signer.public_key_hex,
        hint="set VOUCHERLEDGER_SIGNING_KEY in production",
    )
    return LoadedSigner(signer, key_file, True)


def verify_signature(public_key_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
