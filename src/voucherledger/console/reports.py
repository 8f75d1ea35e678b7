"""A programme's disaggregated report as tables and charts, and its CSV download."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
