"""The people of my account: invite, change a role, disable (owners); everyone else reads."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
