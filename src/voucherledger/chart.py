"""The chart of accounts: the ledger account codes of every party and object.

See docs/ledger-format.md. External accounts carry their currency in the code
because a ledger account holds exactly one currency.
"""

from __future__ import annotations


def funder(funder_id: str, currency: str) -> str:
    """External source: minus what the funder has put in, net. May go negative."""
    return f"funder:{funder_id}:{currency}"


def unissued(programme_id: str) -> str:
    return f"programme:{programme_id}:unissued"


def women_led_reserve(programme_id: str) -> str:
    return f"programme:{programme_id}:women_led_reserve"


def voucher(voucher_id: str) -> str:
    return f"voucher:{voucher_id}"


def held(voucher_id: str) -> str:
    return f"voucher:{voucher_id}:held"


def payable(supplier_id: str, programme_id: str) -> str:
    return f"supplier:{supplier_id}:payable:{programme_id}"


def paid(supplier_id: str, currency: str) -> str:
    """External sink: what the supplier has been paid out, in total."""
    return f"supplier:{supplier_id}:paid:{currency}"
