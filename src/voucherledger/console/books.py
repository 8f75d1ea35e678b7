"""The books for auditors (and funders and managers, as far as the API lets them):
the journal with filters, one transaction with its postings, an account's balance now
or at an instant, the trial balance, exports and the latest signed checkpoint."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
