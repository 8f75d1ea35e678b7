"""A programme's suppliers: accredit for categories, suspend, and each supplier's
claims, ratings and outcomes.

The programme's funder and managers act; its auditors read the same pages without
the forms. Who may do what is the API's to decide: an auditor who posts a form
anyway gets the API's refusal (403) as a page.

- ``/programmes/{id}/suppliers``: ``GET /v1/programmes/{id}/suppliers`` (categories,
  status, claims and ratings), and a form to accredit a supplier of the directory
  (``GET /v1/accounts?kind=supplier``, funders and managers only) for some of the
  programme's categories. Accrediting a supplier again replaces its categories and
  lifts a suspension.
- ``…/suppliers/{sid}/suspend``: what suspending does, and one button that does it
  (``DELETE /v1/programmes/{id}/accreditations/{sid}``; twice changes nothing).
- ``…/suppliers/{sid}``: the supplier's claims in this programme
  (``GET /v1/redemptions?programme_id=&supplier_id=``) and its line of the
  programme's report (claims, amounts, feedback, average rating, outcomes).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal
from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.client import ApiProblem
from voucherledger.console.messages import CATEGORIES, N_
from voucherledger.console.programmes import programme_of
from voucherledger.console.web import (
    Me,
    console_router,
    form_key,
    page,
    read_form,
    redirect,
    refusal_status,
    signed_in,
    text,
)

router = console_router()

PARTIES = ("funder", "manager", "auditor")
# Who may accredit and suspend (the API checks the programme and the member's role).
ISSUERS = ("funder", "manager")

ACCREDITATION_STATUSES: dict[str, str] = {
    "active": N_("Accredited"),
    "suspended": N_("Suspended"),
}


def base(programme_id: str) -> str:
    return f"/console/programmes/{programme_id}/suppliers"


def may_act(me: Me) -> bool:
    return me.kind in ISSUERS and me.can_act


def rating_in(language: str) -> Any:
    """An average rating (the listing's float, the report's string), 2 places, in the
    reader's language."""

    def rating(value: float | str | None) -> str:
        if value is None:
            return ""
        return str(format_decimal(Decimal(str(value)), format="0.00", locale=language))

    return rating


async def _listing(me: Me, programme_id: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = await me.api.get(f"/v1/programmes/{programme_id}/suppliers")
    return listed


async def _directory(me: Me) -> list[dict[str, Any]]:
    """Every supplier account the caller may accredit (funders and managers read the
    directory; an auditor does not, and gets no form)."""
    if not may_act(me):
        return []
    found: list[dict[str, Any]] = await me.api.all_pages("/v1/accounts", kind="supplier")
    return sorted(found, key=lambda a: str(a["name"]).casefold())


async def _suppliers_page(
    request: Request,
    me: Me,
    programme_id: str,
    *,
    status: int = 200,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: ApiProblem | None = None,
) -> Response:
    programme = await programme_of(me, programme_id)
    listing = await _listing(me, programme_id)
    directory = await _directory(me)
    return page(
        request,
        me,
        "programmes/suppliers.html",
        programme=programme,
        tab="suppliers",
        suppliers=sorted(listing, key=lambda s: str(s["name"]).casefold()),
        directory=directory,
        may_act=may_act(me),
        categories=CATEGORIES,
        statuses=ACCREDITATION_STATUSES,
        values=values or {},
        errors=errors or {},
        problem=problem,
        rating=rating_in(request.state.language),
        http_status=status,
    )


@router.get("/programmes/{programme_id}/suppliers")
async def suppliers(request: Request, programme_id: str) -> Response:
    me = await signed_in(request, kind=PARTIES)
    return await _suppliers_page(request, me, programme_id)


@router.post("/programmes/{programme_id}/suppliers")
async def accredit(request: Request, programme_id: str) -> Response:
    me = await signed_in(request, kind=PARTIES)
    form = await read_form(request, me)
    body = {
        "supplier_id": text(form, "supplier_id"),
        "service_categories": [str(c) for c in form.getlist("service_categories")],
    }
    try:
        await me.api.post(f"/v1/programmes/{programme_id}/accreditations", body, key=form_key(form))
    except ApiProblem as problem:
        if problem.status in (403, 404):
            raise
        return await _suppliers_page(
            request,
            me,
            programme_id,
            status=refusal_status(problem),
            values=body,
            errors=problem.field_errors(),
            problem=problem,
        )
    return redirect(base(programme_id), notice="supplier_accredited")


async def _accredited(me: Me, programme_id: str, supplier_id: str) -> dict[str, Any]:
    """The supplier's listing in this programme; the not-found page if it has none."""
    for listed in await _listing(me, programme_id):
        if listed["supplier_id"] == supplier_id:
            return listed
    raise ApiProblem(404, "not_found", "")


@router.get("/programmes/{programme_id}/suppliers/{supplier_id}/suspend")
async def suspend_confirm(request: Request, programme_id: str, supplier_id: str) -> Response:
    """The first step of suspending: what it does, and one button that does it."""
    me = await signed_in(request, kind=PARTIES)
    programme = await programme_of(me, programme_id)
    supplier = await _accredited(me, programme_id, supplier_id)
    return page(
        request,
        me,
        "programmes/suspend.html",
        programme=programme,
        tab="suppliers",
        supplier=supplier,
        may_act=may_act(me),
    )


@router.post("/programmes/{programme_id}/suppliers/{supplier_id}/suspend")
async def suspend(request: Request, programme_id: str, supplier_id: str) -> Response:
    me = await signed_in(request, kind=PARTIES)
    await read_form(request, me)  # its CSRF token; suspending twice changes nothing
    await me.api.call("DELETE", f"/v1/programmes/{programme_id}/accreditations/{supplier_id}")
    return redirect(base(programme_id), notice="supplier_suspended")


@router.get("/programmes/{programme_id}/suppliers/{supplier_id}")
async def supplier(request: Request, programme_id: str, supplier_id: str) -> Response:
    me = await signed_in(request, kind=PARTIES)
    programme = await programme_of(me, programme_id)
    listed = await _accredited(me, programme_id, supplier_id)
    claims = await me.api.all_pages(
        "/v1/redemptions", programme_id=programme_id, supplier_id=supplier_id
    )
    report = await me.api.get(f"/v1/programmes/{programme_id}/report")
    line = next(
        (s for s in report["breakdowns"]["supplier"] if s["key"] == supplier_id),
        None,
    )
    by_category: dict[str, dict[str, int]] = {}
    for c in claims:
        if c["status"] == "voided":
            continue
        figures = by_category.setdefault(c["service_category"], {"claims": 0, "claimed": 0})
        figures["claims"] += 1
        figures["claimed"] += int(c["amount"])
    return page(
        request,
        me,
        "programmes/supplier.html",
        programme=programme,
        tab="suppliers",
        supplier=listed,
        line=line,
        claims=list(reversed(claims)),  # the newest first
        by_category=sorted(by_category.items()),
        categories=CATEGORIES,
        statuses=ACCREDITATION_STATUSES,
        may_act=may_act(me),
        rating=rating_in(request.state.language),
    )
