"""A programme's suppliers: accredit for categories, suspend, and each supplier's
claims, ratings and outcomes."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
