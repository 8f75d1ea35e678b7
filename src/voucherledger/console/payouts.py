"""Paying suppliers with two people: the payable per supplier and a proposal with its
payout reference (officers), the proposals waiting for a second person and their
approval or rejection (approvers)."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
