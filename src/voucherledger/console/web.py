"""What every console page shares: the route class (security headers, language,
the answers to a missing session or an API refusal), the signed-in person, forms
(CSRF and idempotency keys) and redirects that stay inside the console.

Headers on every console response: a Content-Security-Policy that allows only the
app's own scripts, styles and images (no inline script, no eval), no framing
(``frame-ancestors 'none'``), no referrer to other sites, ``nosniff``, and
``Cache-Control: no-store`` on pages (they hold personal and financial data).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voucherledger.console import i18n
from voucherledger.console.client import Api, ApiProblem
from voucherledger.console.templating import render

PREFIX = "/console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The double-submit token of the forms shown before a session exists (sign-in,
# accepting an invitation): a random cookie, echoed in a hidden field.
PRE_COOKIE = "vl_pre"


class SignInRequired(Exception):
    """No session, or one the API no longer accepts."""


class TotpSetupNeeded(Exception):
    """The account requires TOTP and this person has none yet."""


@dataclass
class Me:
    """The person in the browser, from ``GET /v1/me``."""

    account: dict[str, Any]
    member: dict[str, Any]
    csrf: str
    api: Api

    @property
    def kind(self) -> str:
        return str(self.account["kind"])

    @property
    def role(self) -> str:
        return str(self.member["role"])

    @property
    def account_id(self) -> str:
        return str(self.account["id"])

    @property
    def can_act(self) -> bool:
        """Anything but a viewer may change things (the API decides each case)."""
        return self.role != "viewer"


async def signed_in(
    request: Request,
    *,
    kind: str | Collection[str] | None = None,
    setting_up_totp: bool = False,
) -> Me:
    """The person, or :class:`SignInRequired` (the page then redirects to sign-in).
    A person whose account requires TOTP and who has none is sent to set it up
    (:class:`TotpSetupNeeded`), unless this is that page. With ``kind``, the pages of
    that kind (or those kinds) of account only: anyone else gets the not-found page."""
    api = Api(request)
    if not api.signed_in:
        raise SignInRequired
    try:
        body = await api.get("/v1/me")
    except ApiProblem as problem:
        if problem.status == 401:
            raise SignInRequired from problem
        if problem.code == "totp_setup_required":
            raise TotpSetupNeeded from problem
        raise
    session = body.get("session") or {}
    if body.get("member") is None or not session.get("csrf_token"):
        raise SignInRequired
    api.csrf = str(session["csrf_token"])
    account = {k: v for k, v in body.items() if k not in ("member", "session")}
    if account.get("require_totp") and not body["member"].get("totp_enabled"):
        if not setting_up_totp:
            raise TotpSetupNeeded
    kinds = {kind} if isinstance(kind, str) else kind
    if kinds is not None and account["kind"] not in kinds:
        raise ApiProblem(404, "not_found", "")
    return Me(account=account, member=body["member"], csrf=api.csrf, api=api)


def new_key() -> str:
    """An idempotency key for one rendered form: a double click or a reload of the
    POST sends it again, and the API answers the first request's result."""
    return "form-" + secrets.token_urlsafe(18)


async def read_form(request: Request, me: Me) -> FormData:
    """The posted form, its CSRF token checked against the session's (the API checks
    it again on every call it makes)."""
    form = await request.form()
    if not hmac.compare_digest(str(form.get("csrf_token", "")), me.csrf):
        raise ApiProblem(403, "csrf_failed", "The form is out of date: reload the page.")
    return form


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def end_of_day(typed: str) -> str:
    """A date as typed (YYYY-MM-DD, nothing else) to the last second of that day, UTC:
    a voucher or a programme lasts through the day shown. ValueError if it is not one."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", typed):
        raise ValueError(typed)
    return date.fromisoformat(typed).isoformat() + "T23:59:59Z"


def files(form: FormData, name: str) -> list[UploadFile]:
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]


def form_key(form: FormData) -> str:
    key = text(form, "idempotency_key")
    return key[:200] if key else new_key()


def safe_next(target: str | None, default: str = PREFIX) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX) or "\\" in target:
        return default
    return target


def redirect(url: str, *, notice: str | None = None) -> RedirectResponse:
    """303 See Other (Post/Redirect/Get): a reload shows the result, never posts again."""
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + quote(notice)
    return RedirectResponse(url, status_code=303)


def pre_token(request: Request) -> str:
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def set_pre_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.session_cookie_secure,
    )


def pre_token_ok(request: Request, form: FormData) -> bool:
    cookie = request.cookies.get(PRE_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(str(form.get("pre", "")), cookie)


def refusal_status(problem: ApiProblem) -> int:
    """The status of a page that shows a refused form again: the API's 4xx, else 400."""
    return problem.status if 400 <= problem.status < 500 else 400


def _refusal(request: Request, problem: ApiProblem) -> Response:
    status = problem.status if problem.status in (403, 404, 409, 410, 429, 503) else 400
    if problem.status == 404:
        return render(request, "not_found.html", status=404)
    return render(request, "refused.html", {"problem": problem}, status=status)


# What an id in a console address may be (the API's ids: a prefix, "_", letters and digits).
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class ConsoleRoute(APIRoute):
    """Every console route: the language chosen once, the security headers on every
    answer, a missing session sent to sign-in, and an API refusal the route did not
    handle itself shown as a page (404 the same page as an unknown address)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            request.state.language = i18n.negotiate(request)
            try:
                # An id in the address goes into an API path: "?", "/" or ".." in it
                # would send the call to another route. No object has such an id.
                if not all(SAFE_ID.fullmatch(str(v)) for v in request.path_params.values()):
                    raise ApiProblem(404, "not_found", "")
                response = await original(request)
            except SignInRequired:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = "/console/signin"
                if request.method == "GET" and here != PREFIX:
                    target += "?next=" + quote(here)
                response = RedirectResponse(target, status_code=303)
            except TotpSetupNeeded:
                response = RedirectResponse("/console/me/totp", status_code=303)
            except ApiProblem as problem:
                response = _refusal(request, problem)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return handler


def console_router() -> APIRouter:
    """A router for one part of the console (each party's pages are one module)."""
    return APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def page(
    request: Request, me: Me | None, template: str, *, http_status: int = 200, **context: Any
) -> Response:
    """A signed-in page: the person, a fresh form key and any notice of a redirect;
    ``http_status`` for a page that answers a refused form (``status`` is the pages'
    own word for a filter)."""
    notice = request.query_params.get("notice")
    return render(
        request,
        template,
        {"me": me, "form_key": new_key(), "notice": notice, **context},
        status=http_status,
    )
