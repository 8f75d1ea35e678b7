"""The people of my account: invite, change a role, disable (owners); everyone else reads.

Any kind of account but the admin's (whose people the admin pages manage). The API lets
only owners list and change members (``GET /v1/accounts/{id}/members`` is 403 for the
rest), so anyone else sees their own membership and who to ask. The invitation link
is shown once, on the admin's invitation page (``admin/invited.html``): a reload
replays the first answer with no token, and the page offers a fresh link instead.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.admin import (
    MEMBER_STATUSES,
    ROLES,
    invite_body,
    invited_page,
    new_link,
)
from voucherledger.console.client import ApiProblem
from voucherledger.console.messages import N_
from voucherledger.console.templating import gettext_for
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

BASE = "/console/members"
KINDS = ("funder", "manager", "group", "supplier", "auditor")


async def _person(request: Request) -> Me:
    return await signed_in(request, kind=KINDS)


async def member_names(me: Me) -> dict[str, str]:
    """Member ids to names: all of my account's for an owner (the API lists members to
    owners alone, 403 to anyone else), else only mine. Any other refusal is raised."""
    names = {str(me.member["id"]): str(me.member["name"])}
    try:
        members = await me.api.all_pages(f"/v1/accounts/{me.account_id}/members")
    except ApiProblem as problem:
        if problem.status != 403:
            raise
        return names
    names.update({str(m["id"]): str(m["name"]) for m in members})
    return names


async def _members_page(request: Request, me: Me, *, status: int = 200, **context: Any) -> Response:
    members: list[dict[str, Any]] | None
    try:
        members = await me.api.all_pages(f"/v1/accounts/{me.account_id}/members")
    except ApiProblem as problem:
        if problem.status != 403:
            raise
        members = None  # not an owner: the API lets owners alone read the list
    return page(
        request,
        me,
        "members/members.html",
        members=members,
        roles=ROLES,
        member_statuses=MEMBER_STATUSES,
        values=context.pop("values", {"role": "operator"}),
        errors=context.pop("errors", {}),
        **context,
        http_status=status,
    )


@router.get("/members")
async def members(request: Request) -> Response:
    me = await _person(request)
    return await _members_page(request, me)


@router.post("/members")
async def invite(request: Request) -> Response:
    me = await _person(request)
    form = await read_form(request, me)
    body = invite_body(form)
    try:
        invited = await me.api.post(
            f"/v1/accounts/{me.account_id}/members", body, key=form_key(form)
        )
    except ApiProblem as problem:
        if problem.status in (401, 404):
            raise
        return await _members_page(
            request,
            me,
            status=refusal_status(problem),
            values=body,
            errors=problem.field_errors(),
            problem=problem,
        )
    return _invited_page(request, me, invited, status=201)


@router.post("/members/{member_id}/invite")
async def reinvite(request: Request, member_id: str) -> Response:
    """A fresh link for a member still invited (the one shown before stops working)."""
    me = await _person(request)
    return _invited_page(request, me, await new_link(request, me, member_id), status=200)


def _invited_page(request: Request, me: Me, invited: dict[str, Any], *, status: int) -> Response:
    return invited_page(
        request,
        me,
        invited,
        status=status,
        reinvite_action=f"{BASE}/{invited['id']}/invite",
        back_url=BASE,
        back_text=gettext_for(request.state.language)(N_("Back to the members")),
    )


@router.post("/members/{member_id}")
async def update(request: Request, member_id: str) -> Response:
    """One change: a new role, or the member disabled or enabled again."""
    me = await _person(request)
    form = await read_form(request, me)
    body: dict[str, str] = {}
    if text(form, "role"):
        body["role"] = text(form, "role")
    if text(form, "status"):
        body["status"] = text(form, "status")
    try:
        await me.api.call(
            "PATCH", f"/v1/members/{member_id}", body=body, idempotency_key=form_key(form)
        )
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _members_page(request, me, status=refusal_status(problem), problem=problem)
    return redirect(BASE, notice="member_updated")
