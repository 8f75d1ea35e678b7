"""Voucher codes: unguessable, typable, and self-checking.

A code is ``VL-XXXX-XXXX-XXXX-XXXX-C``: 16 Crockford base32 characters (80
random bits) in groups of four, then one check character. The check character
is computed with the Damm algorithm over a totally anti-symmetric quasigroup of
order 32 (``x * y = 2x + y`` in GF(32), modulus x^5 + x^2 + 1), so every
single-character substitution and every swap of two adjacent characters is
caught before any database lookup.

Parsing is forgiving where people are: case, spaces and hyphens are ignored,
and Crockford's look-alikes are read as the digits they resemble (O -> 0,
I and L -> 1).
"""

from __future__ import annotations

import base64
import secrets

from voucherledger.core.ids import CROCKFORD

PREFIX = "VL"
DATA_LENGTH = 16  # 16 x 5 = 80 random bits
_INDEX = {char: value for value, char in enumerate(CROCKFORD)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _gf32_double(x: int) -> int:
    """2x in GF(2^5) with the primitive polynomial x^5 + x^2 + 1."""
    x <<= 1
    if x & 0b100000:
        x ^= 0b100101
    return x


# The quasigroup's row operation as a table: op(x, y) = _DOUBLE[x] ^ y.
_DOUBLE = tuple(_gf32_double(x) for x in range(32))
_ENCODE_B32 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD)


def _interim(chars: str) -> int:
    state = 0
    for char in chars:
        state = _DOUBLE[state] ^ _INDEX[char]
    return state


def check_character(data: str) -> str:
    # The check c makes op(state, c) == 0, i.e. c = 2 * state.
    return CROCKFORD[_DOUBLE[_interim(data)]]


def generate() -> str:
    # 10 random bytes are 80 bits, exactly 16 base32 characters (no padding).
    data = (
        base64.b32encode(secrets.token_bytes(5 * DATA_LENGTH // 8)).decode().translate(_ENCODE_B32)
    )
    groups = "-".join(data[i : i + 4] for i in range(0, DATA_LENGTH, 4))
    return f"{PREFIX}-{groups}-{check_character(data)}"


def normalise(text: str) -> str | None:
    """The canonical form of a typed code, or None when it cannot be one of ours."""
    compact = "".join(text.split()).replace("-", "").upper()
    # Strip the prefix only where it is one: typed without it, a code whose data
    # starts with "V1" may read "VL..." (L is an alias of 1).
    if len(compact) == len(PREFIX) + DATA_LENGTH + 1 and compact.startswith(PREFIX):
        compact = compact[len(PREFIX) :]
    compact = compact.translate(_ALIASES)
    if len(compact) != DATA_LENGTH + 1 or any(c not in _INDEX for c in compact):
        return None
    if _interim(compact) != 0:
        return None
    data = compact[:DATA_LENGTH]
    groups = "-".join(data[i : i + 4] for i in range(0, DATA_LENGTH, 4))
    return f"{PREFIX}-{groups}-{compact[DATA_LENGTH]}"
