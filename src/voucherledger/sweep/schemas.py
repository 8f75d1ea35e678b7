"""What a sweep answers."""

from __future__ import annotations

from voucherledger.core.schemas import Schema


class SweepOut(Schema):
    """What a sweep did: vouchers expired (and value returned), holds released."""

    expired_vouchers: int
    returned_amount: int
    released_holds: int
    released_amount: int
