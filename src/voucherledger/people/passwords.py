"""Passwords: the rules a new one must meet, and Argon2id hashes of them.

A password is at least 12 characters and is not one of the 10,000 most common
passwords shipped in ``data/`` (SecLists; ``data/README.md``), compared without
case. Nor is it such a password dressed up: with up to eight digits, punctuation
marks or spaces added at either end (``password1234``, ``!!dragon2024``), or
repeated (``qwertyqwerty``, ``monkeymonkey1``); a password that is one short
piece (four characters or fewer) repeated (``abababababab``) is refused too.
Each check is a set look-up over at most 81 cut-downs of the password, so the
rules cost microseconds, not an Argon2id hash.

Hashes are Argon2id with parameters from the settings; a hash made with other
parameters still verifies, and :meth:`Passwords.needs_rehash` says to replace it
at the next sign-in. :meth:`Passwords.verify_dummy` spends the same time as a
real check, for a sign-in whose email matches nobody.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from voucherledger.core.errors import WeakPassword
from voucherledger.core.settings import Settings

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "Passwords",
    "WeakPassword",
    "check_password",
    "common_passwords",
    "passwords_for",
    "weakness",
]

MIN_LENGTH = 12
MAX_LENGTH = 1024
# What may be added around a common password without making it any less common.
PADDING = frozenset(string.digits + string.punctuation + " ")
MAX_PADDING = 8
SHORT_PIECE = 4


class Passwords:
    """Argon2id with one set of parameters."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy = self._hasher.hash("not a password anyone has")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def verify_dummy(self, password: str) -> None:
        """As long as a failed :meth:`verify`; admits nothing (returns nothing)."""
        self.verify(self._dummy, password)


@cache
def _passwords(time_cost: int, memory_kib: int, parallelism: int) -> Passwords:
    return Passwords(time_cost, memory_kib, parallelism)


def passwords_for(settings: Settings) -> Passwords:
    return _passwords(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )


@cache
def common_passwords() -> frozenset[str]:
    text = files("voucherledger.people").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def _period(text: str) -> str:
    """The shortest piece ``text`` is a repetition of (``text`` itself if none)."""
    position = (text + text).find(text, 1)
    return text[:position] if position < len(text) else text


def _cut_downs(password: str) -> Iterator[str]:
    """``password`` with up to :data:`MAX_PADDING` padding characters cut off either end."""
    lead = 0
    while lead < min(MAX_PADDING, len(password)) and password[lead] in PADDING:
        lead += 1
    trail = 0
    while (
        trail < min(MAX_PADDING, len(password) - lead)
        and password[len(password) - 1 - trail] in PADDING
    ):
        trail += 1
    for start in range(lead + 1):
        for end in range(len(password) - trail, len(password) + 1):
            if end > start:
                yield password[start:end]


def weakness(password: str) -> str | None:
    """Why ``password`` is refused, or None when it meets the rules."""
    if len(password) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    common = common_passwords()
    folded = password.lower()
    if folded in common:
        return "one of the most common passwords"
    for core in _cut_downs(folded):
        if core in common:
            return "a common password with digits or punctuation added"
        piece = _period(core)
        if piece != core and (piece in common or len(piece) <= SHORT_PIECE):
            return "a common password or a short piece repeated"
    return None


def check_password(password: str, field: str = "password") -> None:
    """Refuse (422 ``weak_password``) a password too short, too long or too common."""
    reason = weakness(password)
    if reason is not None:
        raise WeakPassword(
            f"The password is {reason}; choose another.",
            [{"loc": ["body", field], "msg": reason, "type": "weak_password"}],
        )
