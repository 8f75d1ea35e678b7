"""Checking a jsonl export in the browser: the page and its script
(``static/console/verify.js``), a second verifier independent of the Python one,
that reads the auditor's file where it is and uploads nothing."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
