"""What every console page shares: security headers, the language, redirects that
stay inside the console, the forms shown before a session exists, signing out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.factories.accounts import account_body
from tests.factories.app import admin_headers
from tests.factories.console import console_client, console_sign_in, hidden_fields
from tests.factories.people import PASSWORD, accept, invite
from voucherledger.console.web import CSP, safe_next
from voucherledger.core.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with console_client(settings) as client:
        yield client


def _funder_owner(client: TestClient) -> str:
    admin = admin_headers(client)
    funder = client.post("/v1/accounts", headers=admin, json=account_body("funder")).json()
    invited = invite(client, admin, funder["id"], "owner")
    assert accept(client, invited["invite_token"]).status_code == 200
    return str(invited["email"])


@pytest.mark.parametrize("path", ["/console/signin", "/console/nowhere", "/console"])
def test_every_console_answer_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP
    assert "script-src 'self';" in CSP
    assert "unsafe-inline" not in CSP
    assert "unsafe-eval" not in CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    html = client.get("/console/signin").text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_an_unknown_console_address_is_a_page_not_json(client: TestClient) -> None:
    response = client.get("/console/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/console",
        "//evil.example/console",
        "/console\\@evil.example",
        "/v1/me",
        "javascript:alert(1)",
        "",
    ],
)
def test_redirects_never_leave_the_console(target: str) -> None:
    assert safe_next(target) == "/console"


def test_a_console_path_is_kept() -> None:
    assert safe_next("/console/vouchers?status=active") == "/console/vouchers?status=active"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("fr-FR,fr;q=0.9,en;q=0.5", "fr"), ("de-DE,en;q=0.3", "en"), ("", "en"), ("fr-CA", "fr")],
)
def test_the_language_follows_the_browser(client: TestClient, header: str, expected: str) -> None:
    html = client.get("/console/signin", headers={"Accept-Language": header}).text
    assert f'<html lang="{expected}">' in html


def test_the_switch_wins_over_the_browser_and_stays_in_the_console(client: TestClient) -> None:
    switched = client.get("/console/lang/fr?next=https://evil.example/", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/console"
    html = client.get("/console/signin", headers={"Accept-Language": "en"}).text
    assert '<html lang="fr">' in html
    assert "Mot de passe" in html
    client.get("/console/lang/xx", follow_redirects=False)  # unknown: nothing changes
    assert '<html lang="fr">' in client.get("/console/signin").text


def test_signing_in_without_the_forms_token_is_refused(client: TestClient) -> None:
    email = _funder_owner(client)
    client.get("/console/signin")
    response = client.post(
        "/console/signin",
        data={"pre": "forged", "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "vl_session" not in response.cookies
    assert client.get("/console", follow_redirects=False).headers["location"] == ("/console/signin")


def test_sign_in_goes_to_the_page_asked_for_and_sign_out_ends_the_session(
    client: TestClient,
) -> None:
    email = _funder_owner(client)
    form = client.get("/console/signin?next=/console/anything")
    pre = hidden_fields(form.text)["pre"]
    signed = client.post(
        "/console/signin",
        data={"pre": pre, "email": email, "password": PASSWORD, "next": "/console/anything"},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/anything"
    token = client.cookies["vl_session"]
    home = client.get("/console")
    assert home.status_code == 200
    csrf = hidden_fields(home.text)["csrf_token"]
    # Without the session's CSRF token, signing out is refused and the session lives.
    refused = client.post("/console/signout", data={"csrf_token": "x"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/v1/me").status_code == 200
    out = client.post("/console/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/console/signin?notice=signed_out"
    # The old cookie no longer opens anything, even if the browser kept it.
    client.cookies.set("vl_session", token)
    assert client.get("/v1/me").status_code == 401
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_wrong_password_shows_the_form_again_with_the_email(client: TestClient) -> None:
    email = _funder_owner(client)
    response = console_sign_in(client, email, "a wrong but long password")
    assert response.status_code == 401
    assert "The email or the password is wrong." in response.text
    assert f'value="{email}"' in response.text
    assert "a wrong but long password" not in response.text


def test_a_notice_for_the_home_page_follows_to_the_partys_home(client: TestClient) -> None:
    email = _funder_owner(client)
    console_sign_in(client, email)
    moved = client.get("/console?notice=totp_confirmed", follow_redirects=False)
    assert moved.headers["location"] == "/console/programmes?notice=totp_confirmed"
    assert client.get("/console", follow_redirects=False).headers["location"] == (
        "/console/programmes"
    )
    shown = client.get("/console?notice=totp_confirmed")
    assert 'role="status"' in shown.text
