"""Funders' and fund managers' programmes: the list, a new programme with every rule
explained, and a programme's dashboard (balances, where the money is, issuance and
claims over time, the women-led share) with deposit, close and sweep. Auditors read."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
