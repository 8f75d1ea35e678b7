"""The groups' pages: my vouchers with the suppliers that take them, a voucher's
code, QR, print view and statement, and the claims waiting for my confirmation,
with feedback on the confirmed ones. Also ``/console/evidence/{id}``, the file
behind a claim, for whoever the API lets read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.client import ApiProblem
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

# A hold ending within this long is announced on the claims page.
HOLD_WARNING = timedelta(hours=48)


async def _group(request: Request) -> Me:
    return await signed_in(request, kind="group")


async def _suppliers(me: Me, programme_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The accredited suppliers of each programme, with their ratings."""
    found: dict[str, list[dict[str, Any]]] = {}
    for programme_id in sorted(programme_ids):
        try:
            listing = await me.api.get(f"/v1/programmes/{programme_id}/suppliers")
        except ApiProblem:
            listing = []
        rows = listing["data"] if isinstance(listing, dict) else listing
        found[programme_id] = [s for s in rows if s.get("status", "active") == "active"]
    return found


def takers_of(suppliers: list[dict[str, Any]], voucher: dict[str, Any]) -> list[dict[str, Any]]:
    """The suppliers that can take ``voucher``: accredited for a category it buys, each
    shown with those categories only."""
    buys = set(voucher.get("service_categories") or [])
    found = []
    for supplier in suppliers:
        common = [c for c in supplier.get("service_categories") or [] if c in buys]
        if common:
            found.append({**supplier, "service_categories": common})
    return found


@router.get("/vouchers")
async def vouchers(request: Request) -> Response:
    me = await _group(request)
    mine = await me.api.all_pages("/v1/vouchers")
    suppliers = await _suppliers(me, {v["programme_id"] for v in mine})
    takers = {v["id"]: takers_of(suppliers[v["programme_id"]], v) for v in mine}
    return page(request, me, "group/vouchers.html", vouchers=mine, suppliers=takers)


@router.get("/vouchers/print")
async def print_all(request: Request) -> Response:
    me = await _group(request)
    mine = [v for v in await me.api.all_pages("/v1/vouchers") if v["status"] == "active"]
    return page(request, me, "group/print.html", vouchers=await _with_qr(me, mine))


async def _with_qr(me: Me, vouchers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for voucher in vouchers:
        svg = await me.api.call("GET", f"/v1/vouchers/{voucher['id']}/qr.svg")
        out.append({**voucher, "qr_svg": svg.decode() if isinstance(svg, bytes) else svg})
    return out


@router.get("/vouchers/{voucher_id}")
async def voucher(request: Request, voucher_id: str) -> Response:
    me = await _group(request)
    found = await me.api.get(f"/v1/vouchers/{voucher_id}")
    (shown,) = await _with_qr(me, [found])
    statement = await me.api.all_pages(f"/v1/vouchers/{voucher_id}/statement")
    suppliers = await _suppliers(me, {found["programme_id"]})
    return page(
        request,
        me,
        "group/voucher.html",
        voucher=shown,
        statement=statement,
        suppliers=takers_of(suppliers[found["programme_id"]], found),
    )


@router.get("/vouchers/{voucher_id}/print")
async def print_one(request: Request, voucher_id: str) -> Response:
    me = await _group(request)
    found = await me.api.get(f"/v1/vouchers/{voucher_id}")
    return page(request, me, "group/print.html", vouchers=await _with_qr(me, [found]))


async def _claims_page(
    request: Request, me: Me, *, problem: ApiProblem | None = None, failed: str | None = None
) -> Response:
    pending = await me.api.all_pages("/v1/redemptions", status="pending")
    captured = await me.api.all_pages("/v1/redemptions", status="captured")
    listings = await _suppliers(me, {c["programme_id"] for c in pending + captured})
    names = {s["supplier_id"]: s["name"] for listing in listings.values() for s in listing}
    now = datetime.now(UTC)
    soon = {
        c["id"]
        for c in pending
        if c.get("hold_expires_at")
        and datetime.fromisoformat(c["hold_expires_at"]) - now <= HOLD_WARNING
    }
    response = page(
        request,
        me,
        "group/claims.html",
        pending=pending,
        captured=captured,
        names=names,
        soon=soon,
        problem=problem,
        failed=failed,
    )
    if problem is not None:
        response.status_code = refusal_status(problem)
    return response


@router.get("/claims")
async def claims(request: Request) -> Response:
    return await _claims_page(request, await _group(request))


async def _decide(request: Request, redemption_id: str, action: str) -> Response:
    me = await _group(request)
    form = await read_form(request, me)
    body: dict[str, Any] | None = None
    if action == "reject":
        body = {"reason": text(form, "reason")}
    if action == "feedback":
        rating = text(form, "rating")
        body = {
            "rating": int(rating) if rating.isdigit() else rating,
            "outcome": text(form, "outcome"),
            "outcome_kind": text(form, "outcome_kind"),
        }
    try:
        await me.api.post(f"/v1/redemptions/{redemption_id}/{action}", body, key=form_key(form))
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _claims_page(request, me, problem=problem, failed=redemption_id)
    notices = {"confirm": "claim_confirmed", "reject": "claim_rejected"}
    return redirect("/console/claims", notice=notices.get(action, "feedback_given"))


@router.post("/claims/{redemption_id}/confirm")
async def confirm(request: Request, redemption_id: str) -> Response:
    return await _decide(request, redemption_id, "confirm")


@router.post("/claims/{redemption_id}/reject")
async def reject(request: Request, redemption_id: str) -> Response:
    return await _decide(request, redemption_id, "reject")


@router.post("/claims/{redemption_id}/feedback")
async def feedback(request: Request, redemption_id: str) -> Response:
    return await _decide(request, redemption_id, "feedback")


@router.get("/evidence/{evidence_id}")
async def evidence(request: Request, evidence_id: str) -> Response:
    """The file behind a claim, as the API serves it to this person (else 404)."""
    me = await signed_in(request)
    answer = await me.api.send("GET", f"/v1/evidence/{evidence_id}")
    if answer.status_code != 200:
        raise ApiProblem(404, "not_found", "")
    headers = {
        "Content-Disposition": answer.headers.get("content-disposition", "attachment"),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type", "application/octet-stream"),
        headers=headers,
    )
