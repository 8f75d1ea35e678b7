"""voucherledger: voucher-based funding schemes over an append-only double-entry ledger."""

__version__ = "0.1.0"
