"""Passwords: the rules a new one must meet, and the Argon2id hashes kept of them."""

from __future__ import annotations

from importlib.resources import files

import pytest

from voucherledger.core.errors import ValidationFailed
from voucherledger.core.settings import Settings
from voucherledger.people.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    Passwords,
    WeakPassword,
    check_password,
    common_passwords,
    passwords_for,
    weakness,
)

CHEAP = Passwords(time_cost=1, memory_kib=8, parallelism=1)
STRONG = "correct horse battery staple"


# --- hashes --------------------------------------------------------------------------


def test_a_hash_verifies_its_password_only() -> None:
    stored = CHEAP.hash(STRONG)
    assert stored.startswith("$argon2id$")
    assert STRONG not in stored
    assert CHEAP.verify(stored, STRONG)
    assert not CHEAP.verify(stored, STRONG.upper())
    assert not CHEAP.verify(stored, "")


def test_two_hashes_of_one_password_differ() -> None:
    assert CHEAP.hash(STRONG) != CHEAP.hash(STRONG)  # a fresh salt each time


@pytest.mark.parametrize("stored", ["", "!placeholder", "$argon2id$v=19$garbage", "plain text"])
def test_a_stored_value_that_is_no_hash_never_verifies(stored: str) -> None:
    assert not CHEAP.verify(stored, STRONG)
    assert CHEAP.needs_rehash(stored)


def test_a_hash_made_with_other_parameters_verifies_and_asks_for_a_rehash() -> None:
    older = Passwords(time_cost=2, memory_kib=16, parallelism=1)
    stored = older.hash(STRONG)
    assert CHEAP.verify(stored, STRONG)
    assert CHEAP.needs_rehash(stored)
    assert not older.needs_rehash(stored)
    assert not CHEAP.needs_rehash(CHEAP.hash(STRONG))


def test_the_dummy_check_runs_a_real_verification_and_raises_nothing() -> None:
    CHEAP.verify_dummy(STRONG)
    CHEAP.verify_dummy("not a password anyone has")  # the dummy hash's own text


def test_the_parameters_come_from_the_settings() -> None:
    def settings(time_cost: int) -> Settings:
        return Settings(password_time_cost=time_cost, password_memory_kib=8, password_parallelism=1)

    one = passwords_for(settings(1))
    assert passwords_for(settings(1)) is one  # built once
    two = passwords_for(settings(2))
    stored = two.hash(STRONG)
    assert "t=2" in stored
    assert "m=8" in stored
    assert "p=1" in stored
    assert one.needs_rehash(stored)


# --- the list ------------------------------------------------------------------------


def test_the_list_ships_inside_the_package_whole() -> None:
    text = files("voucherledger.people").joinpath("data/common-passwords.txt").read_text("utf-8")
    lines = text.splitlines()
    assert len(lines) == 10_000
    assert lines[:3] == ["password", "123456", "12345678"]
    assert lines[-1] == "eyphed"
    assert text.endswith("\n")
    assert "\r" not in text
    assert len(common_passwords()) == 10_000
    readme = files("voucherledger.people").joinpath("data/README.md").read_text("utf-8")
    assert "4f84b3c29b5f2192cc82ccdeaf655f0c5f0ab547" in readme
    assert "MIT" in readme


@pytest.mark.parametrize(
    "password",
    [
        "masterbating",  # in the list as it is (12 characters or more)
        "MotherFucker",  # case does not matter
        "contortionist",
    ],
)
def test_a_listed_password_is_refused(password: str) -> None:
    assert weakness(password) == "one of the most common passwords"


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "Password1234!",
        "qwertyuiop12",
        "123456789012",  # 1234567890 and two digits
        "!!dragon2024",  # before and after
        "sunshine    !",
        "iloveyou!!!!",
        "2000 2000 2000",
    ],
)
def test_a_common_password_with_digits_or_punctuation_added_is_refused(password: str) -> None:
    assert weakness(password) is not None


@pytest.mark.parametrize(
    "password", ["qwertyqwerty", "monkeymonkey1", "Dragon" * 3, "abababababab", "xyzxyzxyzxyz"]
)
def test_a_common_password_or_a_short_piece_repeated_is_refused(password: str) -> None:
    assert weakness(password) == "a common password or a short piece repeated"


@pytest.mark.parametrize(
    "password",
    [
        STRONG,
        "Tr0ub4dor&3 plus more",
        "sunshine-and-rain",  # a common word inside a longer phrase
        "password manager generated: k3J#q9!xZ",
        "839201746583",
        "monkey wrench 42",
        "x" * (MAX_LENGTH - 1) + "y",
    ],
)
def test_a_password_that_meets_the_rules_passes(password: str) -> None:
    assert weakness(password) is None
    check_password(password)


def test_the_length_limits() -> None:
    assert weakness("k3J#q9!xZ2w") == f"shorter than {MIN_LENGTH} characters"
    assert weakness("k3J#q9!xZ2wA") is None
    long = "k3J#q9!xZ2wA" * 100
    assert weakness(long[:MAX_LENGTH]) is None
    assert weakness(long[: MAX_LENGTH + 1]) == f"longer than {MAX_LENGTH} characters"


def test_the_checks_of_a_long_password_stay_cheap() -> None:
    # All padding: at most 9 x 9 cut-downs, each one set look-up and one period search.
    assert weakness("1" * MAX_LENGTH) is not None
    assert weakness("1234567890" * 100 + "1234") is not None


def test_a_refusal_is_a_422_weak_password_naming_the_field() -> None:
    with pytest.raises(WeakPassword) as raised:
        check_password("password1234", field="new_password")
    error = raised.value
    assert isinstance(error, ValidationFailed)
    assert (error.status, error.code) == (422, "weak_password")
    assert "password1234" not in error.detail  # the password is never echoed
    assert error.extra["errors"] == [
        {
            "loc": ["body", "new_password"],
            "msg": "a common password with digits or punctuation added",
            "type": "weak_password",
        }
    ]
