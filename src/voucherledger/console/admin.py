"""The scheme admin's pages: every account, a new account of any kind, an account's
members and keys, inviting its people and revoking its keys.

Only a person of the admin account sees them (anyone else gets the not-found page,
as for an unknown address); what each may do inside is the API's to decide (a viewer
of the admin account reads, and is refused every change).

An invitation's link is shown once, in the answer to the form that made it (status
201), and is stored nowhere: a reload sends the form again with the same idempotency
key, the API replays its first answer with ``invite_token`` null, and the page then
says the link was shown already and offers a fresh one (which stops the first).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from babel import Locale
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from voucherledger.console.client import ApiProblem
from voucherledger.console.messages import CATEGORIES, N_
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
from voucherledger.reference import COUNTRY_CODES, GROUP_TYPES, SERVICE_CATEGORIES

router = console_router()

BASE = "/console/admin/accounts"
PAGE_SIZE = 50

# Every kind the API creates, in the order a scheme is set up.
KINDS: dict[str, str] = {
    "funder": N_("Funder"),
    "manager": N_("Fund manager"),
    "group": N_("Group"),
    "supplier": N_("Supplier"),
    "auditor": N_("Auditor"),
    "admin": N_("Scheme admin"),
}
ROLES: dict[str, str] = {
    "owner": N_("Owner"),
    "approver": N_("Approver"),
    "operator": N_("Operator"),
    "viewer": N_("Viewer"),
}
MEMBER_STATUSES: dict[str, str] = {
    "invited": N_("Invited"),
    "active": N_("Active"),
    "disabled": N_("Disabled"),
}
GROUP_TYPE_NAMES: dict[str, str] = {
    "individual": N_("Individual"),
    "hometown_association": N_("Hometown association"),
    "ethnic_association": N_("Ethnic association"),
    "alumni_association": N_("Alumni association"),
    "religious_association": N_("Religious association"),
    "professional_association": N_("Professional association"),
    "development_ngo": N_("Development NGO"),
    "investment_group": N_("Investment group"),
    "political_group": N_("Political group"),
    "national_development_group": N_("National development group"),
    "welfare_refugee_group": N_("Welfare or refugee group"),
    "umbrella_body": N_("Umbrella body"),
    "supplementary_school": N_("Supplementary school"),
    "virtual_organisation": N_("Virtual organisation"),
    "research_think_tank": N_("Research group or think tank"),
    "arts_cultural_group": N_("Arts or cultural group"),
    "womens_group": N_("Women's group"),
    "development_education_centre": N_("Development education centre"),
    "service_provider": N_("Service provider"),
    "youth_group": N_("Youth group"),
}
CATEGORY_NAMES: dict[str, str] = CATEGORIES
if set(GROUP_TYPE_NAMES) != GROUP_TYPES or set(CATEGORY_NAMES) != SERVICE_CATEGORIES:
    raise RuntimeError("the console's names of group types or categories are out of date")


@cache
def countries(language: str) -> list[tuple[str, str]]:
    """Every ISO 3166-1 country the API accepts, named in ``language``, by name."""
    names = Locale.parse(language).territories
    return sorted(((code, names.get(code, code)) for code in COUNTRY_CODES), key=lambda c: c[1])


def _vocabulary(request: Request) -> dict[str, Any]:
    return {
        "kinds": KINDS,
        "roles": ROLES,
        "member_statuses": MEMBER_STATUSES,
        "group_types": GROUP_TYPE_NAMES,
        "categories": CATEGORY_NAMES,
        "countries": countries(request.state.language),
        "country_names": dict(countries(request.state.language)),
    }


async def _admin(request: Request) -> Me:
    """The person, if of the admin account; the not-found page for anyone else."""
    return await signed_in(request, kind="admin")


# --- the accounts -------------------------------------------------------------------


@router.get("/admin/accounts")
async def accounts(request: Request) -> Response:
    me = await _admin(request)
    kind = request.query_params.get("kind") or None
    if kind not in KINDS:
        kind = None
    listed = await me.api.get(
        "/v1/accounts", kind=kind, limit=PAGE_SIZE, cursor=request.query_params.get("cursor")
    )
    return page(
        request,
        me,
        "admin/accounts.html",
        accounts=listed["data"],
        next_cursor=listed.get("next_cursor"),
        kind=kind,
        **_vocabulary(request),
    )


@router.get("/admin/accounts/new")
async def new_account_form(request: Request) -> Response:
    me = await _admin(request)
    kind = request.query_params.get("kind")
    return page(
        request,
        me,
        "admin/new_account.html",
        kind=kind if kind in KINDS else None,
        values={},
        errors={},
        **_vocabulary(request),
    )


def account_body(form: FormData) -> dict[str, Any]:
    """The API's body for the form: the profile of the kind chosen, nothing else;
    what is missing or wrong is the API's to say."""
    kind = text(form, "kind")
    body: dict[str, Any] = {"kind": kind, "name": text(form, "name")}
    if text(form, "country"):
        body["country"] = text(form, "country")
    if kind == "group":
        body["group"] = {
            "group_type": text(form, "group_type") or None,
            "origin_country": text(form, "origin_country") or None,
            "residence_country": text(form, "residence_country") or None,
            "women_led": form.get("women_led") == "yes",
        }
    if kind == "supplier":
        body["supplier"] = {
            "service_categories": [str(c) for c in form.getlist("service_categories")]
        }
    return body


