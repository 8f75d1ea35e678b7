"""Opaque identifiers that sort by creation time.

``{prefix}_{26 Crockford base32 characters}``: 48 bits of milliseconds since the
epoch followed by 80 random bits (the ULID layout). Sorting ids as strings sorts
them by creation time to the millisecond.
"""

import secrets
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = frozenset({"acc", "prg", "vch", "red", "stl", "txn", "key", "acr", "dep", "fbk"})


def encode_crockford(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | secrets.randbits(80)
    return f"{prefix}_{encode_crockford(value, 26)}"
