"""Every table, imported in one place so Alembic sees the whole metadata."""

from voucherledger.accounts.models import Account, ApiKey
from voucherledger.core.db import Base
from voucherledger.core.idempotency import IdempotencyRecord
from voucherledger.ledger.models import (
    JournalTransaction,
    LedgerAccount,
    Posting,
    Seal,
    SealBlock,
    SealQueue,
)

metadata = Base.metadata

__all__ = [
    "Account",
    "ApiKey",
    "IdempotencyRecord",
    "JournalTransaction",
    "LedgerAccount",
    "Posting",
    "Seal",
    "SealBlock",
    "SealQueue",
    "metadata",
]
