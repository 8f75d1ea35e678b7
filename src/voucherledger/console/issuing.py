"""A programme's vouchers for funders and fund managers: filter and search, issue one
(the group picked from the directory, its eligibility shown first), issue many from a
CSV upload (a preview of every row against the rules, then one all-or-nothing batch),
and revoke with a reason."""

from __future__ import annotations

from voucherledger.console.web import console_router

router = console_router()
