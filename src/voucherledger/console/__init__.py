"""The web console at ``/console``: server-rendered pages for the people of each
party (groups, suppliers, funders, fund managers, auditors, admins), over the HTTP
API called in-process as the person signed in (see :mod:`voucherledger.console.client`).

Pages work without JavaScript (the camera scanner aside); a small vendored htmx
and the console's own script only enhance them. Everything a page loads is served
from the package under ``/static``. See ``docs/console.md``.
"""

from __future__ import annotations

from fastapi import FastAPI


def install_console(app: FastAPI) -> None:
    """Add the console's routes; the catch-all 404 page last."""
    from voucherledger.console import (
        accreditation,
        admin,
        books,
        group,
        issuing,
        members,
        payouts,
        programmes,
        reports,
        signin,
        supplier,
        verify,
    )

    app.include_router(signin.router)
    app.include_router(admin.router)
    app.include_router(group.router)
    app.include_router(supplier.router)
    for module in (programmes, issuing, accreditation, reports, payouts, members, books, verify):
        app.include_router(module.router)
    app.include_router(signin.fallback)
