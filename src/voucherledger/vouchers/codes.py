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


def _op(x: int, y: int) -> int:
    return _gf32_double(x) ^ y


def _interim(values: list[int]) -> int:
    state = 0
    for value in values:
        state = _op(state, value)
    return state


def check_character(data: str) -> str:
    state = _interim([_INDEX[c] for c in data])
    # The check c makes op(state, c) == 0, i.e. c = 2 * state.
    return CROCKFORD[_gf32_double(state)]


def generate() -> str:
    value = secrets.randbits(5 * DATA_LENGTH)
    data = "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(DATA_LENGTH))
    groups = "-".join(data[i : i + 4] for i in range(0, DATA_LENGTH, 4))
    return f"{PREFIX}-{groups}-{check_character(data)}"


def normalise(text: str) -> str | None:
    """The canonical form of a typed code, or None when it cannot be one of ours."""
    compact = "".join(text.split()).replace("-", "").upper()
    if compact.startswith(PREFIX):
        compact = compact[len(PREFIX) :]
    compact = compact.translate(_ALIASES)
    if len(compact) != DATA_LENGTH + 1 or any(c not in _INDEX for c in compact):
        return None
    if _interim([_INDEX[c] for c in compact]) != 0:
        return None
    data = compact[:DATA_LENGTH]
    groups = "-".join(data[i : i + 4] for i in range(0, DATA_LENGTH, 4))
    return f"{PREFIX}-{groups}-{compact[DATA_LENGTH]}"
