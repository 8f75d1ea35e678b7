"""Checking a jsonl export in the browser: the page and its script
(``static/console/verify.js``), a second verifier independent of the Python one,
that reads the auditor's file where it is and uploads nothing.

The page has no form that posts: the file input and the button are read by the
script alone, which checks the file as ``voucherledger verify FILE --public-key KEY``
does (docs/ledger-format.md). The key field is the key the reader trusts; it is
filled with the latest checkpoint's public key when the API lets the person read
the checkpoint (funders and auditors; a fund manager types it), and left empty the
file is checked against its own keys only (consistent, but not proven to be the
service's). Without JavaScript the page says so and names the offline command.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.client import ApiProblem
from voucherledger.console.web import console_router, page, signed_in

router = console_router()

KINDS = ("funder", "manager", "auditor")


@router.get("/verify")
async def verify_page(request: Request) -> Response:
    me = await signed_in(request, kind=KINDS)
    checkpoint: dict[str, Any] | None = None
    try:
        checkpoint = await me.api.get("/v1/audit/checkpoint")
    except ApiProblem as problem:
        # A fund manager may not read it (403); no block sealed yet (404).
        if problem.status not in (403, 404):
            raise
    return page(request, me, "books/verify.html", checkpoint=checkpoint)
