"""Opaque identifiers that sort by creation time.

``{prefix}_{26 Crockford base32 characters}``: 48 bits of milliseconds since the
epoch followed by 80 random bits (the ULID layout). Sorting ids as strings sorts
them by creation time: within one process ids are monotonic (the ULID spec's
monotonic mode), so two ids made in the same millisecond — or after the clock
stepped back — still sort in the order they were made.
"""

import os
import threading
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = frozenset(
    {
        "acc",
        "prg",
        "vch",
        "red",
        "stl",
        "txn",
        "key",
        "acr",
        "dep",
        "fbk",
        "mem",
        "ses",
        "evd",
        "evt",
        "whe",
        "dlv",
        "att",
        "chg",
    }
)

_RANDOM_BITS = 80
_lock = threading.Lock()
_last = 0
# Random bytes from the OS, taken 4 KiB at a time (one system call per ~400 ids
# rather than one per id); used under ``_lock``. Ids are not secrets: API keys,
# voucher codes and webhook secrets come from ``secrets`` directly.
_POOL_SIZE = 4096
_pool = b""
_pos = 0


def _forget_pool() -> None:
    """A forked child must not hand out its parent's bytes again (the same ids)."""
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def _random(bits: int) -> int:
    """``bits`` (a multiple of 8) random bits from the pool; hold ``_lock``."""
    global _pool, _pos
    size = bits // 8
    if _pos + size > len(_pool):
        _pool, _pos = os.urandom(_POOL_SIZE), 0
    chunk = _pool[_pos : _pos + size]
    _pos += size
    return int.from_bytes(chunk, "big")


def encode_crockford(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _next_value() -> int:
    global _last
    millis = time.time_ns() // 1_000_000
    with _lock:
        value = (millis << _RANDOM_BITS) | _random(_RANDOM_BITS)
        if value <= _last:
            # Same millisecond as the previous id (or the clock went back): count
            # up from it. The random part starts 80 bits wide, so it does not wrap.
            value = _last + 1 + _random(16)
        _last = value
        return value


def random_hex(nbytes: int) -> str:
    """``nbytes`` random bytes in hex, from the same pool (a request id: unique, not
    a secret)."""
    with _lock:
        return _random(nbytes * 8).to_bytes(nbytes, "big").hex()


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{encode_crockford(_next_value(), 26)}"
