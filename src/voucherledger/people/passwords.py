"""Passwords: the rules a new one must meet, and Argon2id hashes of them.

A password is at least 12 characters and not in the list of common passwords
shipped in ``data/``. Hashes are Argon2id with parameters from the settings; a
hash made with other parameters still verifies, and :meth:`Passwords.needs_rehash`
says to replace it at the next sign-in. :meth:`Passwords.verify_dummy` spends the
same time as a real check, for a sign-in whose email matches nobody.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from voucherledger.core.errors import ValidationFailed
from voucherledger.core.settings import Settings

MIN_LENGTH = 12
MAX_LENGTH = 1024


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
        """As long as a failed :meth:`verify`, and always False."""
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


def check_password(password: str, field: str = "password") -> None:
    """Refuse (422 ``weak_password``) a password too short, too long or too common."""
    reason = None
    if len(password) < MIN_LENGTH:
        reason = f"shorter than {MIN_LENGTH} characters"
    elif len(password) > MAX_LENGTH:
        reason = f"longer than {MAX_LENGTH} characters"
    elif password.lower() in common_passwords():
        reason = "one of the most common passwords"
    if reason is not None:
        raise WeakPassword(
            f"The password is {reason}; choose another.",
            [{"loc": ["body", field], "msg": reason, "type": "weak_password"}],
        )


class WeakPassword(ValidationFailed):
    code = "weak_password"