@router.post("/admin/accounts/new")
async def create_account(request: Request) -> Response:
    me = await _admin(request)
    form = await read_form(request, me)
    body = account_body(form)
    try:
        made = await me.api.post("/v1/accounts", body, key=form_key(form))
    except ApiProblem as problem:
        values = {
            **{k: text(form, k) for k in form if k not in ("csrf_token", "idempotency_key")},
            "service_categories": [str(c) for c in form.getlist("service_categories")],
            "women_led": form.get("women_led") == "yes",
        }
        return page(
            request,
            me,
            "admin/new_account.html",
            kind=body["kind"] if body["kind"] in KINDS else None,
            values=values,
            errors=problem.field_errors(),
            problem=problem,
            **_vocabulary(request),
            http_status=refusal_status(problem),
        )
    return redirect(f"{BASE}/{made['id']}", notice="account_created")


# --- one account: members and keys --------------------------------------------------


async def _account_page(
    request: Request,
    me: Me,
    account_id: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    account = await me.api.get(f"/v1/accounts/{account_id}")
    members = await me.api.all_pages(f"/v1/accounts/{account_id}/members")
    keys = await me.api.all_pages(f"/v1/accounts/{account_id}/keys")
    names = {m["id"]: m["name"] for m in members}
    return page(
        request,
        me,
        "admin/account.html",
        account=account,
        members=members,
        keys=list(reversed(keys)),  # the newest first
        member_names=names,
        values=context.pop("values", {"role": "owner" if not members else "operator"}),
        errors=context.pop("errors", {}),
        **context,
        **_vocabulary(request),
        http_status=status,
    )


@router.get("/admin/accounts/{account_id}")
async def account(request: Request, account_id: str) -> Response:
    me = await _admin(request)
    return await _account_page(request, me, account_id)


def invite_link(request: Request, token: str) -> str:
    """The address the invited person opens: this console, as the admin reached it."""
    return f"{str(request.base_url).rstrip('/')}/console/invite?token={token}"


def invite_body(form: FormData) -> dict[str, str]:
    """The API's invitation (``POST /v1/accounts/{id}/members``) from the form."""
    return {"email": text(form, "email"), "name": text(form, "name"), "role": text(form, "role")}


async def new_link(request: Request, me: Me, member_id: str) -> dict[str, Any]:
    """A fresh link for a member still invited (the one shown before stops working)."""
    form = await read_form(request, me)
    invited: dict[str, Any] = await me.api.call(
        "POST", f"/v1/members/{member_id}/invite", idempotency_key=form_key(form)
    )
    return invited


def invited_page(
    request: Request, me: Me, invited: dict[str, Any], *, status: int, **context: Any
) -> Response:
    """The invitation's link, shown this once (none when the API replays its answer)."""
    token = invited.get("invite_token")
    return page(
        request,
        me,
        "admin/invited.html",
        invited=invited,
        link=invite_link(request, str(token)) if token else None,
        **context,
        http_status=status,
    )


@router.post("/admin/accounts/{account_id}/members")
async def invite(request: Request, account_id: str) -> Response:
    me = await _admin(request)
    form = await read_form(request, me)
    body = invite_body(form)
    try:
        invited = await me.api.post(f"/v1/accounts/{account_id}/members", body, key=form_key(form))
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        return await _account_page(
            request,
            me,
            account_id,
            status=refusal_status(problem),
            values=body,
            errors=problem.field_errors(),
            problem=problem,
        )
    return _invited_page(request, me, invited, status=201)


@router.post("/admin/members/{member_id}/invite")
async def reinvite(request: Request, member_id: str) -> Response:
    """A fresh link for a member still invited (the one shown before stops working)."""
    me = await _admin(request)
    return _invited_page(request, me, await new_link(request, me, member_id), status=200)


def _invited_page(request: Request, me: Me, invited: dict[str, Any], *, status: int) -> Response:
    return invited_page(request, me, invited, status=status, **_vocabulary(request))


async def _key_of(me: Me, account_id: str, key_id: str) -> dict[str, Any]:
    """The key, if it is one of the account's (the not-found page otherwise)."""
    for key in await me.api.all_pages(f"/v1/accounts/{account_id}/keys"):
        if key["id"] == key_id:
            return dict(key)
    raise ApiProblem(404, "not_found", "")


@router.get("/admin/accounts/{account_id}/keys/{key_id}/revoke")
async def revoke_confirm(request: Request, account_id: str, key_id: str) -> Response:
    """The second step of revoking: what the key is, and one button that does it."""
    me = await _admin(request)
    account = await me.api.get(f"/v1/accounts/{account_id}")
    key = await _key_of(me, account_id, key_id)
    members = await me.api.all_pages(f"/v1/accounts/{account_id}/members")
    return page(
        request,
        me,
        "admin/revoke.html",
        account=account,
        key=key,
        member_names={m["id"]: m["name"] for m in members},
    )


@router.post("/admin/accounts/{account_id}/keys/{key_id}/revoke")
async def revoke(request: Request, account_id: str, key_id: str) -> Response:
    me = await _admin(request)
    await read_form(request, me)  # its CSRF token; revoking twice changes nothing
    await _key_of(me, account_id, key_id)
    await me.api.call("DELETE", f"/v1/keys/{key_id}")
    return redirect(f"{BASE}/{account_id}", notice="key_revoked")
