"""Paying suppliers with two people: the payable per supplier and a proposal with its
payout reference (officers), the proposals waiting for a second person and their
approval or rejection (approvers).

Funders only (anyone else gets the not-found page). The figures are the API's: a
supplier's payable is its ledger account ``supplier:{id}:payable:{programme}``
(``GET /v1/ledger/accounts/{account}/balance``), and what awaits approval is the sum of
its proposed settlements; the rest is what a new proposal would cover. Under the
programme rule ``settlement_approval: single`` the same form pays at once.

Who may approve is the API's to decide (a member with the approver or owner role and a
confirmed second factor, not the proposer). The page offers the buttons only to such a
person, and shows the API's refusal when someone posts anyway. Approving takes no code:
the API asks for a confirmed second factor on the member, not a code per approval.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.client import ApiProblem
from voucherledger.console.members import member_names
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

APPROVERS = ("approver", "owner")


async def _funder(request: Request) -> Me:
    return await signed_in(request, kind="funder")


def may_reject(me: Me, settlement: dict[str, Any]) -> bool:
    """A proposed settlement, for an approver or owner (its proposer too: a withdrawal)."""
    return settlement["status"] == "proposed" and me.role in APPROVERS


def may_approve(me: Me, settlement: dict[str, Any]) -> bool:
    """As :func:`may_reject`, but never the proposer (the API refuses it anyway, 403
    ``second_person_required``)."""
    return may_reject(me, settlement) and settlement.get("proposed_by") != me.member["id"]


# --- a programme's settlements ------------------------------------------------------


async def _payables(
    me: Me, programme: dict[str, Any], settlements: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per accredited supplier: its payable, what proposals await, and the rest."""
    pid = programme["id"]
    suppliers = await me.api.get(f"/v1/programmes/{pid}/suppliers")
    rows = []
    for supplier in suppliers:
        sid = supplier["supplier_id"]
        try:
            held = await me.api.get(f"/v1/ledger/accounts/supplier:{sid}:payable:{pid}/balance")
            payable = int(held["balance"])
        except ApiProblem as problem:
            if problem.status != 404:
                raise
            payable = 0
        awaiting = sum(
            int(s["amount"])
            for s in settlements
            if s["supplier_id"] == sid and s["status"] == "proposed"
        )
        rows.append(
            {
                "id": sid,
                "name": supplier["name"],
                "status": supplier["status"],
                "payable": payable,
                "awaiting": awaiting,
                "free": payable - awaiting,
            }
        )
    return rows


async def _settlements_page(
    request: Request, me: Me, programme_id: str, *, status: int = 200, **context: Any
) -> Response:
    programme = await me.api.get(f"/v1/programmes/{programme_id}")
    settlements = await me.api.all_pages("/v1/settlements", programme_id=programme_id)
    payables = await _payables(me, programme, settlements)
    return page(
        request,
        me,
        "programmes/settlements.html",
        programme=programme,
        tab="settlements",
        payables=payables,
        supplier_names={p["id"]: p["name"] for p in payables},
        settlements=list(reversed(settlements)),  # the newest first
        two_person=programme["rules"].get("settlement_approval") == "two_person",
        values=context.pop("values", {}),
        errors=context.pop("errors", {}),
        **context,
        http_status=status,
    )


@router.get("/programmes/{programme_id}/settlements")
async def programme_settlements(request: Request, programme_id: str) -> Response:
    me = await _funder(request)
    return await _settlements_page(request, me, programme_id)


@router.post("/programmes/{programme_id}/settlements")
async def propose(request: Request, programme_id: str) -> Response:
    me = await _funder(request)
    form = await read_form(request, me)
    body = {
        "supplier_id": text(form, "supplier_id"),
        "payout_reference": text(form, "payout_reference"),
    }
    try:
        made = await me.api.post(
            f"/v1/programmes/{programme_id}/settlements", body, key=form_key(form)
        )
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _settlements_page(
            request,
            me,
            programme_id,
            status=refusal_status(problem),
            values=body,
            errors=problem.field_errors(),
            problem=problem,
        )
    notice = "settlement_paid" if made["status"] == "settled" else "settlement_proposed"
    return redirect(f"/console/payouts/{made['id']}", notice=notice)


# --- the proposals waiting for a second person ------------------------------------


@router.get("/approvals")
async def approvals(request: Request) -> Response:
    me = await _funder(request)
    waiting = await me.api.all_pages("/v1/settlements", status="proposed")
    programmes = await me.api.all_pages("/v1/programmes")
    supplier_names: dict[str, str] = {}
    for pid in sorted({s["programme_id"] for s in waiting}):
        for supplier in await me.api.get(f"/v1/programmes/{pid}/suppliers"):
            supplier_names[supplier["supplier_id"]] = supplier["name"]
    return page(
        request,
        me,
        "payouts/approvals.html",
        waiting=waiting,
        programme_names={p["id"]: p["name"] for p in programmes},
        supplier_names=supplier_names,
        member_names=await member_names(me),
        decidable={s["id"] for s in waiting if may_approve(me, s)},
    )


# --- one settlement ---------------------------------------------------------------


async def _settlement_page(
    request: Request, me: Me, settlement_id: str, *, status: int = 200, **context: Any
) -> Response:
    settlement = await me.api.get(f"/v1/settlements/{settlement_id}")
    programme = await me.api.get(f"/v1/programmes/{settlement['programme_id']}")
    supplier = await me.api.get(f"/v1/accounts/{settlement['supplier_id']}")
    claims = [await me.api.get(f"/v1/redemptions/{rid}") for rid in settlement["redemption_ids"]]
    return page(
        request,
        me,
        "payouts/settlement.html",
        settlement=settlement,
        programme=programme,
        supplier=supplier,
        claims=claims,
        member_names=await member_names(me),
        may_approve=may_approve(me, settlement),
        may_reject=may_reject(me, settlement),
        values=context.pop("values", {}),
        errors=context.pop("errors", {}),
        **context,
        http_status=status,
    )


@router.get("/payouts/{settlement_id}")
async def settlement(request: Request, settlement_id: str) -> Response:
    me = await _funder(request)
    return await _settlement_page(request, me, settlement_id)


@router.post("/payouts/{settlement_id}/approve")
async def approve(request: Request, settlement_id: str) -> Response:
    me = await _funder(request)
    form = await read_form(request, me)
    try:
        await me.api.call(
            "POST", f"/v1/settlements/{settlement_id}/approve", idempotency_key=form_key(form)
        )
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _settlement_page(
            request, me, settlement_id, status=refusal_status(problem), problem=problem
        )
    return redirect(f"/console/payouts/{settlement_id}", notice="settlement_approved")


@router.post("/payouts/{settlement_id}/reject")
async def reject(request: Request, settlement_id: str) -> Response:
    me = await _funder(request)
    form = await read_form(request, me)
    body = {"reason": text(form, "reason")}
    try:
        await me.api.post(f"/v1/settlements/{settlement_id}/reject", body, key=form_key(form))
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _settlement_page(
            request,
            me,
            settlement_id,
            status=refusal_status(problem),
            problem=problem,
            values=body,
            errors=problem.field_errors(),
        )
    return redirect(f"/console/payouts/{settlement_id}", notice="settlement_rejected")
