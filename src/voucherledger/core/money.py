"""Money is an integer number of minor units next to an ISO 4217 currency code.

Never a float, anywhere. This module knows each currency's exponent (the
number of minor-unit digits) for exports that want major units.
"""

from __future__ import annotations

from typing import Annotated

import pycountry
from annotated_types import Gt, Le
from pydantic import AfterValidator, StringConstraints
from pydantic.types import Strict

# ISO 4217 currencies whose minor unit is not 2 digits.
_EXPONENT_EXCEPTIONS = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
# Codes that are not money a programme can hold (precious metals, testing, SDR...).
_NOT_MONEY = {
    "XAG",
    "XAU",
    "XBA",
    "XBB",
    "XBC",
    "XBD",
    "XDR",
    "XPD",
    "XPT",
    "XSU",
    "XTS",
    "XUA",
    "XXX",
}

CURRENCY_CODES: frozenset[str] = frozenset(
    c.alpha_3 for c in pycountry.currencies if c.alpha_3 not in _NOT_MONEY
)


def exponent(currency: str) -> int:
    return _EXPONENT_EXCEPTIONS.get(currency, 2)


def to_major(amount: int, currency: str) -> str:
    """Minor units as an exact decimal string in major units: 12345 EUR -> '123.45'."""
    digits = exponent(currency)
    if digits == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def _check_currency(value: str) -> str:
    if value not in CURRENCY_CODES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_check_currency)]

# The largest integer every JSON reader (IEEE-754 doubles) keeps exact: no amount,
# balance or total may exceed it, so exports and the canonical form stay exact.
MAX_SAFE_INTEGER = 2**53 - 1

# A positive amount of minor units: floats, strings, zero and negatives are 422.
Amount = Annotated[int, Strict(), Gt(0), Le(MAX_SAFE_INTEGER)]
