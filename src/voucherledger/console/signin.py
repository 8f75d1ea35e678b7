"""Signing in and out, accepting an invitation, setting up TOTP, the language
switch, and the console's front door (``/console`` sends each party home)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voucherledger.console import i18n
from voucherledger.console.client import Api, ApiProblem
from voucherledger.console.templating import render
from voucherledger.console.web import (
    PREFIX,
    console_router,
    page,
    pre_token,
    pre_token_ok,
    read_form,
    redirect,
    safe_next,
    set_pre_cookie,
    signed_in,
    text,
)

router = console_router()

# Where each kind of account starts (its own part of the console).
HOMES = {
    "group": "/console/vouchers",
    "supplier": "/console/redeem",
    "admin": "/console/admin/accounts",
    "funder": "/console/programmes",
    "manager": "/console/programmes",
    "auditor": "/console/programmes",
}


def _relay_cookies(api: Api, response: Response) -> Response:
    """The session cookie the API set (or cleared) goes to the browser as it was set."""
    for cookie in api.set_cookies:
        response.headers.append("set-cookie", cookie)
    return response


def _signin_page(request: Request, *, status: int = 200, **context: Any) -> Response:
    token = pre_token(request)
    response = render(
        request,
        "signin.html",
        {"pre": token, "next": safe_next(request.query_params.get("next"), ""), **context},
        status=status,
    )
    set_pre_cookie(request, response, token)
    return response


@router.get("")
async def home(request: Request) -> Response:
    me = await signed_in(request)
    target = HOMES.get(me.kind)
    if target is not None:
        # A notice for the home page ("two-step sign-in is on") goes along.
        notice = request.query_params.get("notice")
        return redirect(target, notice=notice) if notice else RedirectResponse(target, 303)
    return page(request, me, "home.html")


@router.get("/signin")
async def signin_form(request: Request) -> Response:
    return _signin_page(request, notice=request.query_params.get("notice"))


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    email, password = text(form, "email"), str(form.get("password") or "")
    values = {"email": email, "next": safe_next(text(form, "next"), "")}
    if not pre_token_ok(request, form):
        return _signin_page(
            request, status=403, problem=ApiProblem(403, "csrf_failed", ""), **values
        )
    body: dict[str, Any] = {"email": email, "password": password}
    if text(form, "totp_code"):
        body["totp_code"] = text(form, "totp_code")
    if text(form, "account_id"):
        body["account_id"] = text(form, "account_id")
    api = Api(request, token="")
    try:
        await api.post("/v1/sessions", body)
    except ApiProblem as problem:
        status = problem.status if problem.status in (401, 409, 429) else 400
        return _signin_page(
            request,
            status=status,
            problem=problem,
            password=password if problem.code in ("totp_required", "account_required") else "",
            ask_totp=problem.code in ("totp_required", "invalid_totp_code") or "totp_code" in body,
            accounts=problem.errors if problem.code == "account_required" else [],
            **values,
        )
    response = RedirectResponse(safe_next(text(form, "next")), status_code=303)
    return _relay_cookies(api, response)


@router.post("/signout")
async def signout(request: Request) -> Response:
    me = await signed_in(request)
    await read_form(request, me)
    await me.api.call("DELETE", "/v1/sessions/current")
    response = redirect("/console/signin", notice="signed_out")
    _relay_cookies(me.api, response)
    if not any(c.startswith("vl_session=") for c in me.api.set_cookies):
        response.delete_cookie("vl_session", path="/")
    return response


@router.get("/invite")
async def invite_form(request: Request) -> Response:
    token = pre_token(request)
    response = render(
        request,
        "invite.html",
        {"pre": token, "token": request.query_params.get("token", "")},
    )
    set_pre_cookie(request, response, token)
    return response


@router.post("/invite")
async def accept_invite(request: Request) -> Response:
    form = await request.form()
    token, password = text(form, "token"), str(form.get("password") or "")
    problem: ApiProblem | None = None
    if not pre_token_ok(request, form):
        problem = ApiProblem(403, "csrf_failed", "")
    elif password != str(form.get("password_again") or ""):
        problem = ApiProblem(422, "passwords_differ", "")
    else:
        try:
            await Api(request, token="").post(
                "/v1/invites/accept", {"token": token, "password": password}
            )
        except ApiProblem as refused:
            problem = refused
    if problem is None:
        return redirect("/console/signin", notice="invite_accepted")
    pre = pre_token(request)
    response = render(
        request,
        "invite.html",
        {"pre": pre, "token": token, "problem": problem},
        status=problem.status if problem.status in (403, 404, 409, 410) else 422,
    )
    set_pre_cookie(request, response, pre)
    return response


@router.get("/me/totp")
async def totp_form(request: Request) -> Response:
    """Two-step sign-in: a new secret as a QR code, and the code to confirm it."""
    me = await signed_in(request, setting_up_totp=True)
    setup = await me.api.post("/v1/me/totp")
    return page(request, me, "totp.html", setup=setup)


@router.post("/me/totp")
async def totp_confirm(request: Request) -> Response:
    me = await signed_in(request, setting_up_totp=True)
    form = await read_form(request, me)
    try:
        await me.api.post("/v1/me/totp/confirm", {"code": text(form, "code")})
    except ApiProblem as problem:
        # The secret already scanned stays: it is shown again as text, not renewed.
        setup = {"secret": text(form, "secret"), "otpauth_uri": None, "qr_svg": None}
        return page(
            request,
            me,
            "totp.html",
            setup=setup,
            problem=problem,
            http_status=422 if problem.status in (401, 422) else problem.status,
        )
    return redirect(PREFIX, notice="totp_confirmed")


@router.get("/lang/{language}")
async def switch_language(request: Request, language: str) -> Response:
    """The language switch: a link on every page, so it works without JavaScript."""
    target = safe_next(request.query_params.get("next"))
    response = RedirectResponse(target, status_code=303)
    if language in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE, language, max_age=365 * 86400, path="/", samesite="lax"
        )
    return response


# Included after every other console router: it answers any other address.
fallback = console_router()


@fallback.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    """An unknown console address: the same page as something the person may not see."""
    return render(request, "not_found.html", {"me": None}, status=404)
